"""locust load for a drill, as a headless subprocess that stops by itself.

Every drill runs under load (docs/incidents.md): steady shoppers, and for some
incidents a second, incident-shaped load (a surge, a duplicate storm, capacity steps)
that the runbook's remediation stops.
"""

from __future__ import annotations

import ast
import contextlib
import csv
import os
import signal
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from loadtests.checks import EXPECTED, classify

REPO = Path(__file__).resolve().parents[2]
LOCUSTFILE = REPO / "loadtests" / "locustfile.py"


@dataclass
class Failures:
    """What locust's users found wrong, by message, in the two classes of
    `loadtests.checks.classify`: contract violations fail a drill; the stack turning
    clients away during a fault is expected, counted and reported."""

    violations: Counter[str] = field(default_factory=Counter)
    expected: Counter[str] = field(default_factory=Counter)
    unread: list[str] = field(default_factory=list)  # stats files that were not there

    def add(self, message: str, count: int) -> None:
        (self.expected if classify(message) == EXPECTED else self.violations)[message] += count

    def merge(self, other: Failures) -> None:
        self.violations.update(other.violations)
        self.expected.update(other.expected)
        self.unread += other.unread

    def as_dict(self) -> dict[str, object]:
        return {
            "violations": dict(self.violations.most_common()),
            "expected": dict(self.expected.most_common()),
            "unread": list(self.unread),
        }


def failure_message(error: str) -> str:
    """The check's own words from locust's Error column (`CatchResponseError('...')`)."""
    head = "CatchResponseError("
    if error.startswith(head) and error.endswith(")"):
        try:
            inner = ast.literal_eval(error[len(head) : -1])
        except (ValueError, SyntaxError):
            return error
        return inner if isinstance(inner, str) else error
    return error


def read_failures(prefix: Path) -> Failures:
    """The failure table locust wrote with `--csv prefix` (`<prefix>_failures.csv`)."""
    found = Failures()
    path = prefix.with_name(prefix.name + "_failures.csv")
    try:
        with open(path, newline="") as f:
            for row in csv.DictReader(f):
                found.add(failure_message(row["Error"]), int(row["Occurrences"]))
    except FileNotFoundError:
        found.unread.append(str(path))
    return found


def locust_command(
    host: str,
    *,
    users: int,
    run_time_s: float,
    tags: str = "shop",
    workers: int = 1,
    stats: Path | None = None,
    summary_only: bool = True,
) -> list[str]:
    """A headless locust run that stops by itself after `run_time_s`. `workers` > 1 runs
    locust distributed on this machine: a master forks that many workers (`--processes`),
    each a process of its own, so the load is no longer bound to one core."""
    command = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(LOCUSTFILE),
        "--headless",
        "--host",
        host,
        "-u",
        str(users),
        "-r",
        str(max(1, users)),
        "-t",
        f"{int(run_time_s)}s",
        "--tags",
        tags,
        "--stop-timeout",
        "2",
        "--exit-code-on-error",
        "0",  # the failure table is judged instead (failures()), by class
    ]
    if summary_only:
        command.append("--only-summary")
    if workers > 1:
        # The master starts the users once every worker has connected, not the first one.
        command += ["--processes", str(workers), "--expect-workers", str(workers)]
    if stats is not None:
        stats.parent.mkdir(parents=True, exist_ok=True)
        command += ["--csv", str(stats)]
    return command


def kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL a locust we started in a session of its own, with the workers it forked
    (they share its process group, whose id is its pid)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=5)


class Load:
    """One locust run: `tags` pick the users, `shape` (env CHAOSLAB_SHAPE) a load shape,
    `workers` > 1 spreads the users over that many locust processes."""

    def __init__(
        self,
        host: str,
        *,
        users: int,
        tags: str = "shop",
        shape: str | None = None,
        max_s: float = 900,
        log: Path | None = None,
        env: dict[str, str] | None = None,
        stats: Path | None = None,
        workers: int = 1,
    ) -> None:
        self.host, self.users, self.tags, self.shape, self.max_s = host, users, tags, shape, max_s
        self.log = log
        self.env = env or {}
        self.stats = stats  # locust's `--csv` prefix: its failure table is read after stop()
        self.workers = workers
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> Load:
        command = locust_command(
            self.host,
            users=self.users,
            run_time_s=self.max_s,
            tags=self.tags,
            workers=self.workers,
            stats=self.stats,
        )
        env = {**os.environ, **self.env}
        if self.shape:
            env["CHAOSLAB_SHAPE"] = self.shape
        # The child keeps its own copy of the log's descriptor: ours closes at once.
        with open(self.log or os.devnull, "ab") as out:
            self.proc = subprocess.Popen(
                command, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=REPO, start_new_session=True
            )
        return self

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout_s: float = 15) -> None:
        """SIGINT first (locust finishes cleanly), SIGKILL if it lingers; only our own pid."""
        proc = self.proc
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            kill_group(proc)

    def failures(self) -> Failures:
        """After stop(): the failures locust counted, by class (nothing when no `stats`).
        locust rewrites its CSV every second and closes it on a clean stop, so the table
        holds every failure but those of its last second."""
        return read_failures(self.stats) if self.stats is not None else Failures()
