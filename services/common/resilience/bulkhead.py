"""Bulkhead: at most `max_concurrent` calls to one downstream in flight at once.

A call past the limit waits up to `max_wait_s` for a slot (0: not at all) and is then
rejected with `errors.BulkheadFull`, so one slow downstream cannot take every worker.
Watch `bulkhead_rejections_total{downstream}` and `bulkhead_inflight{downstream}`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from types import TracebackType

from prometheus_client import Counter, Gauge

from services.common.web import errors

BULKHEAD_REJECTIONS = Counter(
    "bulkhead_rejections_total", "Calls rejected because the bulkhead was full.", ["downstream"]
)
BULKHEAD_INFLIGHT = Gauge("bulkhead_inflight", "Calls in flight through a bulkhead.", ["downstream"])


class Bulkhead:
    """`async with bulkhead:` around one call; or `await acquire()` ... `release()`.

    Waiters are served first come, first served: a freed slot is handed to the oldest
    waiter directly, so a newcomer cannot overtake someone who has been waiting.
    """

    def __init__(self, name: str, max_concurrent: int, max_wait_s: float) -> None:
        if max_concurrent < 1:
            raise ValueError("max_concurrent must be >= 1")
        self.name = name
        self.max_concurrent = max_concurrent
        self.max_wait_s = max_wait_s
        self.inflight = 0
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._rejections = BULKHEAD_REJECTIONS.labels(name)
        self._gauge = BULKHEAD_INFLIGHT.labels(name)

    async def acquire(self) -> None:
        if self.inflight < self.max_concurrent and not self._waiters:
            self.inflight += 1
            self._gauge.inc()
            return
        if self.max_wait_s <= 0:
            self._reject()
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            async with asyncio.timeout(self.max_wait_s):
                await waiter
        except TimeoutError:
            if waiter.done() and not waiter.cancelled():
                return  # the slot was handed over as the timer fired: it is ours
            self._remove(waiter)
            self._reject()
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self.release()  # handed a slot we will never use: pass it on
            else:
                self._remove(waiter)
            raise

    def release(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)  # the slot changes hands; inflight stays
                return
        self.inflight -= 1
        self._gauge.dec()

    def _remove(self, waiter: asyncio.Future[None]) -> None:
        with contextlib.suppress(ValueError):
            self._waiters.remove(waiter)

    def _reject(self) -> None:
        self._rejections.inc()
        raise errors.BulkheadFull(
            self.name,
            f"{self.inflight} calls to {self.name} already in flight (limit {self.max_concurrent})",
            retry_after_s=1,
        )

    async def __aenter__(self) -> Bulkhead:
        await self.acquire()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()
