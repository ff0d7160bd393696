"""How long the faults and the chaos scripts take to act: the timings the live tests
leave out (they prove the behaviour by order and by counts, tests/integration/).

    .venv/bin/python bench/chaos_timings.py            # the runbook scripts only
    .venv/bin/python bench/chaos_timings.py --stack    # also a native ci stack (~20 s to start)

Scripts: how soon a script gives up on a Redis that refuses connections, and on one
that accepts them and never answers (its own timeout, CHAOS_REDIS_TIMEOUT_S).
Stack: an inventory read with latency_ms=300 and latency_jitter_ms=100, then with the
faults cleared; a charge while db_pool_hold holds payments' whole pool (the pool's
acquire timeout, DB_ACQUIRE_TIMEOUT_S). Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import httpx  # noqa: E402

from services.common.web.settings import PROFILE_DEFAULTS  # noqa: E402

SCRIPTS = REPO / "chaos" / "scripts"


def timed(action: Callable[[], object], rounds: int) -> list[float]:
    """Seconds per call of `action`, `rounds` times."""
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return times


def row(label: str, times: list[float]) -> None:
    print(f"{label:<52} {statistics.median(times):8.3f} {max(times):8.3f}  (n={len(times)})", flush=True)


def run_script(url: str, *args: str) -> None:
    env = {k: v for k, v in os.environ.items() if k != "CHAOSLAB_PROFILE"}
    env.update(REDIS_URL=url, CHAOSLAB_PYTHON=sys.executable)
    subprocess.run([str(SCRIPTS / "payment_errors.sh"), *args], capture_output=True, env=env, timeout=60)


def script_figures(rounds: int) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        refused = f"redis://127.0.0.1:{probe.getsockname()[1]}/0"  # bound, never listening
        row("script, Redis refuses: status", timed(lambda: run_script(refused, "status"), rounds))
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(64)  # connections complete in the backlog; nothing ever answers
        url = f"redis://127.0.0.1:{silent.getsockname()[1]}/0"
        row("script, Redis never answers: status", timed(lambda: run_script(url, "status"), max(1, rounds // 3)))


def stack_figures(rounds: int) -> None:
    from tests.support.chaos import clear_faults, metric, put_fault
    from tests.support.stack import start_stack, stop_stack, wait_until

    print("starting a native ci stack...", flush=True)
    stack = start_stack("ci")
    try:
        with httpx.Client(timeout=60, headers=stack.service_headers()) as client:  # reads inventory, internal
            inventory = f"{stack.url('inventory')}/inventory/SKU-001"
            row("inventory read, no fault", timed(lambda: client.get(inventory), rounds))
            put_fault(client, stack, "inventory", "latency_ms", 300)
            put_fault(client, stack, "inventory", "latency_jitter_ms", 100)
            row("inventory read, latency 300 ms + jitter 100 ms", timed(lambda: client.get(inventory), rounds))
            clear_faults(client, stack)
            wait_until(
                lambda: metric(client, stack.url("inventory"), "chaos_active", fault="latency_ms") == 0,
                timeout_s=10,
            )
            row("inventory read, faults cleared", timed(lambda: client.get(inventory), rounds))

            payments = stack.url("payments")

            def charge() -> None:
                client.post(
                    f"{payments}/charges",
                    headers={"Idempotency-Key": f"bench-{time.time_ns()}"},
                    json={"order_id": f"probe-{time.time_ns()}", "customer_id": "c-probe", "amount_cents": 10**8},
                )

            put_fault(client, stack, "payments", "db_pool_hold", 10)
            wait_until(lambda: metric(client, payments, "db_pool_in_use") >= 10, timeout_s=10)
            acquire_s = PROFILE_DEFAULTS[stack.profile]["db_acquire_timeout_s"]
            row(f"charge with the pool held (acquire timeout {acquire_s} s)", timed(charge, max(1, rounds // 3)))
            clear_faults(client, stack)
    finally:
        stop_stack(stack)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=9, help="measurements per figure")
    parser.add_argument("--stack", action="store_true", help="also measure the faults on a native ci stack")
    args = parser.parse_args()
    print(f"{'seconds':<52} {'median':>8} {'max':>8}", flush=True)
    script_figures(args.rounds)
    if args.stack:
        stack_figures(args.rounds)


if __name__ == "__main__":
    main()
