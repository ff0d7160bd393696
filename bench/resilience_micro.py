"""Per-call overhead of a Policy (retry + breaker + bulkhead + timeout) vs a bare await.

    python bench/resilience_micro.py [iterations]

The downstream is a coroutine that answers at once, so what is measured is the
library's own cost per call (target: <= 50 µs). Also shows how fast an open breaker
refuses. Prints figures only; nothing is asserted.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import contextlib

from services.common.resilience.policy import Policy, PolicyConfig
from services.common.web import errors
from tests.support.profiles import breaker_config, policy_config_of


@dataclass(slots=True)
class Reply:
    status: int
    headers: dict[str, str] = field(default_factory=dict)


OK = Reply(200)
FAILED = Reply(503)


async def answer(base_url: str, timeout_s: float) -> Reply:
    return OK


async def fail(base_url: str, timeout_s: float) -> Reply:
    return FAILED


async def per_call_us(coro_factory, n: int, rounds: int = 5) -> float:
    """Median over rounds of the mean µs per awaited call."""
    results = []
    for _ in range(rounds):
        started = time.perf_counter()
        for _ in range(n):
            await coro_factory()
        results.append((time.perf_counter() - started) / n * 1e6)
    return statistics.median(results)


async def refused_call_us(url: str, n: int, training: PolicyConfig) -> float:
    """µs for a call refused by an open breaker (the training profile's Policy)."""
    tripped = Policy(
        "bench-open",
        [url],
        replace(training, max_attempts=1, breaker=breaker_config(window_size=5, minimum_calls=5, wait_in_open_s=3600)),
    )
    for _ in range(5):
        await tripped.call(fail, retryable=False)

    async def refused() -> None:
        with contextlib.suppress(errors.BreakerOpen):
            await tripped.call(answer, retryable=True)

    return await per_call_us(refused, n)


async def main(n: int) -> None:
    url = "http://127.0.0.1:8002"
    training: PolicyConfig = policy_config_of("training")
    on = Policy("bench-on", [url], training)
    off = Policy("bench-off", [url], replace(training, retries=False, breakers=False, bulkheads=False))
    replicas = Policy("bench-replicas", [url, "http://127.0.0.1:8012", "http://127.0.0.1:8022"], training)
    deadline = time.monotonic() + 3600
    bare = await per_call_us(lambda: answer(url, 3.0), n)
    rows = [
        ("bare awaited coroutine", bare),
        ("policy, resilience on", await per_call_us(lambda: on.call(answer, retryable=True), n)),
        ("policy, on, with deadline", await per_call_us(lambda: on.call(answer, retryable=True, deadline=deadline), n)),
        ("policy, on, 3 replicas", await per_call_us(lambda: replicas.call(answer, retryable=True), n)),
        ("policy, resilience off", await per_call_us(lambda: off.call(answer, retryable=True), n)),
        ("policy, breaker open (refused)", await refused_call_us(url, n, training)),
    ]
    print(f"{'path':34} {'µs/call':>9} {'overhead µs':>12}")
    for label, us in rows:
        print(f"{label:34} {us:9.2f} {us - bare:12.2f}")
    print(f"target: overhead <= 50 µs per call ({n} calls x 5 rounds, median of rounds)")


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 20_000))
