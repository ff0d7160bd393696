"""The gateway's per-client rate limit: a token bucket per client id.

The limit comes from settings (`RATE_LIMIT_RPS`, 0 = none) unless the
`rate_limit_rps` fault overrides it (the rate-limit-misconfig incident). A client is
named by its `X-Client-ID` header, else its address; refusals are 429 with
`Retry-After`, counted in `rate_limited_total{client}`.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from services.common.web.errors import ChaoslabError
from services.common.web.metrics import rate_limited_total

_MAX_CLIENTS = 10_000


class RateLimited(ChaoslabError):
    code = "rate_limited"
    http_status = 429


class RateLimiter:
    def __init__(self, limit_rps: Callable[[], float], clock: Callable[[], float] = time.monotonic) -> None:
        self.limit_rps = limit_rps
        self.clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # client -> (tokens, last refill)

    def check(self, client: str) -> None:
        """Take one token for `client`, or raise RateLimited."""
        rate = self.limit_rps()
        if not rate:
            return
        burst = max(1.0, rate)
        now = self.clock()
        tokens, last = self._buckets.get(client, (burst, now))
        tokens = min(burst, tokens + (now - last) * rate)
        if tokens < 1:
            self._buckets[client] = (tokens, now)
            rate_limited_total.labels(client[:64]).inc()
            raise RateLimited(
                f"client {client!r} is over its limit of {rate:g} requests/s", retry_after_s=(1 - tokens) / rate
            )
        if len(self._buckets) >= _MAX_CLIENTS and client not in self._buckets:
            self._buckets.clear()  # bounded memory; a reset only ever lets more through
        self._buckets[client] = (tokens - 1, now)
