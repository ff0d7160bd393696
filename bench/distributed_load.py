"""Requests/s that locust reaches on one process and distributed over N workers (a native
ci stack of its own), and orders/s of a running compose stack with payments at 1 and at 3
replicas. Prints figures beside the load average; asserts nothing.

    .venv/bin/python bench/distributed_load.py native --workers 1 2 4 --users 40 --duration 20
    CHAOSLAB_TARGET=compose .venv/bin/python bench/distributed_load.py compose --replicas 1 3
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

# No think time between a user's requests: the figure is what the processes can send,
# not what a number of patient shoppers ask for.
NO_THINK = {"CHAOSLAB_THINK_MIN_S": "0", "CHAOSLAB_THINK_MAX_S": "0"}
SUMMARY = re.compile(r"(\d+) requests/s \((\d+) orders/s\), (\d+) requests, (\d+) failed, p50 (\d+) ms, p99 (\d+) ms")


def load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def chaoslab(*args: str, env: dict[str, str] | None = None, timeout_s: float = 600) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "chaos.cli", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        env={**os.environ, "COLUMNS": "200", **(env or {})},
    )
    if result.returncode != 0:
        raise SystemExit(f"chaoslab {' '.join(args)} exited {result.returncode}:\n{result.stderr[-2000:]}")
    return result.stdout


def measure(label: str, *load_args: str, env: dict[str, str] | None = None) -> None:
    before = load_average()
    out = chaoslab("load", *load_args, env={**NO_THINK, **(env or {})})
    match = SUMMARY.search(out)
    figures = (
        "{} req/s, {} orders/s, {} requests, {} failed, p50 {} ms, p99 {} ms".format(*match.groups())
        if match
        else out[-300:]
    )
    print(f"{label:<24} {figures}   load average {before} -> {load_average()}", flush=True)


def native(args: argparse.Namespace) -> None:
    from tests.support.stack import start_stack, stop_stack

    print(f"starting a native ci stack (load average {load_average()})", flush=True)
    stack = start_stack("ci")
    try:
        for workers in args.workers:
            measure(
                f"{workers} locust worker(s)",
                *("--run-dir", str(stack.run_dir), "--workers", str(workers)),
                *("--users", str(args.users), "--duration", str(args.duration)),
            )
    finally:
        stop_stack(stack)


def compose(args: argparse.Namespace) -> None:
    env = {"CHAOSLAB_TARGET": "compose"}
    try:
        for replicas in args.replicas:
            chaoslab("scale", "payments", str(replicas), env=env)
            measure(
                f"payments={replicas} (compose)",
                *("--workers", str(args.load_workers), "--users", str(args.users), "--duration", str(args.duration)),
                env=env,
            )
    finally:
        chaoslab("scale", "payments", "1", env=env)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="where", required=True)
    n = sub.add_parser("native", help="locust on 1..N workers against a native ci stack started for the run")
    n.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    c = sub.add_parser("compose", help="orders/s of the running compose stack with payments at each replica count")
    c.add_argument("--replicas", type=int, nargs="+", default=[1, 3])
    c.add_argument("--load-workers", type=int, default=2)
    for p in (n, c):
        p.add_argument("--users", type=int, default=40)
        p.add_argument("--duration", type=int, default=20, help="seconds of load per figure")
    args = parser.parse_args()
    native(args) if args.where == "native" else compose(args)


if __name__ == "__main__":
    main()
