"""Circuit breaker with resilience4j's semantics: failure-rate and slow-call windows.

Trips (closed -> open) once the sliding window holds at least `minimum_calls` outcomes
and the failure rate or the slow-call rate reaches its threshold; after
`wait_in_open_s` it lets `permitted_calls_in_half_open` trial calls through, whose
outcomes close or re-open it. Watch `breaker_state{downstream}` (0 closed, 1 open,
2 half-open) and `breaker_transitions_total{downstream,from,to}`.
"""

from __future__ import annotations

import enum
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from prometheus_client import Counter, Gauge

from services.common.web import errors

BREAKER_STATE = Gauge("breaker_state", "Circuit breaker state: 0 closed, 1 open, 2 half-open.", ["downstream"])
BREAKER_TRANSITIONS = Counter(
    "breaker_transitions_total", "Circuit breaker state changes.", ["downstream", "from", "to"]
)
BREAKER_CALLS = Counter(
    "breaker_calls_total",
    "Calls seen by a circuit breaker, by outcome (success, failure, slow_success, slow_failure, rejected).",
    ["downstream", "outcome"],
)

_FAILED = 1
_SLOW = 2


class BreakerState(enum.IntEnum):
    CLOSED = 0
    OPEN = 1
    HALF_OPEN = 2

    @property
    def label(self) -> str:
        return self.name.lower()


@dataclass(frozen=True, kw_only=True)
class BreakerConfig:
    """When a breaker trips and how it comes back.

    `window_size` is a number of calls for a "count" window and a number of seconds
    (one bucket per second) for a "time" window. Rates are percentages (0-100) and
    trip when reached, as in resilience4j. A call is slow when it lasts longer than
    `slow_call_duration_s`. No field has a default: the values a service runs with
    are the profile table's (services/common/web/settings.py).
    """

    window_type: Literal["count", "time"]
    window_size: int
    minimum_calls: int
    failure_rate_threshold: float
    slow_call_duration_s: float
    slow_call_rate_threshold: float
    wait_in_open_s: float
    permitted_calls_in_half_open: int

    def __post_init__(self) -> None:
        if self.window_type not in ("count", "time"):
            raise ValueError(f"window_type must be 'count' or 'time', not {self.window_type!r}")
        if self.window_size < 1 or self.minimum_calls < 1 or self.permitted_calls_in_half_open < 1:
            raise ValueError("window_size, minimum_calls and permitted_calls_in_half_open must be >= 1")


class _CountWindow:
    """The outcomes of the last `size` calls, as a ring of bit flags."""

    def __init__(self, size: int) -> None:
        self._ring = [0] * size
        self._next = 0
        self.calls = self.failed = self.slow = 0

    def add(self, flags: int, now: float) -> None:
        size = len(self._ring)
        if self.calls == size:
            old = self._ring[self._next]
            self.failed -= old & _FAILED
            self.slow -= (old & _SLOW) >> 1
        else:
            self.calls += 1
        self._ring[self._next] = flags
        self._next = (self._next + 1) % size
        self.failed += flags & _FAILED
        self.slow += (flags & _SLOW) >> 1

    def expire(self, now: float) -> None:
        pass  # a count window never ages


class _TimeWindow:
    """The outcomes of the last `seconds` seconds, in one-second buckets, totals kept
    running so that a call costs O(1) however busy the window is."""

    def __init__(self, seconds: int) -> None:
        self._n = seconds
        self._buckets = [[0, 0, 0] for _ in range(seconds)]  # calls, failed, slow
        self._head: int | None = None  # absolute second of the newest bucket
        self.calls = self.failed = self.slow = 0

    def expire(self, now: float) -> None:
        second = math.floor(now)
        if self._head is None:
            self._head = second
            return
        if second <= self._head:
            return
        for s in range(self._head + 1, min(second, self._head + self._n) + 1):
            bucket = self._buckets[s % self._n]
            self.calls -= bucket[0]
            self.failed -= bucket[1]
            self.slow -= bucket[2]
            bucket[0] = bucket[1] = bucket[2] = 0
        self._head = second

    def add(self, flags: int, now: float) -> None:
        self.expire(now)
        bucket = self._buckets[math.floor(now) % self._n]
        bucket[0] += 1
        bucket[1] += flags & _FAILED
        bucket[2] += (flags & _SLOW) >> 1
        self.calls += 1
        self.failed += flags & _FAILED
        self.slow += (flags & _SLOW) >> 1


class CircuitBreaker:
    """One breaker; `name` is the `downstream` label (e.g. "payments" or "payments@host:port").

    Protocol per call: `permit = acquire()` (raises `errors.BreakerOpen`), then exactly
    one of `record(duration_s, failed, permit)` or `release(permit)` (the call was not
    sent, or its outcome says nothing about the downstream's health, like a 429).
    The permit ties an outcome to the state that admitted it, so a late answer from
    before a transition cannot decide a half-open trial; without it, a half-open breaker
    takes any outcome while trial permits are out.
    """

    def __init__(self, name: str, config: BreakerConfig, clock: Callable[[], float] = time.monotonic) -> None:
        self.name = name
        self.config = config
        self._clock = clock
        self._state = BreakerState.CLOSED
        self._opened_at = 0.0
        self._epoch = 0  # bumped on every transition; what acquire() hands out
        self._window: _CountWindow | _TimeWindow = self._closed_window()
        self._trial_inflight = 0
        self._trial: _CountWindow = _CountWindow(config.permitted_calls_in_half_open)
        # Children looked up once: `.labels()` costs more than the breaker itself.
        self._state_gauge = BREAKER_STATE.labels(name)
        self._outcome = {
            o: BREAKER_CALLS.labels(name, o) for o in ("success", "failure", "slow_success", "slow_failure", "rejected")
        }
        self._state_gauge.set(0)
        # Called when this breaker trips on its own evidence (shared state publishes it).
        self.on_trip: Callable[[CircuitBreaker], None] | None = None

    def force_open(self, seconds_left: float) -> None:
        """Open because another replica of this caller tripped (shared state): stay
        open for the time it has left, as if this breaker had tripped with it."""
        if self._state is BreakerState.CLOSED and seconds_left > 0:
            hook, self.on_trip = self.on_trip, None  # not our evidence: nothing to publish
            try:
                self._transition(BreakerState.OPEN)
            finally:
                self.on_trip = hook
            self._opened_at = self._clock() - max(0.0, self.config.wait_in_open_s - seconds_left)

    def _closed_window(self) -> _CountWindow | _TimeWindow:
        if self.config.window_type == "time":
            return _TimeWindow(self.config.window_size)
        return _CountWindow(self.config.window_size)

    @property
    def state(self) -> BreakerState:
        if self._state is BreakerState.OPEN and self._clock() - self._opened_at >= self.config.wait_in_open_s:
            self._transition(BreakerState.HALF_OPEN)
        return self._state

    def seconds_until_half_open(self) -> float:
        if self.state is not BreakerState.OPEN:
            return 0.0
        return max(0.0, self._opened_at + self.config.wait_in_open_s - self._clock())

    def acquire(self) -> int:
        """Admit a call (returning its permit) or raise `errors.BreakerOpen` at once."""
        state = self.state
        if state is BreakerState.CLOSED:
            return self._epoch
        if state is BreakerState.HALF_OPEN:
            if self._trial_inflight + self._trial.calls < self.config.permitted_calls_in_half_open:
                self._trial_inflight += 1
                return self._epoch
            self._outcome["rejected"].inc()
            # The trial calls in flight decide soon; 1 s is Retry-After's smallest unit.
            raise errors.BreakerOpen(
                self.name,
                f"circuit breaker for {self.name} is half-open and its trial calls are in flight",
                retry_after_s=1.0,
            )
        self._outcome["rejected"].inc()
        wait = self.seconds_until_half_open()
        raise errors.BreakerOpen(
            self.name,
            f"circuit breaker for {self.name} is open; trial calls in {wait:.1f} s",
            retry_after_s=wait,
        )

    def release(self, permit: int | None = None) -> None:
        """Give back a permission whose call was not sent or whose outcome is ignored."""
        if permit is not None and permit != self._epoch:
            return  # granted before a transition: that state's accounting is gone
        if self._state is BreakerState.HALF_OPEN and self._trial_inflight > 0:
            self._trial_inflight -= 1

    def record(self, duration_s: float, failed: bool, permit: int | None = None) -> None:
        """The outcome of an admitted call; `failed` means 5xx, timeout or connection error."""
        slow = duration_s > self.config.slow_call_duration_s
        flags = (_FAILED if failed else 0) | (_SLOW if slow else 0)
        self._outcome[("slow_" if slow else "") + ("failure" if failed else "success")].inc()
        now = self._clock()
        state = self.state
        if permit is not None and permit != self._epoch:
            return  # a late answer from before the last transition: the decision is taken
        if state is BreakerState.CLOSED:
            self._window.add(flags, now)
            minimum = self.config.minimum_calls
            if self.config.window_type == "count":
                minimum = min(minimum, self.config.window_size)
            if self._window.calls >= minimum and self._over_threshold(self._window):
                self._transition(BreakerState.OPEN)
        elif state is BreakerState.HALF_OPEN:
            # Without a trial permit in flight this outcome belongs to a call admitted
            # before the breaker opened: it says nothing about the trial.
            if self._trial_inflight == 0:
                return
            self._trial_inflight -= 1
            self._trial.add(flags, now)
            if self._trial.calls >= self.config.permitted_calls_in_half_open:
                tripped = self._over_threshold(self._trial)
                self._transition(BreakerState.OPEN if tripped else BreakerState.CLOSED)
        # OPEN: a late outcome of a call admitted while closed; the decision is taken.

    def _over_threshold(self, window: _CountWindow | _TimeWindow) -> bool:
        calls = window.calls
        return (
            window.failed * 100.0 >= self.config.failure_rate_threshold * calls
            or window.slow * 100.0 >= self.config.slow_call_rate_threshold * calls
        )

    def _transition(self, to: BreakerState) -> None:
        before = self._state
        self._state = to
        self._epoch += 1
        if to is BreakerState.OPEN:
            self._opened_at = self._clock()
        elif to is BreakerState.HALF_OPEN:
            self._trial_inflight = 0
            self._trial = _CountWindow(self.config.permitted_calls_in_half_open)
        else:
            self._window = self._closed_window()
        self._state_gauge.set(int(to))
        BREAKER_TRANSITIONS.labels(self.name, before.label, to.label).inc()
        if to is BreakerState.OPEN and self.on_trip is not None:
            self.on_trip(self)

    def snapshot(self) -> dict[str, Any]:
        """What `/status/breakers` shows; rates are percentages of the current window."""
        state = self.state
        if state is BreakerState.CLOSED:
            self._window.expire(self._clock())
        window = self._trial if state is BreakerState.HALF_OPEN else self._window
        calls = window.calls
        return {
            "name": self.name,
            "state": state.label,
            "failure_rate": round(100.0 * window.failed / calls, 2) if calls else 0.0,
            "slow_rate": round(100.0 * window.slow / calls, 2) if calls else 0.0,
            "calls": calls,
            "minimum_calls": self.config.minimum_calls,
            "seconds_until_half_open": round(self.seconds_until_half_open(), 3),
        }
