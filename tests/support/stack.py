"""A real native stack for tests: PostgreSQL, Redis, Prometheus and the five services,
on free ports, in the fast `ci` profile, under a run directory of its own."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import asyncpg

from chaos import infra, runner, supervision
from chaos import verify as verifier
from chaos.layout import StackLayout
from tests.support.api import SERVICE_TOKEN


def start_stack(profile: str = "ci", env: dict[str, str] | None = None) -> StackLayout:
    """Start a stack in a fresh directory, its services given `env` (`PATTERNS`: "none" ...);
    on failure runner.up has already stopped everything it started, and the error names
    the program at fault."""
    # Not pytest's tmp_path: PostgreSQL runs as another user and must reach its data.
    base = Path(tempfile.mkdtemp(prefix="chaoslab-test-"))
    base.chmod(0o755)
    return runner.up(
        base / "run",
        profile=profile,
        chaos_token="test-token",
        service_token=SERVICE_TOKEN,
        pick_free_ports=True,
        timeout_s=120,
        progress=lambda _msg: None,
        env=env,
    )


def stop_stack(layout: StackLayout) -> None:
    """Stop the stack and delete its database files (the logs stay, for a post-mortem)."""
    runner.down(layout)
    infra.remove_postgres_data(layout)


def wait_until(
    condition: Callable[[], object], *, timeout_s: float, interval_s: float = 0.1, message: str = "condition"
) -> object:
    """Poll `condition` until it returns something truthy; fail after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    last = None
    while time.monotonic() < deadline:
        last = condition()
        if last:
            return last
        time.sleep(interval_s)
    raise AssertionError(f"{message} not met within {timeout_s}s (last: {last!r})")


def kill9(layout: StackLayout, program: str) -> int:
    """SIGKILL a program of our own stack by its pid; returns the pid killed."""
    pid = supervision.Supervisor(layout).process(program)["pid"]
    assert pid > 0, f"{program} is not running"
    os.kill(pid, signal.SIGKILL)
    return pid


def wait_restarted(layout: StackLayout, program: str, old_pid: int, timeout_s: float = 30) -> None:
    sup = supervision.Supervisor(layout)

    def back() -> bool:
        info = sup.process(program)
        return (
            info["statename"] == "RUNNING"
            and info["pid"] not in (0, old_pid)
            and runner.http_ok(layout.url(program) + "/health")
        )

    wait_until(back, timeout_s=timeout_s, message=f"{program} restarted and healthy")


def assert_verify_clean(layout: StackLayout, timeout_s: float = 45) -> None:
    """Poll the invariant checker (nothing in flight spared) until it finds no violation."""
    deadline = time.monotonic() + timeout_s
    while True:
        checks, _counts = verifier.verify(layout.database_url, grace_s=0)
        failed = {c.name: c.examples for c in checks if not c.ok}
        if not failed:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"chaoslab verify still fails after {timeout_s}s: {failed}")
        time.sleep(0.5)


@contextlib.contextmanager
def scratch_database(layout: StackLayout, prefix: str) -> Iterator[str]:
    """A fresh, empty database of its own on the stack's PostgreSQL, dropped afterwards:
    its URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    server = layout.database_url.rsplit("/", 1)[0]

    async def admin(statement: str) -> None:
        conn = await asyncpg.connect(f"{server}/postgres", timeout=10)
        try:
            await conn.execute(statement)
        finally:
            await conn.close()

    asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    try:
        yield f"{server}/{name}"
    finally:
        asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def execute_sql(layout: StackLayout, statement: str, *args: object) -> None:
    """Run one statement against the stack's database (tests' own data, set up or taken away)."""

    async def run() -> None:
        conn = await asyncpg.connect(layout.database_url, timeout=10)
        try:
            await conn.execute(statement, *args)
        finally:
            await conn.close()

    asyncio.run(run())
