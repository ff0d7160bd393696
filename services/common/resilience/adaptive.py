"""Adaptive concurrency limit: how many requests a service admits at once, learnt from
the latency of the ones it admitted (Envoy's adaptive concurrency filter; the gradient
of Netflix concurrency-limits).

It trips (the door queues briefly, then answers 429 + Retry-After) when the requests in
flight reach the limit; watch `concurrency_limit`, `concurrency_min_rtt_seconds` and
`load_shed_total`.

The service's quiet latency (`min_rtt`) is measured by a probe: the mean of
`probe_samples` requests admitted at `min_limit`. A probe runs only when the door is busy
(a window of samples saw at least half the limit in flight) and the last one is older
than `probe_interval_s`: a handful of clients never meets one, and the first probe waits
for the first load worth learning from (until then the limit stays at `initial`). During
a probe the requests past `min_limit` wait in the door's queue rather than being shed.
Between probes every finished request is a sample, and the limit moves once per window
of samples (as many as the limit, at least `probe_samples`: about one round trip of the
whole window, as TCP Vegas moves once per RTT), from the window's mean latency `rtt`. A
service's routes differ in latency: the mean of a mix compares with the mean of the same
mix, where a minimum would only find the cheapest route. The gradient
`min_rtt x tolerance / rtt` falls below 1 as soon as requests wait in a queue, and the
limit shrinks by its square root; while nothing waits, it grows by
a headroom of sqrt(limit) x `smoothing` (slow up, fast down, as TCP); a quiet window
(below half the limit in flight) that did not queue grows it back towards `initial` the
same way, so the low limit of a surge does not outlive it. So the limit
settles where more concurrency would only add waiting (Little's law: concurrency =
throughput x latency), and the latency it keeps is a multiple of the one this machine
measured, not a fixed number that a slower or busier machine could never meet.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from prometheus_client import Gauge

CONCURRENCY_LIMIT = Gauge(
    "concurrency_limit", "Requests a service admits at once (its adaptive or latency-target limit)."
)
MIN_RTT = Gauge("concurrency_min_rtt_seconds", "The quiet latency the adaptive limit measured at its last probe.")


@dataclass(frozen=True, kw_only=True)
class AdaptiveConfig:
    """`tolerance`: how much slower than the quiet latency a window may be before it
    counts as queueing (the latency the limit keeps: a multiple of the measured one).
    `probe_interval_s`: how often, at most, the quiet latency is measured again, over
    `probe_samples` requests admitted at `min_limit`. `smoothing`: the share of the
    headroom sqrt(limit) the limit grows by at each window of samples that saw no
    queueing (0-1); it shrinks by the gradient's square root."""

    initial: int
    min_limit: int
    max_limit: int
    tolerance: float
    probe_interval_s: float
    probe_samples: int
    smoothing: float

    def __post_init__(self) -> None:
        if not 1 <= self.min_limit <= self.initial <= self.max_limit:
            raise ValueError("the limits must satisfy 1 <= min_limit <= initial <= max_limit")
        if self.tolerance < 1 or self.probe_interval_s <= 0:
            raise ValueError("probe_interval_s must be > 0 and tolerance >= 1")
        if self.probe_samples < 1 or not 0 < self.smoothing <= 1:
            raise ValueError("probe_samples must be >= 1 and smoothing in (0, 1]")


class GradientLimit:
    """The limit; `update(rtt_s, inflight)` after every admitted request finishes."""

    def __init__(self, config: AdaptiveConfig, clock: Callable[[], float]) -> None:
        self.config = config
        self._clock = clock
        self.estimate = float(config.initial)
        self.min_rtt_s = 0.0
        self.rtt_s = 0.0  # the mean latency of the last window
        self._window: list[float] = []
        self._window_inflight = 0  # the most requests in flight a sample of the window saw
        self._probe: list[float] | None = None  # the first one waits for load worth learning from
        self._next_probe = 0.0
        CONCURRENCY_LIMIT.set(self.limit)

    @property
    def limit(self) -> int:
        """What the door admits now: the estimate, or `min_limit` while probing."""
        return self.config.min_limit if self._probe is not None else int(self.estimate)

    @property
    def usual_latency_s(self) -> float:
        """The quiet latency of the last probe (0 until the first one ends)."""
        return self.min_rtt_s

    @property
    def queue_capacity(self) -> int:
        """How many requests may wait at the door for a slot: as many as the estimate (a
        probe's low limit included), so a wait lasts about one latency (Little's law)."""
        return int(self.estimate)

    @property
    def probing(self) -> bool:
        return self._probe is not None

    def update(self, rtt_s: float, inflight: int) -> int:
        """Take one sample: a finished request's latency and the requests in flight when
        it was admitted. Returns the limit to apply from now on."""
        cfg = self.config
        if self._probe is not None:
            if inflight <= cfg.min_limit:  # admitted under the probe's own limit
                self._probe.append(rtt_s)
            if len(self._probe) >= cfg.probe_samples:
                self.min_rtt_s = sum(self._probe) / len(self._probe)
                MIN_RTT.set(self.min_rtt_s)
                self._probe = None
                self._next_probe = self._clock() + cfg.probe_interval_s
                self._window, self._window_inflight = [], 0
        else:
            self._window.append(rtt_s)
            self._window_inflight = max(self._window_inflight, inflight)
            # Before the first probe a window only has to tell whether the door is busy.
            size = max(int(self.estimate), cfg.probe_samples) if self.min_rtt_s > 0 else cfg.probe_samples
            if len(self._window) >= size:
                self._end_window()
        CONCURRENCY_LIMIT.set(self.limit)
        return self.limit

    def _end_window(self) -> None:
        self.rtt_s = sum(self._window) / len(self._window)
        # Below half the limit the clients set the pace: nothing is probed, nothing cut.
        busy = self._window_inflight >= self.estimate / 2
        self._window, self._window_inflight = [], 0
        if not busy:
            self._recover()
            return
        if self._clock() >= self._next_probe:
            self._probe = []
        elif self.min_rtt_s > 0:
            self._learn(self.rtt_s)

    def _recover(self) -> None:
        """A quiet window (few requests in flight) without queueing: the limit a surge
        taught grows back towards `initial`, as fast as a busy window would grow it, so a
        burst after the surge is over meets the door the service started with. Past
        `initial` only busy windows that did not queue can take it."""
        cfg = self.config
        if self.min_rtt_s > 0 and self.estimate < cfg.initial and self.rtt_s <= self.min_rtt_s * cfg.tolerance:
            self.estimate = min(float(cfg.initial), self.estimate + math.sqrt(self.estimate) * cfg.smoothing)

    def _learn(self, rtt_s: float) -> None:
        cfg = self.config
        gradient = max(0.1, min(1.0, self.min_rtt_s * cfg.tolerance / rtt_s)) if rtt_s > 0 else 1.0
        if gradient < 1.0:
            # Requests queue: cut by the square root of the gradient. A window a little slow
            # (0.8: noise on a busy machine) costs 11 %; one ten times too slow (a limit far
            # above a slow machine's capacity) cuts it to a third, so it falls from its start
            # in two or three round trips, before slow calls open the breakers behind it.
            estimate = self.estimate * math.sqrt(gradient)
        else:
            estimate = self.estimate + math.sqrt(self.estimate) * cfg.smoothing
        self.estimate = max(float(cfg.min_limit), min(float(cfg.max_limit), estimate))
