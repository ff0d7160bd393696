"""What the resilience patterns cost: per call, and in orders/s of the whole stack.

In one run: the Policy's per-call overhead against a bare await (bench/resilience_micro.py),
then orders/s and latency of a native stack with the patterns on, and of one with
`RESILIENCE=off` (a single attempt with its timeout, no breaker, bulkhead or retry).
Prints figures; asserts nothing.

    .venv/bin/python bench/resilience.py [--duration 8] [--clients 32]
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, HERE / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=8.0, help="seconds per measurement")
    parser.add_argument("--clients", default="32", help="comma-separated concurrency levels")
    args = parser.parse_args()
    clients_list = [int(c) for c in args.clients.split(",")]

    print("Per-call overhead of the Policy:", flush=True)
    subprocess.run([sys.executable, str(HERE / "resilience_micro.py")], check=True)

    orders = _load("orders")
    results = {
        "patterns on": orders.stack_figures({}, clients_list, args.duration),
        "patterns off": orders.stack_figures({"RESILIENCE": "off"}, clients_list, args.duration),
    }
    print(f"\nPOST /orders through the stack, {args.duration:.0f} s per point\n")
    print(f"{'stack':<14}{'clients':>8}{'orders/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}")
    for name, figures in results.items():
        for clients, f in figures.items():
            print(f"{name:<14}{clients:>8}{f['rate']:>10.0f}{f['p50']:>9.1f}{f['p99']:>9.1f}{f['errors']:>8}")
    on, off = results["patterns on"], results["patterns off"]
    for clients in clients_list:
        print(f"patterns on / off at {clients} clients: {on[clients]['rate'] / off[clients]['rate']:.0%}")


if __name__ == "__main__":
    main()
