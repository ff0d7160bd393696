"""Admission queue: a request that finds the door's limit reached waits a moment for a
slot instead of being refused at once; it trips (the waiter gets 429) after `max_wait_s`,
when the queue is full, or at once while the queue is standing. Watch `admission_queue_total`.

A burst a little past the limit, or the moment a probe of the adaptive limit admits only
a few requests, costs the requests a few milliseconds instead of a 429. Past that it must
not become a queue in front of the service (which is what shedding avoids), so it
follows Facebook's CoDel for servers ("Fail at scale", 2015): a queue that has not been
empty for `max_wait_s` is standing, and while it stands a newcomer is refused at once;
and it is served newest first (adaptive LIFO), because the oldest waiter is the one
nearest its deadline and its client's patience. Its capacity comes from the limit
(`queue_capacity`, about one latency's worth of requests; none for a static limit).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable

from prometheus_client import Counter

QUEUED = Counter(
    "admission_queue_total",
    "Requests that waited at the door for a slot, by outcome (admitted, or shed after waiting).",
    ["outcome"],
)


class AdmissionQueue:
    """Waiters for a slot of the door. `wait()` says whether a slot was handed over;
    `hand_over(free)` gives up to `free` slots to the newest waiters; `abandoned` is
    called when a waiter given a slot is gone (its client left) before it could use it."""

    def __init__(
        self,
        capacity: Callable[[], int],
        max_wait_s: float,
        *,
        abandoned: Callable[[], None],
        clock: Callable[[], float],
    ) -> None:
        self._capacity = capacity
        self.max_wait_s = max_wait_s
        self._abandoned = abandoned
        self._clock = clock
        self._waiters: deque[asyncio.Future[bool]] = deque()
        self._busy_since = 0.0  # when the queue last stopped being empty

    def __len__(self) -> int:
        return len(self._waiters)

    def standing(self) -> bool:
        """Not empty for `max_wait_s` already: the service is overloaded, not bursting."""
        return bool(self._waiters) and self._clock() - self._busy_since >= self.max_wait_s

    async def wait(self) -> bool:
        """Wait for a slot; True when one was handed over (the caller is then counted in
        flight already), False when the request is to be shed."""
        if self.max_wait_s <= 0 or len(self._waiters) >= self._capacity() or self.standing():
            return False
        if not self._waiters:
            self._busy_since = self._clock()
        loop = asyncio.get_running_loop()
        slot: asyncio.Future[bool] = loop.create_future()
        self._waiters.append(slot)
        expiry = loop.call_later(self.max_wait_s, self._expire, slot)
        try:
            admitted = await slot
        except asyncio.CancelledError:
            if slot.done() and not slot.cancelled() and slot.result():
                self._abandoned()  # given a slot, gone before using it
            elif slot in self._waiters:
                self._waiters.remove(slot)
            raise
        finally:
            expiry.cancel()
        QUEUED.labels(outcome="admitted" if admitted else "shed").inc()
        return admitted

    def hand_over(self, free: int) -> int:
        """Give up to `free` slots to the newest waiters; returns how many were given."""
        given = 0
        while given < free and self._waiters:
            self._waiters.pop().set_result(True)
            given += 1
        return given

    def _expire(self, slot: asyncio.Future[bool]) -> None:
        if not slot.done():
            self._waiters.remove(slot)
            slot.set_result(False)
