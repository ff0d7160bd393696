"""Backoff and retry budget, on a fake clock."""

from __future__ import annotations

import itertools
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import REGISTRY

from services.common.resilience.retry import RetryBudget, backoff_s

_names = itertools.count()


class FakeClock:
    def __init__(self, now: float = 500.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def budget(ratio=0.2, window_s=10.0, min_per_s=0.0, clock=None) -> tuple[RetryBudget, FakeClock]:
    clock = clock or FakeClock()
    return RetryBudget(ratio, window_s, min_per_s, clock, name=f"retry-test-{next(_names)}"), clock


def test_backoff_grows_exponentially_up_to_the_cap():
    top = lambda: 0.999999  # noqa: E731 - the largest draw of the jitter
    assert backoff_s(1, 0.1, 5.0, top) == pytest.approx(0.1, rel=1e-5)
    assert backoff_s(2, 0.1, 5.0, top) == pytest.approx(0.2, rel=1e-5)
    assert backoff_s(4, 0.1, 5.0, top) == pytest.approx(0.8, rel=1e-5)
    assert backoff_s(10, 0.1, 5.0, top) == pytest.approx(5.0, rel=1e-5)
    assert backoff_s(10_000, 0.1, 5.0, top) == pytest.approx(5.0, rel=1e-5)


@given(attempt=st.integers(1, 200), seed=st.integers(0, 2**32))
def test_backoff_is_full_jitter_within_zero_and_the_ceiling(attempt, seed):
    rng = random.Random(seed).random
    wait = backoff_s(attempt, 0.05, 2.0, rng)
    assert 0.0 <= wait <= min(2.0, 0.05 * 2 ** (attempt - 1))


def test_backoff_spreads_waits():
    rng = random.Random(7).random
    waits = {round(backoff_s(3, 0.1, 5.0, rng), 4) for _ in range(50)}
    assert len(waits) > 40  # clients failing together do not come back together


def test_budget_allows_ratio_of_requests():
    b, _ = budget(ratio=0.2, min_per_s=0.0)
    for _ in range(10):
        b.record_request()
    assert b.try_spend_retry()
    assert b.try_spend_retry()
    assert not b.try_spend_retry()  # 2 retries = 20 % of 10 requests
    assert metric("retry_attempts_total", downstream=b.name) == 2
    assert metric("retry_budget_exhausted_total", downstream=b.name) == 1


def test_min_retries_per_second_floor_allows_retries_at_low_traffic():
    b, _ = budget(ratio=0.2, window_s=10.0, min_per_s=0.5)
    b.record_request()
    allowed = sum(b.try_spend_retry() for _ in range(20))
    assert allowed == 5  # 0.2 × 1 = 0.2 rounds down to nothing, plus 0.5/s × 10 s = 5


def test_budget_window_slides():
    b, clock = budget(ratio=0.5, window_s=10.0, min_per_s=0.0)
    for _ in range(4):
        b.record_request()
    assert b.try_spend_retry() and b.try_spend_retry()
    assert not b.try_spend_retry()
    clock.now += 5
    assert not b.try_spend_retry()  # the 4 requests and 2 retries are still in the window
    clock.now += 5
    assert (b.requests, b.retries) == (0, 0)  # all of it has left the window
    for _ in range(2):
        b.record_request()
    assert b.try_spend_retry()  # the old retries left with the old requests
    assert not b.try_spend_retry()


def test_budget_forgets_bucket_by_bucket():
    b, clock = budget(ratio=1.0, window_s=10.0, min_per_s=0.0)
    b.record_request()
    clock.now += 5
    b.record_request()
    assert b.requests == 2
    clock.now += 5  # the first request's bucket has left the window, the second's has not
    assert b.can_retry()
    assert b.requests == 1
    assert b.try_spend_retry()
    assert not b.try_spend_retry()


def test_a_long_silence_empties_the_window():
    b, clock = budget(ratio=1.0, window_s=10.0, min_per_s=0.0)
    for _ in range(100):
        b.record_request()
    clock.now += 3600
    assert not b.can_retry()
    assert (b.requests, b.retries) == (0, 0)


@settings(max_examples=60, deadline=None)
@given(
    ratio=st.sampled_from([0.0, 0.1, 0.2, 0.5]),
    min_per_s=st.sampled_from([0.0, 0.5, 1.0]),
    requests=st.integers(1, 300),
    max_attempts=st.integers(1, 6),
)
def test_under_total_failure_attempts_stay_within_the_budget(ratio, min_per_s, requests, max_attempts):
    """Every request fails every attempt, all within one window: load is capped."""
    b, _ = budget(ratio=ratio, window_s=10.0, min_per_s=min_per_s)
    attempts = 0
    for _ in range(requests):
        b.record_request()
        attempts += 1
        for _ in range(max_attempts - 1):
            if not b.try_spend_retry():
                break
            attempts += 1
    assert attempts <= requests * (1 + ratio) + min_per_s * 10.0 + 1e-9


@settings(max_examples=30, deadline=None)
@given(gaps=st.lists(st.floats(0.0, 3.0), min_size=1, max_size=150))
def test_budget_holds_over_the_sliding_window(gaps):
    """Spending a retry at t never takes retries past the budget of the window before t.

    The budget's window is 10 buckets of 1 s, so it covers between the last 9 and 10 s:
    retries in (t-9, t] are surely inside it, requests outside (t-10, t] surely not.
    """
    b, clock = budget(ratio=0.2, window_s=10.0, min_per_s=0.5)
    requests: list[float] = []
    retries: list[float] = []
    for gap in gaps:
        clock.now += gap
        b.record_request()
        requests.append(clock.now)
        while b.try_spend_retry():
            retries.append(clock.now)
            t = clock.now
            in_window = sum(1 for r in retries if r > t - 9.0)
            assert in_window <= 0.2 * sum(1 for r in requests if r > t - 10.0) + 5 + 1e-9
