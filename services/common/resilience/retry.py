"""Retries: full-jitter exponential backoff and a retry budget (Finagle/Linkerd style).

The budget allows a retry only while the retries of the sliding window stay within
`ratio` × its requests plus a small floor (`min_retries_per_s` × `window_s`), so a
failing downstream sees at most (1 + ratio) × the original load. When it refuses,
`retry_budget_exhausted_total{downstream}` counts it; `retry_attempts_total` counts retries made.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable

from prometheus_client import Counter

RETRY_ATTEMPTS = Counter(
    "retry_attempts_total", "Retries allowed by the retry budget (first attempts not counted).", ["downstream"]
)
RETRY_BUDGET_EXHAUSTED = Counter(
    "retry_budget_exhausted_total", "Retries refused because the retry budget was spent.", ["downstream"]
)


def backoff_s(attempt: int, base_s: float, max_s: float, rng: Callable[[], float] = random.random) -> float:
    """Seconds to wait before retry number `attempt` (1 = the first retry).

    Full jitter (AWS architecture blog): uniform in [0, min(max_s, base_s × 2^(attempt-1))),
    so that clients failing together do not come back together.
    """
    exponent = min(max(attempt - 1, 0), 62)  # 2**62 × any sane base is past any cap
    return rng() * min(max_s, base_s * (2**exponent))


class RetryBudget:
    """Requests and retries over a sliding window of `buckets` buckets.

    Call `record_request()` once per original request (not per attempt), and
    `try_spend_retry()` before each retry; it says whether the retry may go.
    """

    def __init__(
        self,
        ratio: float,
        window_s: float,
        min_retries_per_s: float,
        clock: Callable[[], float] = time.monotonic,
        *,
        name: str = "",
        buckets: int = 10,
    ) -> None:
        if window_s <= 0 or buckets < 1:
            raise ValueError("window_s must be > 0 and buckets >= 1")
        self.name = name
        self.ratio = ratio
        self.window_s = window_s
        self.min_retries_per_s = min_retries_per_s
        self._clock = clock
        self._n = buckets
        self._width = window_s / buckets
        self._requests = [0] * buckets
        self._retries = [0] * buckets
        self._head: int | None = None  # absolute index of the newest bucket
        self._total_requests = 0
        self._total_retries = 0
        self._floor = min_retries_per_s * window_s
        self._attempts = RETRY_ATTEMPTS.labels(name)
        self._exhausted = RETRY_BUDGET_EXHAUSTED.labels(name)

    def _advance(self) -> int:
        index = math.floor(self._clock() / self._width)
        head = self._head
        if head is None:
            self._head = index
        elif index > head:
            # Clear the buckets that fell out of the window; at most all of them.
            for i in range(head + 1, min(index, head + self._n) + 1):
                slot = i % self._n
                self._total_requests -= self._requests[slot]
                self._total_retries -= self._retries[slot]
                self._requests[slot] = self._retries[slot] = 0
            self._head = index
        return index % self._n

    @property
    def requests(self) -> int:
        """Requests in the window now."""
        self._advance()
        return self._total_requests

    @property
    def retries(self) -> int:
        """Retries in the window now."""
        self._advance()
        return self._total_retries

    def record_request(self) -> None:
        slot = self._advance()
        self._requests[slot] += 1
        self._total_requests += 1

    def can_retry(self) -> bool:
        """Whether one more retry fits in the budget now, without spending it."""
        self._advance()
        # The epsilon keeps float rounding (0.29 × 100 = 28.999999999999996) from costing a retry.
        return self._total_retries + 1 <= self.ratio * self._total_requests + self._floor + 1e-9

    def try_spend_retry(self) -> bool:
        """Take one retry from the budget; False (and a metric) when it is spent."""
        if not self.can_retry():
            self._exhausted.inc()
            return False
        slot = self._advance()
        self._retries[slot] += 1
        self._total_retries += 1
        self._attempts.inc()
        return True
