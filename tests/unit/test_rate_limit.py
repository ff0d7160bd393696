"""The gateway's rate limiter on a fake clock: per client, under a budget per address,
with a bounded metric label."""

from __future__ import annotations

import pytest

from services.common.web.metrics import rate_limited_total
from services.gateway import ratelimit
from services.gateway.ratelimit import ADDRESS_SHARE, OTHER, RateLimited, RateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def admitted(limiter: RateLimiter, address: str, client_id: str | None) -> bool:
    try:
        limiter.check(address, client_id)
    except RateLimited:
        return False
    return True


def test_each_client_of_an_address_gets_its_own_limit_within_the_share():
    limiter = RateLimiter(lambda: 2.0, Clock())
    for user in range(ADDRESS_SHARE // 2):
        assert [admitted(limiter, "10.0.0.1", f"user-{user}") for _ in range(3)] == [True, True, False]


def test_invented_ids_from_one_address_get_at_most_the_address_budget():
    clock = Clock()
    limiter = RateLimiter(lambda: 1.0, clock)
    first_second = sum(admitted(limiter, "10.0.0.1", f"id-{i}") for i in range(1000))
    assert first_second == ADDRESS_SHARE  # the burst: ADDRESS_SHARE clients' worth
    clock.now += 1
    assert sum(admitted(limiter, "10.0.0.1", f"more-{i}") for i in range(1000)) == ADDRESS_SHARE
    # Another address is not affected, and a refused address's retry comes after the refill.
    assert admitted(limiter, "10.0.0.2", "id-0")
    with pytest.raises(RateLimited) as refused:
        limiter.check("10.0.0.1", "fresh")
    assert refused.value.retry_after_s == pytest.approx(1 / ADDRESS_SHARE)
    assert "address" in refused.value.message


def test_a_refused_request_takes_no_token():
    clock = Clock()
    limiter = RateLimiter(lambda: 1.0, clock, address_share=2)
    assert admitted(limiter, "a", "x") and not admitted(limiter, "a", "x")  # x over its own limit ...
    assert admitted(limiter, "a", "y")  # ... took nothing from the address: y still passes
    assert not admitted(limiter, "a", "z")  # the address's two are spent


def test_an_id_sent_from_another_address_does_not_spend_its_owners_tokens():
    limiter = RateLimiter(lambda: 1.0, Clock())
    assert admitted(limiter, "attacker", "victim") and not admitted(limiter, "attacker", "victim")
    assert admitted(limiter, "victim-host", "victim")


def test_the_metric_label_is_bounded():
    limiter = RateLimiter(lambda: 0.5, Clock(), known_clients=("locust", "mobile"))
    assert limiter.label("locust-shopper-1a2b") == "locust"
    assert limiter.label("mobile") == "mobile"
    assert {limiter.label(x) for x in ("locustish", "mobile2", "", None, "x" * 500)} == {OTHER}

    def labels() -> set[str]:
        return {s.labels["client"] for m in rate_limited_total.collect() for s in m.samples}

    before = labels()
    for i in range(500):
        admitted(limiter, f"10.0.{i // 256}.{i % 256}", f"rotating-{i}")
        admitted(limiter, f"10.0.{i // 256}.{i % 256}", f"rotating-{i}")
    assert labels() - before <= {OTHER}


def test_bucket_memory_is_bounded(monkeypatch):
    monkeypatch.setattr(ratelimit, "_MAX_BUCKETS", 100)
    clock = Clock()
    limiter = RateLimiter(lambda: 1.0, clock)
    for i in range(1000):
        clock.now += 0.001
        admitted(limiter, f"h{i}", f"c{i}")
    assert len(limiter._clients._state) <= 100 and len(limiter._addresses._state) <= 100


def test_no_limit_admits_everything():
    limiter = RateLimiter(lambda: 0.0, Clock())
    assert all(admitted(limiter, "a", None) for _ in range(1000))
