"""Shed pacing: the `Retry-After` of a shed request follows the excess, so that the
clients a door turns away come back no faster than it can take a share of them in.

It trips when a window (`window_s`) shed more than `TARGET` (a quarter) of what it
admitted: the answers after it say to wait longer, by the square root of the excess, up
to `max_s`. A window under the target brings the wait back down, and a whole window
without a shed request puts it back to `base_s`. Watch `load_shed_retry_after_seconds`.

Why: a fixed `Retry-After` sends every shed client back after the same second. Under the
spike (500 users, bench/overload.py) the gateway answered two 429s for every order it
took, and those answers took CPU, the gateway's and the clients', that orders needed."""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from prometheus_client import Gauge

RETRY_AFTER = Gauge(
    "load_shed_retry_after_seconds", "The wait a shed request is told (Retry-After), before rounding up."
)


# Sheds per admitted request that the wait aims at. A door sheds only while it is full,
# so any shedding at all keeps it full; each 429 beyond that costs CPU (the gateway's
# and the client's) that admitted requests need.
TARGET = 0.25


class ShedPacing:
    """Counts a door's admitted and shed requests per window; `shed()` is the wait to tell.

    `max_s` equal to `base_s` keeps `Retry-After` fixed."""

    def __init__(
        self,
        base_s: float,
        max_s: float,
        *,
        target: float = TARGET,
        window_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.base_s, self.max_s, self.target, self.window_s = base_s, max(base_s, max_s), target, window_s
        self._clock = clock
        self.seconds = base_s
        self._admitted = self._shed = 0
        self._window_end = clock() + window_s
        RETRY_AFTER.set(base_s)

    def admitted(self) -> None:
        """A request went through the door (the hot path: a count, nothing more)."""
        self._admitted += 1

    def shed(self) -> float:
        """A request is shed: the seconds it should wait before coming back."""
        self._shed += 1
        now = self._clock()
        if now >= self._window_end:
            self._turn(now)
        return self.seconds

    def _turn(self, now: float) -> None:
        if now >= self._window_end + self.window_s:
            # A whole window shed nothing (this request is the first since): the excess
            # that made the wait long is gone.
            self.seconds = self.base_s
        else:
            # The window's sheds (not this request's) per admitted request, against the target.
            excess = (self._shed - 1) / max(1, self._admitted) / self.target
            self.seconds = min(self.max_s, max(self.base_s, self.seconds * math.sqrt(excess)))
        self._admitted, self._shed = 0, 1
        self._window_end = now + self.window_s
        RETRY_AFTER.set(self.seconds)
