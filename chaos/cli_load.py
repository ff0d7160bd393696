"""`chaoslab load`: locust against this stack's gateway, headless, for a fixed time, on
one process or distributed over N worker processes (`--workers`), then the figures.

One locust process tops out near one core; `--workers N` has a master fork N workers
(locust's `--processes`), each running a share of the users, the master adding up their
statistics. Every process is ours, started in a session of its own and stopped by pid.
"""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer

from chaos.cli_common import RunDir, Target, console, fail, stack_of
from chaos.compose import ComposeError
from chaos.drills.load import REPO, kill_group, locust_command


@dataclass
class LoadFigures:
    requests: int
    failures: int
    requests_per_s: float
    orders_per_s: float  # POST /orders, first tries and retries alike
    p50_ms: float
    p99_ms: float


def read_figures(prefix: Path) -> LoadFigures:
    """The Aggregated row of locust's `<prefix>_stats.csv`."""
    path = prefix.with_name(prefix.name + "_stats.csv")
    try:
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
        total = next(r for r in rows if r["Name"] == "Aggregated")
    except (FileNotFoundError, StopIteration):
        raise fail(f"locust wrote no statistics ({path}): see its output above") from None
    return LoadFigures(
        requests=int(total["Request Count"]),
        failures=int(total["Failure Count"]),
        requests_per_s=float(total["Requests/s"]),
        orders_per_s=sum(float(r["Requests/s"]) for r in rows if r["Name"].startswith("POST /orders")),
        p50_ms=float(total["50%"] or 0),
        p99_ms=float(total["99%"] or 0),
    )


def load(
    run_dir: RunDir,
    target: Target,
    users: Annotated[int, typer.Option(min=1, max=5000, help="simulated users, spread over the workers")] = 20,
    workers: Annotated[
        int, typer.Option(min=1, max=32, help="locust processes: 1 runs one; N runs a master and N workers")
    ] = 1,
    duration: Annotated[int, typer.Option(min=1, max=86400, help="seconds of load, then locust stops")] = 30,
    tags: Annotated[str, typer.Option(help="which users (loadtests/users.py tags): shop, duplicates")] = "shop",
    shape: Annotated[
        str | None, typer.Option(help="a load shape (loadtests/shapes.py, as CHAOSLAB_SHAPE): it sets the users")
    ] = None,
) -> None:
    """Put locust load on the gateway for --duration seconds and print requests/s and
    latency; `--workers N` runs locust distributed over N processes."""
    try:
        gateway = stack_of(run_dir, target).url("gateway")
    except ComposeError as exc:
        raise fail(str(exc)) from exc
    with tempfile.TemporaryDirectory(prefix="chaoslab-load-") as tmp:
        prefix = Path(tmp) / "load"
        command = locust_command(
            gateway, users=users, run_time_s=duration, tags=tags, workers=workers, stats=prefix, summary_only=False
        )
        env = {**os.environ, **({"CHAOSLAB_SHAPE": shape} if shape else {})}
        console.print(f"locust: {users} users on {workers} worker(s) against {gateway} for {duration}s")
        # A session of its own, so that its forked workers can be stopped with it by pid.
        proc = subprocess.Popen(command, env=env, cwd=REPO, start_new_session=True)
        try:
            proc.wait(timeout=duration + 60)
        except KeyboardInterrupt:
            proc.send_signal(signal.SIGINT)  # locust stops cleanly and writes its statistics
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                kill_group(proc)
        except subprocess.TimeoutExpired:
            kill_group(proc)
            raise fail(f"locust did not stop {duration + 60}s after starting") from None
        if proc.returncode not in (0, 1, -signal.SIGINT):  # 1: some requests failed
            raise fail(f"locust exited {proc.returncode}: see its output above")
        figures = read_figures(prefix)
    console.print(
        f"{workers} worker(s), {users} users: {figures.requests_per_s:.0f} requests/s "
        f"({figures.orders_per_s:.0f} orders/s), "
        f"{figures.requests} requests, {figures.failures} failed, p50 {figures.p50_ms:.0f} ms, "
        f"p99 {figures.p99_ms:.0f} ms"
    )


def register(app: typer.Typer) -> None:
    app.command()(load)
