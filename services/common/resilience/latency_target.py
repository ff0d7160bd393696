"""Latency-target limit: the door admits as many requests at once as it can answer within
a target latency (additive increase, multiplicative decrease: Netflix concurrency-limits'
AIMD limit, with the admitted requests' slow tail as the signal).

It trips (429 + Retry-After) when the requests in flight reach the limit. Every admitted
request that finishes is a sample; once per window of samples (as many as the limit, at
least `min_window`: about one round trip of the whole door) the window's 90th percentile
is compared with `target_s`: past it, in a busy window (one that saw at least half the
limit in flight), the limit is cut by `backoff`; otherwise it grows by one, between
`min_limit` and `max_limit` (the door's `max_inflight`). Watch `concurrency_limit`.

Why the tail against a fixed target rather than a gradient against a measured quiet
latency (adaptive.py): the answer a shed request's neighbours are promised is a number
(the admitted p99 under overload: 500 ms), and a static door that keeps it on one machine
breaks it on a slower one: door 88 kept 463 ms on one day, 514-561 ms on a busier one.
Here the door follows the machine: it settles where more concurrency would pass the
target. It needs no probe, so nothing waits in a queue and a 429 costs what a static
door's does.
"""

from __future__ import annotations

from dataclasses import dataclass

from services.common.resilience.adaptive import CONCURRENCY_LIMIT

# The window's percentile compared with the target: the tail, but one a window of a few
# dozen samples measures (its p99 would be its slowest request).
TAIL = 0.9


@dataclass(frozen=True, kw_only=True)
class LatencyTargetConfig:
    """`target_s`: the 90th percentile of admitted latency the limit keeps. `backoff`: the
    share of the limit a window past the target keeps (0-1). `min_window`: the fewest
    samples a window judges on."""

    min_limit: int
    max_limit: int
    target_s: float
    backoff: float = 0.9
    min_window: int = 20

    def __post_init__(self) -> None:
        if not 1 <= self.min_limit <= self.max_limit:
            raise ValueError("the limits must satisfy 1 <= min_limit <= max_limit")
        if self.target_s <= 0 or not 0 < self.backoff < 1 or self.min_window < 1:
            raise ValueError("target_s must be > 0, backoff in (0, 1) and min_window >= 1")


class LatencyTargetLimit:
    """The limit; `update(rtt_s, inflight)` after every admitted request finishes. It
    starts at `max_limit`: a door like the static one until latency says otherwise."""

    queue_capacity = 0  # past the limit, refused at once: no probe ever needs a queue

    def __init__(self, config: LatencyTargetConfig) -> None:
        self.config = config
        self.estimate = float(config.max_limit)
        self.tail_s = 0.0  # the last window's 90th percentile
        self._median_s = 0.0
        self._window: list[float] = []
        self._window_inflight = 0  # the most requests in flight a sample of the window saw
        CONCURRENCY_LIMIT.set(self.limit)

    @property
    def limit(self) -> int:
        return int(self.estimate)

    @property
    def usual_latency_s(self) -> float:
        """The last window's median latency (0 until the first window ends)."""
        return self._median_s

    def update(self, rtt_s: float, inflight: int) -> int:
        """Take one sample: a finished request's latency and the requests in flight when
        it was admitted."""
        self._window.append(rtt_s)
        self._window_inflight = max(self._window_inflight, inflight)
        if len(self._window) >= max(self.limit, self.config.min_window):
            self._end_window()
        return self.limit

    def _end_window(self) -> None:
        cfg = self.config
        ordered = sorted(self._window)
        # Below half the limit the clients set the pace: a slow window is a slow dependency
        # or requests waiting on each other (a duplicate storm), not a door let too wide.
        busy = self._window_inflight >= self.estimate / 2
        self._window, self._window_inflight = [], 0
        self.tail_s = ordered[min(len(ordered) - 1, int(len(ordered) * TAIL))]
        self._median_s = ordered[len(ordered) // 2]
        cut = busy and self.tail_s > cfg.target_s
        estimate = self.estimate * cfg.backoff if cut else self.estimate + 1
        self.estimate = max(float(cfg.min_limit), min(float(cfg.max_limit), estimate))
        CONCURRENCY_LIMIT.set(self.limit)
