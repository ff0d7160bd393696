"""Circuit breaker: every transition and parameter, on a fake clock."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from prometheus_client import REGISTRY

from services.common.resilience.breaker import BreakerConfig, BreakerState, CircuitBreaker
from services.common.web import errors
from tests.support.profiles import breaker_config

_names = itertools.count()


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def make(clock: FakeClock | None = None, **overrides: Any) -> tuple[CircuitBreaker, FakeClock]:
    config: dict[str, Any] = dict(
        window_type="count",
        window_size=10,
        minimum_calls=10,
        failure_rate_threshold=50.0,
        slow_call_duration_s=1.0,
        slow_call_rate_threshold=80.0,
        wait_in_open_s=30.0,
        permitted_calls_in_half_open=3,
    )
    config.update(overrides)
    clock = clock or FakeClock()
    return CircuitBreaker(f"test-breaker-{next(_names)}", BreakerConfig(**config), clock), clock


def call(breaker: CircuitBreaker, failed: bool = False, duration_s: float = 0.01) -> None:
    breaker.acquire()
    breaker.record(duration_s, failed)


def trip(breaker: CircuitBreaker) -> None:
    for _ in range(breaker.config.window_size):
        call(breaker, failed=True)
    assert breaker.state is BreakerState.OPEN


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_starts_closed_and_admits():
    breaker, _ = make()
    assert breaker.state is BreakerState.CLOSED
    for _ in range(100):
        call(breaker)
    assert breaker.state is BreakerState.CLOSED
    assert metric("breaker_state", downstream=breaker.name) == 0


def test_never_trips_below_minimum_calls():
    breaker, _ = make(window_size=20, minimum_calls=10)
    for _ in range(9):
        call(breaker, failed=True)
    assert breaker.state is BreakerState.CLOSED
    call(breaker, failed=True)
    assert breaker.state is BreakerState.OPEN


def test_minimum_calls_larger_than_count_window_is_capped_by_the_window():
    breaker, _ = make(window_size=5, minimum_calls=50)
    for _ in range(5):
        call(breaker, failed=True)
    assert breaker.state is BreakerState.OPEN


@pytest.mark.parametrize(("failures", "expected"), [(49, BreakerState.CLOSED), (50, BreakerState.OPEN)])
def test_failure_rate_threshold_edge(failures, expected):
    breaker, _ = make(window_size=100, minimum_calls=100, failure_rate_threshold=50.0)
    for _ in range(100 - failures):
        call(breaker)
    for _ in range(failures):
        call(breaker, failed=True)
    assert breaker.state is expected


def test_count_window_forgets_old_outcomes():
    breaker, _ = make(window_size=10, minimum_calls=10)
    for _ in range(4):
        call(breaker, failed=True)
    for _ in range(10):  # pushes the four failures out of the window
        call(breaker)
    for _ in range(4):
        call(breaker, failed=True)
    assert breaker.state is BreakerState.CLOSED  # 4/10 in the window
    call(breaker, failed=True)
    assert breaker.state is BreakerState.OPEN  # 5/10


@pytest.mark.parametrize(("slow", "expected"), [(7, BreakerState.CLOSED), (8, BreakerState.OPEN)])
def test_slow_call_rate_trips_even_when_every_call_succeeds(slow, expected):
    breaker, _ = make(window_size=10, minimum_calls=10, slow_call_duration_s=1.0, slow_call_rate_threshold=80.0)
    for _ in range(10 - slow):
        call(breaker, duration_s=0.5)
    for _ in range(slow):
        call(breaker, duration_s=1.5)
    assert breaker.state is expected


def test_a_call_of_exactly_the_slow_duration_is_not_slow():
    breaker, _ = make(window_size=2, minimum_calls=2, slow_call_duration_s=1.0, slow_call_rate_threshold=50.0)
    call(breaker, duration_s=1.0)
    call(breaker, duration_s=1.0)
    assert breaker.state is BreakerState.CLOSED


def test_open_rejects_in_microseconds_with_retry_after_until_half_open():
    breaker, clock = make(wait_in_open_s=30.0)
    trip(breaker)
    clock.advance(10)
    with pytest.raises(errors.BreakerOpen) as caught:
        breaker.acquire()
    assert caught.value.retry_after_s == pytest.approx(20.0)
    assert caught.value.downstream == breaker.name
    assert caught.value.headers() == {"Retry-After": "20", "X-Failed-Dependency": breaker.name}
    assert metric("breaker_calls_total", downstream=breaker.name, outcome="rejected") == 1
    assert metric("breaker_state", downstream=breaker.name) == 1


def test_open_moves_to_half_open_after_the_wait():
    breaker, clock = make(wait_in_open_s=30.0)
    trip(breaker)
    clock.advance(29.999)
    assert breaker.state is BreakerState.OPEN
    clock.advance(0.001)
    assert breaker.state is BreakerState.HALF_OPEN
    assert breaker.snapshot()["seconds_until_half_open"] == 0
    assert metric("breaker_state", downstream=breaker.name) == 2
    assert metric("breaker_transitions_total", downstream=breaker.name, **{"from": "open", "to": "half_open"}) == 1


def test_half_open_admits_only_the_permitted_trial_calls():
    breaker, clock = make(permitted_calls_in_half_open=3)
    trip(breaker)
    clock.advance(30)
    for _ in range(3):
        breaker.acquire()
    with pytest.raises(errors.BreakerOpen):
        breaker.acquire()
    breaker.release()  # one trial was never sent: its permit comes back
    breaker.acquire()
    with pytest.raises(errors.BreakerOpen):
        breaker.acquire()


def test_half_open_closes_when_trials_succeed():
    breaker, clock = make(permitted_calls_in_half_open=3)
    trip(breaker)
    clock.advance(30)
    for _ in range(3):
        call(breaker)
    assert breaker.state is BreakerState.CLOSED
    assert metric("breaker_transitions_total", downstream=breaker.name, **{"from": "half_open", "to": "closed"}) == 1
    # Closed starts from a clean window: one failure does not re-trip it.
    call(breaker, failed=True)
    assert breaker.state is BreakerState.CLOSED


def test_half_open_reopens_when_trials_fail_at_the_threshold():
    breaker, clock = make(permitted_calls_in_half_open=4, failure_rate_threshold=50.0)
    trip(breaker)
    clock.advance(30)
    call(breaker)
    call(breaker)
    call(breaker, failed=True)
    assert breaker.state is BreakerState.HALF_OPEN  # decides after all four
    call(breaker, failed=True)
    assert breaker.state is BreakerState.OPEN
    assert breaker.seconds_until_half_open() == pytest.approx(30.0)
    assert metric("breaker_transitions_total", downstream=breaker.name, **{"from": "half_open", "to": "open"}) == 1


def test_half_open_reopens_on_slow_trials():
    breaker, clock = make(permitted_calls_in_half_open=2, slow_call_rate_threshold=50.0)
    trip(breaker)
    clock.advance(30)
    call(breaker, duration_s=0.1)
    call(breaker, duration_s=5.0)
    assert breaker.state is BreakerState.OPEN


def test_late_outcome_of_a_call_admitted_before_opening_is_ignored():
    breaker, clock = make(window_size=2, minimum_calls=2, permitted_calls_in_half_open=1)
    breaker.acquire()  # a slow call, admitted while closed
    trip(breaker)
    breaker.record(0.01, False)  # lands while open
    assert breaker.state is BreakerState.OPEN
    clock.advance(30)
    assert breaker.state is BreakerState.HALF_OPEN
    breaker.record(0.01, False)  # no trial permit is out: not a trial outcome
    assert breaker.state is BreakerState.HALF_OPEN


def test_release_does_not_count_as_success_or_failure():
    """A 429 (or a call never sent) is given back with release(): it moves no rate."""
    breaker, _ = make(window_size=4, minimum_calls=4)
    for _ in range(3):
        call(breaker, failed=True)
    for _ in range(10):
        breaker.acquire()
        breaker.release()
    assert breaker.state is BreakerState.CLOSED
    assert breaker.snapshot()["calls"] == 3


def test_4xx_counts_as_success():
    """The caller records a 4xx with failed=False: bad requests never trip a breaker."""
    breaker, _ = make(window_size=10, minimum_calls=10)
    for _ in range(10):
        call(breaker, failed=False)  # e.g. 402 payment declined, 409 out of stock
    assert breaker.state is BreakerState.CLOSED
    assert breaker.snapshot()["failure_rate"] == 0.0


def test_time_window_expires_old_outcomes():
    breaker, clock = make(window_type="time", window_size=10, minimum_calls=5)
    for _ in range(4):
        call(breaker, failed=True)
    clock.advance(10)  # those four are now out of the 10 s window
    for _ in range(4):
        call(breaker)
    call(breaker, failed=True)
    assert breaker.state is BreakerState.CLOSED  # 1/5 in the window
    assert breaker.snapshot()["calls"] == 5


def test_time_window_trips_within_the_window():
    breaker, clock = make(window_type="time", window_size=10, minimum_calls=5)
    for _ in range(5):
        call(breaker, failed=True)
        clock.advance(1.9)  # spread over 7.6 s: all in the window
    assert breaker.state is BreakerState.OPEN


def test_time_window_minimum_calls_counts_only_live_calls():
    breaker, clock = make(window_type="time", window_size=5, minimum_calls=4)
    for _ in range(3):
        call(breaker, failed=True)
    clock.advance(3)
    call(breaker, failed=True)  # 4 calls in the window: trips
    assert breaker.state is BreakerState.OPEN

    breaker, clock = make(window_type="time", window_size=5, minimum_calls=4)
    for _ in range(3):
        call(breaker, failed=True)
    clock.advance(6)
    call(breaker, failed=True)  # the first three expired: 1 call, below the minimum
    assert breaker.state is BreakerState.CLOSED


def test_snapshot_reports_rates_and_time_until_half_open():
    breaker, clock = make(window_size=10, minimum_calls=10, wait_in_open_s=30)
    for _ in range(6):
        call(breaker, duration_s=2.0)
    for _ in range(3):
        call(breaker, failed=True)
    snap = breaker.snapshot()
    assert snap == {
        "name": breaker.name,
        "state": "closed",
        "failure_rate": 33.33,
        "slow_rate": 66.67,
        "calls": 9,
        "minimum_calls": 10,
        "seconds_until_half_open": 0.0,
    }
    call(breaker, failed=True)  # 4/10
    call(breaker, failed=True)  # pushes out a slow success: 5/10, trips
    clock.advance(5)
    snap = breaker.snapshot()
    assert snap["state"] == "open" and snap["seconds_until_half_open"] == 25.0


def test_outcome_metrics():
    breaker, _ = make(window_size=100, minimum_calls=100)
    call(breaker)
    call(breaker, failed=True)
    call(breaker, duration_s=3.0)
    call(breaker, failed=True, duration_s=3.0)
    for outcome in ("success", "failure", "slow_success", "slow_failure"):
        assert metric("breaker_calls_total", downstream=breaker.name, outcome=outcome) == 1


def test_config_rejects_nonsense():
    with pytest.raises(ValueError):
        breaker_config(window_type="sliding")
    with pytest.raises(ValueError):
        breaker_config(permitted_calls_in_half_open=0)


class BreakerMachine(RuleBasedStateMachine):
    """Random acquire/record/release/clock sequences against the three promises.

    A phase is the time between two transitions; the model tracks which phase admitted
    each call in flight. Every step makes at most one transition (the state is read after
    each step, which settles open -> half-open), so a phase ends when the state read differs.
    """

    def __init__(self) -> None:
        super().__init__()
        self.clock = FakeClock()
        self.config: BreakerConfig | None = None
        self.breaker: CircuitBreaker | None = None
        self.inflight: list[tuple[int, float, BreakerState]] = []  # (permit, phase, state at admission)
        self.phase = 0
        self.last_state = BreakerState.CLOSED
        self.admitted_in_half_open = 0  # in the current phase, net of releases
        self.closed_records: list[float] = []  # times of outcomes of this closed phase's calls

    @precondition(lambda self: self.breaker is None)
    @rule(
        window_type=st.sampled_from(["count", "time"]),
        window_size=st.integers(1, 12),
        minimum_calls=st.integers(1, 12),
        threshold=st.floats(1, 100),
        permitted=st.integers(1, 4),
    )
    def build(self, window_type, window_size, minimum_calls, threshold, permitted):
        self.config = BreakerConfig(
            window_type=window_type,
            window_size=window_size,
            minimum_calls=minimum_calls,
            failure_rate_threshold=threshold,
            slow_call_duration_s=1.0,
            slow_call_rate_threshold=threshold,
            wait_in_open_s=5.0,
            permitted_calls_in_half_open=permitted,
        )
        self.breaker = CircuitBreaker(f"prop-{next(_names)}", self.config, self.clock)

    @property
    def live(self) -> CircuitBreaker:
        assert self.breaker is not None  # every rule but `build` runs after it
        return self.breaker

    @property
    def built(self) -> BreakerConfig:
        assert self.config is not None
        return self.config

    def _observe(self, before: BreakerState) -> None:
        after = self.live.state  # reading the state may itself move open -> half-open
        if after is self.last_state:
            return
        before = self.last_state
        self.last_state = after
        if before is BreakerState.CLOSED and after is BreakerState.OPEN:
            live = self.closed_records
            if self.built.window_type == "time":
                live = [t for t in live if t > self.clock.now - self.built.window_size]
            minimum = self.built.minimum_calls
            if self.built.window_type == "count":
                minimum = min(minimum, self.built.window_size)
            assert len(live) >= minimum, "tripped below minimum_calls"
        self.phase += 1
        self.admitted_in_half_open = 0
        self.closed_records = []

    @precondition(lambda self: self.breaker is not None)
    @rule()
    def acquire(self):
        state = self.live.state
        self._observe(state)
        try:
            permit = self.live.acquire()
        except errors.BreakerOpen:
            assert state is not BreakerState.CLOSED
            return
        assert state is not BreakerState.OPEN
        self.inflight.append((permit, self.phase, state))
        if state is BreakerState.HALF_OPEN:
            self.admitted_in_half_open += 1

    @precondition(lambda self: self.breaker is not None and self.inflight)
    @rule(index=st.integers(0, 50), failed=st.booleans(), slow=st.booleans())
    def record(self, index, failed, slow):
        before = self.live.state
        self._observe(before)
        permit, phase, _ = self.inflight.pop(index % len(self.inflight))
        if before is BreakerState.CLOSED and phase == self.phase:
            self.closed_records.append(self.clock.now)
        self.live.record(2.0 if slow else 0.1, failed, permit)
        self._observe(before)

    @precondition(lambda self: self.breaker is not None and self.inflight)
    @rule(index=st.integers(0, 50))
    def release(self, index):
        before = self.live.state
        self._observe(before)
        permit, phase, state = self.inflight.pop(index % len(self.inflight))
        self.live.release(permit)
        if state is BreakerState.HALF_OPEN and phase == self.phase:
            self.admitted_in_half_open -= 1
        self._observe(before)

    @precondition(lambda self: self.breaker is not None)
    @rule(seconds=st.sampled_from([0.5, 1.0, 3.0, 5.0, 20.0]))
    def advance(self, seconds):
        before = self.live.state
        self.clock.advance(seconds)
        self._observe(before)

    @invariant()
    def stays_in_its_three_states(self):
        if self.breaker is not None:
            assert self.live.state in (BreakerState.CLOSED, BreakerState.OPEN, BreakerState.HALF_OPEN)

    def teardown(self):
        if self.breaker is not None:  # once per run: reading the registry is slow
            gauge = metric("breaker_state", downstream=self.live.name)
            assert gauge == int(self.live.state)

    @invariant()
    def never_admits_more_than_permitted_in_half_open(self):
        if self.breaker is not None:
            self._observe(self.live.state)
            assert self.admitted_in_half_open <= self.built.permitted_calls_in_half_open


BreakerMachine.TestCase.settings = settings(max_examples=150, stateful_step_count=60, deadline=None)
TestBreakerProperties = BreakerMachine.TestCase


def test_force_open_keeps_the_time_left_and_does_not_republish():
    breaker, clock = make()
    published: list[CircuitBreaker] = []
    breaker.on_trip = published.append
    breaker.force_open(2.0)
    assert breaker.state is BreakerState.OPEN
    assert breaker.seconds_until_half_open() == pytest.approx(2.0)
    assert published == []  # opened on another replica's evidence
    clock.advance(2.0)
    assert breaker.state is BreakerState.HALF_OPEN


def test_tripping_on_own_evidence_publishes():
    breaker, _clock = make()
    published: list[CircuitBreaker] = []
    breaker.on_trip = published.append
    trip(breaker)
    assert published == [breaker]
