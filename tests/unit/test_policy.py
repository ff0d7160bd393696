"""Policy: the patterns stacked around a fake `send`, on a fake clock and a fake sleep."""

from __future__ import annotations

import asyncio
import itertools
import socket
from dataclasses import dataclass, field, replace

import pytest
from prometheus_client import REGISTRY

from services.common.resilience import waited
from services.common.resilience.breaker import BreakerState
from services.common.resilience.policy import Policy, PolicyConfig, ResilienceSettings, policy_config
from services.common.web import errors
from tests.support.profiles import breaker_config, resilience_settings

_names = itertools.count()
URL = "http://127.0.0.1:8002"


@dataclass
class FakeReply:
    status: int
    headers: dict[str, str] = field(default_factory=dict)


class World:
    """A fake clock, a sleep that only moves it, and a scripted downstream."""

    def __init__(self, *outcomes: int | Exception | FakeReply) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []
        self.calls: list[tuple[str, float]] = []
        self.outcomes = list(outcomes)

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    async def send(self, base_url: str, timeout_s: float) -> FakeReply:
        self.calls.append((base_url, timeout_s))
        outcome = self.outcomes.pop(0) if len(self.outcomes) > 1 else self.outcomes[0]
        self.now += 0.01
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome if isinstance(outcome, FakeReply) else FakeReply(outcome)


BREAKER = breaker_config(window_size=10, minimum_calls=10, wait_in_open_s=30.0, permitted_calls_in_half_open=2)
CONFIG = PolicyConfig(
    retries=True,
    timeouts=True,
    breakers=True,
    bulkheads=True,
    timeout_s=2.0,
    max_attempts=3,
    backoff_base_s=0.1,
    backoff_max_s=1.0,
    retry_budget_ratio=0.2,
    retry_budget_window_s=10.0,
    retry_min_per_s=0.0,
    bulkhead_max_concurrent=4,
    bulkhead_max_wait_s=0.0,
    breaker=BREAKER,
    ejection_consecutive_failures=3,
    ejection_base_s=10.0,
    ejection_max_s=60.0,
)


def make(world: World, urls=(URL,), rng=lambda: 0.5, **overrides) -> Policy:
    config = replace(CONFIG, **overrides)
    return Policy(f"policy-test-{next(_names)}", list(urls), config, world.clock, world.sleep, rng)


def run(coro):
    return asyncio.run(coro)


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_success_is_one_attempt():
    world = World(200)
    policy = make(world)
    assert run(policy.call(world.send, retryable=True)).status == 200
    assert world.calls == [(URL, 2.0)]
    assert metric("downstream_requests_total", to_service=policy.downstream, outcome="success") == 1
    assert metric("downstream_request_duration_seconds_count", to_service=policy.downstream) == 1


def test_5xx_is_retried_up_to_max_attempts_and_the_last_reply_returned():
    world = World(503)
    policy = make(world, retry_min_per_s=10.0)
    reply = run(policy.call(world.send, retryable=True))
    assert reply.status == 503  # the caller decides what a 503 means
    assert len(world.calls) == 3
    assert world.sleeps == [0.05, 0.1]  # full jitter at rng=0.5: half of 0.1 × 2^(n-1)
    assert metric("retry_attempts_total", downstream=policy.downstream) == 2
    assert metric("downstream_requests_total", to_service=policy.downstream, outcome="error") == 3
    assert metric("downstream_errors_total", to_service=policy.downstream) == 3


def test_recovers_on_retry():
    world = World(502, errors.DownstreamUnreachable("x", "refused"), 201)
    policy = make(world, retry_min_per_s=10.0)
    assert run(policy.call(world.send, retryable=True)).status == 201
    assert len(world.calls) == 3


def test_no_retry_when_not_retryable():
    world = World(503)
    policy = make(world, retry_min_per_s=10.0)
    assert run(policy.call(world.send, retryable=False)).status == 503
    assert len(world.calls) == 1
    world = World(errors.DownstreamTimeout("x", "slow"))
    policy = make(world, retry_min_per_s=10.0)
    with pytest.raises(errors.DownstreamTimeout):
        run(policy.call(world.send, retryable=False))
    assert len(world.calls) == 1


def test_4xx_is_an_answer_not_retried_and_not_a_failure():
    world = World(409)
    policy = make(world, retry_min_per_s=10.0)
    for _ in range(20):
        assert run(policy.call(world.send, retryable=True)).status == 409
    assert len(world.calls) == 20
    assert policy.snapshot()[0]["state"] == "closed"
    assert policy.snapshot()[0]["failure_rate"] == 0.0
    assert not policy.snapshot()[0]["ejected"]


def test_retry_after_is_honoured_when_longer_than_the_backoff():
    world = World(FakeReply(429, {"Retry-After": "3"}), FakeReply(503, {"retry-after": "0"}), 200)
    policy = make(world, retry_min_per_s=10.0)
    assert run(policy.call(world.send, retryable=True)).status == 200
    assert world.sleeps == [3.0, 0.1]  # Retry-After 3 s, then the backoff (longer than 0 s)


def test_429_is_neither_a_success_nor_a_failure_for_the_breaker():
    world = World(429)
    policy = make(world, retry_min_per_s=10.0)
    for _ in range(10):
        run(policy.call(world.send, retryable=False))
    snap = policy.snapshot()[0]
    assert snap["calls"] == 0 and snap["state"] == "closed"
    assert metric("downstream_requests_total", to_service=policy.downstream, outcome="error") == 10


def test_a_5xx_that_names_another_service_leaves_the_callees_breaker_and_replica_alone():
    """The gateway's breaker on orders must not open because inventory fails: orders
    answers 503 naming inventory, and orders' own breaker on inventory judges that."""
    world = World(FakeReply(503, {"X-Failed-Dependency": "inventory"}))
    policy = make(world, max_attempts=1)
    for _ in range(20):
        assert run(policy.call(world.send, retryable=False)).status == 503
    snap = policy.snapshot()[0]
    assert (snap["calls"], snap["state"]) == (0, "closed")
    assert (snap["consecutive_failures"], snap["ejected"]) == (0, False)
    assert metric("downstream_requests_total", to_service=policy.downstream, outcome="error") == 20


@pytest.mark.parametrize("named", [None, "callee", errors.DATABASE, errors.CHAOS_STORE])
def test_a_5xx_naming_nothing_the_callee_or_its_own_stores_is_the_callees_failure(named):
    world = World(503)
    policy = make(world, max_attempts=1)
    headers = {} if named is None else {errors.FAILED_DEPENDENCY: policy.downstream if named == "callee" else named}
    world.outcomes = [FakeReply(503, headers)]
    for _ in range(10):
        run(policy.call(world.send, retryable=False))
    assert policy.snapshot()[0]["state"] == "open"


class SlowWorld(World):
    """A downstream that takes `took_s` to answer `reply`."""

    def __init__(self, reply: FakeReply, took_s: float) -> None:
        super().__init__(reply)
        self.took_s = took_s

    async def send(self, base_url: str, timeout_s: float) -> FakeReply:
        reply = await super().send(base_url, timeout_s)
        self.now += self.took_s
        return reply


def test_a_reply_is_slow_on_the_callees_own_time_not_on_what_it_waited_for_behind_it():
    # 3 s against the breaker's 2 s slow-call threshold: 2.9 s of it spent on the callee's
    # own downstream (Server-Timing) is that hop's slowness, judged by its own breaker.
    behind = SlowWorld(FakeReply(201, {"Server-Timing": "db;dur=1, downstream;dur=2900"}), took_s=3.0)
    policy = make(behind)
    run(policy.call(behind.send, retryable=False))
    assert policy.snapshot()[0]["calls"] == 1 and policy.snapshot()[0]["slow_rate"] == 0.0

    own = SlowWorld(FakeReply(201, {"Server-Timing": "downstream;dur=500"}), took_s=3.0)
    policy = make(own)
    run(policy.call(own.send, retryable=False))
    assert policy.snapshot()[0]["slow_rate"] == 100.0  # 2.5 s of its own

    unreadable = SlowWorld(FakeReply(201, {"Server-Timing": "downstream;dur=soon"}), took_s=3.0)
    policy = make(unreadable)
    run(policy.call(unreadable.send, retryable=False))
    assert policy.snapshot()[0]["slow_rate"] == 100.0  # nothing readable: the whole call is its own


def test_a_call_adds_its_whole_time_retries_included_to_the_requests_wait_on_others():
    world = World(503, 503, 200)
    policy = make(world, retry_min_per_s=10.0)

    async def a_request() -> tuple[bytes, bytes] | None:
        token = waited.start()
        try:
            await policy.call(world.send, retryable=True)
            return waited.header()
        finally:
            waited.stop(token)

    started = world.now
    assert run(a_request()) == (b"server-timing", f"downstream;dur={(world.now - started) * 1000:.1f}".encode())
    assert world.now - started == pytest.approx(3 * 0.01 + 0.05 + 0.1)  # three attempts and two backoffs
    assert waited.header() is None  # outside a request nothing is counted


def test_no_attempt_starts_that_cannot_finish_before_the_deadline():
    world = World(FakeReply(503, {"Retry-After": "5"}))
    policy = make(world, retry_min_per_s=10.0)
    reply = run(policy.call(world.send, retryable=True, deadline=world.now + 4.0))
    assert reply.status == 503
    assert len(world.calls) == 1 and world.sleeps == []  # waiting 5 s would pass the deadline


def test_the_timeout_shrinks_to_the_time_left():
    world = World(503, 200)
    policy = make(world, retry_min_per_s=10.0)
    run(policy.call(world.send, retryable=True, deadline=world.now + 0.5))
    assert world.calls[0][1] == pytest.approx(0.5)
    assert world.calls[1][1] == pytest.approx(0.5 - 0.01 - 0.05)  # minus the first call and the wait


def test_a_passed_deadline_raises_timeout_without_calling():
    world = World(200)
    policy = make(world)
    with pytest.raises(errors.DownstreamTimeout):
        run(policy.call(world.send, retryable=True, deadline=world.now))
    assert world.calls == []
    assert policy.snapshot()[0]["calls"] == 0  # the caller ran out of time: not the breaker's business


def test_timeout_is_enforced_on_a_send_that_never_answers():
    async def hang(base_url: str, timeout_s: float) -> FakeReply:
        await asyncio.Event().wait()  # never set: only the policy's timeout ends this
        raise AssertionError

    world = World(200)
    policy = make(world, timeout_s=0.005, max_attempts=1)
    with pytest.raises(errors.DownstreamTimeout):
        run(policy.call(hang, retryable=True))
    assert policy.snapshot()[0]["failure_rate"] == 100.0  # a timeout is a failure
    assert metric("downstream_requests_total", to_service=policy.downstream, outcome="timeout") == 1


def test_a_timeout_cut_short_by_the_callers_deadline_is_not_the_callees_failure():
    async def hang(base_url: str, timeout_s: float) -> FakeReply:
        await asyncio.Event().wait()
        raise AssertionError

    world = World(200)
    policy = make(world, timeout_s=2.0, max_attempts=1)
    with pytest.raises(errors.DownstreamTimeout):
        run(policy.call(hang, retryable=True, deadline=world.now + 0.005))
    snap = policy.snapshot()[0]
    assert snap["calls"] == 0 and snap["state"] == "closed"  # given 5 ms of its 2 s: nothing learnt
    assert metric("downstream_requests_total", to_service=policy.downstream, outcome="timeout") == 1


def test_connection_errors_become_unreachable_and_raise_after_the_last_attempt():
    world = World(ConnectionRefusedError(111, "refused"))
    policy = make(world, retry_min_per_s=10.0)
    with pytest.raises(errors.DownstreamUnreachable):
        run(policy.call(world.send, retryable=True))
    assert len(world.calls) == 3
    assert metric("downstream_requests_total", to_service=policy.downstream, outcome="unreachable") == 3


def test_the_last_reply_wins_over_a_later_error():
    world = World(503, errors.DownstreamTimeout("x", "slow"))
    policy = make(world, retry_min_per_s=10.0, max_attempts=2)
    assert run(policy.call(world.send, retryable=True)).status == 503


def test_open_breaker_fails_fast_without_calling_send():
    world = World(500)
    policy = make(world, retry_min_per_s=10.0, max_attempts=1)
    for _ in range(10):
        run(policy.call(world.send, retryable=True))
    assert policy.snapshot()[0]["state"] == "open"
    sent = len(world.calls)

    async def many() -> None:
        for _ in range(1000):
            with pytest.raises(errors.BreakerOpen) as caught:
                await policy.call(world.send, retryable=True)
        assert caught.value.retry_after_s == pytest.approx(30.0 - 0.0, abs=0.2)

    run(many())
    assert len(world.calls) == sent  # how fast a refusal is: bench/resilience_micro.py
    assert metric("downstream_requests_total", to_service=policy.downstream, outcome="breaker_open") == 1000


def test_breaker_half_open_then_closes_through_the_policy():
    world = World(500)
    policy = make(world, max_attempts=1)
    for _ in range(10):
        run(policy.call(world.send, retryable=False))
    world.now += 30
    assert policy.snapshot()[0]["state"] == "half_open"
    world.outcomes = [200]
    run(policy.call(world.send, retryable=False))
    run(policy.call(world.send, retryable=False))
    assert policy.snapshot()[0]["state"] == "closed"


def test_bulkhead_full_is_not_retried_and_gives_back_the_breaker_permit():
    async def scenario():
        world = World(200)
        policy = make(world, bulkhead_max_concurrent=1, bulkhead_max_wait_s=0.0, retry_min_per_s=10.0)
        gate = asyncio.Event()
        entered = asyncio.Event()

        async def held(base_url: str, timeout_s: float) -> FakeReply:
            entered.set()
            await gate.wait()
            return FakeReply(200)

        first = asyncio.create_task(policy.call(held, retryable=True))
        await entered.wait()
        with pytest.raises(errors.BulkheadFull):
            await policy.call(world.send, retryable=True)
        assert world.calls == []
        gate.set()
        assert (await first).status == 200
        return policy

    policy = run(scenario())
    assert metric("downstream_requests_total", to_service=policy.downstream, outcome="bulkhead_full") == 1
    assert metric("retry_attempts_total", downstream=policy.downstream) == 0


def test_resilience_off_makes_exactly_one_attempt_and_keeps_no_breaker():
    world = World(503)
    policy = make(world, retries=False, breakers=False, bulkheads=False, retry_min_per_s=10.0)
    for _ in range(30):
        assert run(policy.call(world.send, retryable=True)).status == 503
    assert len(world.calls) == 30
    assert world.sleeps == []
    snap = policy.snapshot()[0]
    assert snap["state"] == "off" and snap["calls"] == 0 and snap["patterns"] == ["timeouts"]
    assert policy.budget is None and policy.bulkhead is None and policy._breakers == {}


def test_resilience_off_still_enforces_the_timeout():
    async def hang(base_url: str, timeout_s: float | None) -> FakeReply:
        await asyncio.Event().wait()
        raise AssertionError

    policy = make(World(200), retries=False, breakers=False, bulkheads=False, timeout_s=0.005)
    with pytest.raises(errors.DownstreamTimeout):
        run(policy.call(hang, retryable=True))


def test_retry_budget_caps_load_under_total_failure():
    """200 requests against a downstream that always answers 503: ≤ 20 % more attempts."""
    world = World(503)
    breaker = replace(BREAKER, minimum_calls=10_000, window_size=10_000)  # keep it closed
    policy = make(world, max_attempts=5, retry_budget_ratio=0.2, retry_min_per_s=0.5, breaker=breaker)
    requests = 200
    for _ in range(requests):
        world.now -= sum(world.sleeps)  # keep every request in one budget window
        world.sleeps.clear()
        run(policy.call(world.send, retryable=True))
    allowance = 0.5 * 10.0
    assert len(world.calls) <= requests * 1.2 + allowance
    assert len(world.calls) >= requests * 1.2  # and the budget was actually used
    assert metric("retry_budget_exhausted_total", downstream=policy.downstream) > 0


def test_replicas_get_their_own_breakers_and_failing_ones_are_avoided():
    urls = ["http://127.0.0.1:8002", "http://127.0.0.1:8012"]
    bad, good = urls
    world = World(200)
    policy = make(world, urls=urls, ejection_consecutive_failures=100, retry_min_per_s=10.0)
    names = [s["name"] for s in policy.snapshot()]
    assert names == [f"{policy.downstream}@127.0.0.1:8002", f"{policy.downstream}@127.0.0.1:8012"]

    async def send(base_url: str, timeout_s: float) -> FakeReply:
        world.calls.append((base_url, timeout_s))
        return FakeReply(500 if base_url == bad else 200)

    # Every failure on the bad replica is retried on the good one.
    for _ in range(20):
        assert run(policy.call(send, retryable=True)).status == 200
    by_name = {s["replica"]: s for s in policy.snapshot()}
    assert by_name[bad]["state"] == "open" and by_name[good]["state"] == "closed"
    world.calls.clear()
    for _ in range(10):  # the open breaker is skipped, not retried against
        assert run(policy.call(send, retryable=False)).status == 200
    assert {u for u, _ in world.calls} == {good}


def test_replica_ejection_through_the_policy():
    urls = ["http://127.0.0.1:8002", "http://127.0.0.1:8012"]
    bad, good = urls
    world = World(200)
    policy = make(world, urls=urls, ejection_consecutive_failures=2, ejection_base_s=10.0, retry_min_per_s=10.0)

    async def send(base_url: str, timeout_s: float) -> FakeReply:
        world.calls.append((base_url, timeout_s))
        if base_url == bad:
            raise errors.DownstreamUnreachable("x", "refused")
        return FakeReply(200)

    for _ in range(4):
        run(policy.call(send, retryable=True))
    assert any(r["replica"] == bad and r["ejected"] for r in policy.replicas.snapshot())
    world.calls.clear()
    for _ in range(4):
        run(policy.call(send, retryable=False))
    assert {u for u, _ in world.calls} == {good}
    world.now += 10
    world.calls.clear()
    for _ in range(4):
        assert run(policy.call(send, retryable=True)).status == 200  # the retry goes to `good`
    assert [u for u, _ in world.calls].count(bad) == 1  # back as a probe, which fails ...
    assert policy.replicas.snapshot()[0]["seconds_until_return"] == pytest.approx(20.0, abs=0.5)  # ... grown


def test_all_replica_breakers_open_raises_one_breaker_open_for_the_downstream():
    urls = ["http://127.0.0.1:8002", "http://127.0.0.1:8012"]
    world = World(500)
    policy = make(world, urls=urls, max_attempts=1, ejection_consecutive_failures=1000)
    for _ in range(40):
        try:
            run(policy.call(world.send, retryable=False))
        except errors.BreakerOpen:
            break
    with pytest.raises(errors.BreakerOpen) as caught:
        run(policy.call(world.send, retryable=True))
    assert caught.value.downstream == policy.downstream
    assert {s["state"] for s in policy.snapshot()} == {"open"}


def test_snapshot_lists_breaker_and_replica_state():
    world = World(200)
    policy = make(world)
    (snap,) = policy.snapshot()
    assert snap["name"] == policy.downstream
    assert snap["downstream"] == policy.downstream and snap["replica"] == URL
    assert {
        "state",
        "failure_rate",
        "slow_rate",
        "calls",
        "seconds_until_half_open",
        "ejected",
        "seconds_until_return",
        "patterns",
    } <= set(snap)
    assert BreakerState.CLOSED.label == snap["state"]


def test_policy_config_maps_the_settings_fields_one_for_one():
    settings = resilience_settings(
        breaker_window_type="time",
        breaker_window_size=7,
        breaker_minimum_calls=4,
        breaker_failure_rate=41.0,
        breaker_slow_call_s=0.7,
        breaker_slow_rate=61.0,
        breaker_wait_open_s=5.0,
        breaker_half_open_calls=2,
        retry_max_attempts=4,
        retry_backoff_base_s=0.03,
        retry_backoff_max_s=0.9,
        retry_budget_ratio=0.3,
        retry_budget_window_s=6.0,
        retry_min_per_s=2.0,
        bulkhead_max_concurrent=9,
        bulkhead_max_wait_s=0.04,
        ejection_consecutive_failures=6,
        ejection_base_s=2.0,
        ejection_max_s=20.0,
    )
    config = policy_config(settings, "payments", 1.25)
    assert config == PolicyConfig(
        retries=True,
        timeouts=True,
        breakers=True,
        bulkheads=True,
        timeout_s=1.25,
        max_attempts=4,
        backoff_base_s=0.03,
        backoff_max_s=0.9,
        retry_budget_ratio=0.3,
        retry_budget_window_s=6.0,
        retry_min_per_s=2.0,
        bulkhead_max_concurrent=9,
        bulkhead_max_wait_s=0.04,
        breaker=breaker_config(
            window_type="time",
            window_size=7,
            minimum_calls=4,
            failure_rate_threshold=41.0,
            slow_call_duration_s=0.7,
            slow_call_rate_threshold=61.0,
            wait_in_open_s=5.0,
            permitted_calls_in_half_open=2,
        ),
        ejection_consecutive_failures=6,
        ejection_base_s=2.0,
        ejection_max_s=20.0,
    )


def test_resilience_off_everywhere_or_for_some_downstreams_switches_off_the_call_patterns():
    call_patterns = ["retries", "timeouts", "breakers", "bulkheads"]
    assert policy_config(resilience_settings(), "payments", 3.0).patterns_on == call_patterns
    assert policy_config(resilience_settings(resilience="off"), "payments", 3.0).patterns_on == ["timeouts"]
    some = resilience_settings(resilience_off_for="payments, inventory")
    assert policy_config(some, "payments", 3.0).patterns_on == ["timeouts"]
    assert policy_config(some, "inventory", 3.0).patterns_on == ["timeouts"]
    assert policy_config(some, "orders", 3.0).patterns_on == call_patterns


def test_resilience_settings_have_no_defaults_of_their_own():
    with pytest.raises(ValueError, match="breaker_wait_open_s"):
        ResilienceSettings.model_validate({})


def test_refresh_replicas_gives_each_resolved_address_its_breaker(monkeypatch):
    async def resolve(self, host, port, *, type=0, **kwargs):
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port)) for ip in ("10.1.0.1", "10.1.0.2")]

    monkeypatch.setattr(asyncio.BaseEventLoop, "getaddrinfo", resolve)
    world = World(200)
    policy = make(world, urls=("http://payments:8002",))
    assert [s["name"] for s in policy.snapshot()] == [policy.downstream]
    assert metric("breaker_state", downstream=policy.downstream) == 0
    run(policy.refresh_replicas())
    assert [s["name"] for s in policy.snapshot()] == [
        f"{policy.downstream}@10.1.0.1:8002",
        f"{policy.downstream}@10.1.0.2:8002",
    ]
    assert REGISTRY.get_sample_value("breaker_state", {"downstream": policy.downstream}) is None
    run(policy.call(world.send, retryable=False))
    assert world.calls[-1][0] == "http://10.1.0.1:8002"


# --- each pattern switched off on its own (PATTERNS) ---------------------------------------------


def test_retries_off_makes_one_attempt_and_keeps_no_budget():
    world = World(503, 200)
    policy = make(world, retries=False, retry_min_per_s=10.0)
    assert run(policy.call(world.send, retryable=True)).status == 503
    assert len(world.calls) == 1 and world.sleeps == []
    assert policy.budget is None
    assert metric("retry_attempts_total", downstream=policy.downstream) == 0
    assert policy.snapshot()[0]["state"] == "closed"  # the other patterns still run


def test_timeouts_off_sends_without_a_timeout_and_ignores_the_deadline():
    world = World(200)
    policy = make(world, timeouts=False)
    # A deadline already passed would refuse the call (test_a_passed_deadline_raises_...):
    # with timeouts off there is no deadline.
    assert run(policy.call(world.send, retryable=True, deadline=world.now - 5)).status == 200
    assert world.calls == [(URL, None)]

    async def slow(base_url: str, timeout_s: float | None) -> FakeReply:
        await asyncio.sleep(0.05)  # ten times the configured timeout below
        return FakeReply(200)

    policy = make(World(200), timeouts=False, timeout_s=0.005)
    assert run(policy.call(slow, retryable=True)).status == 200
    assert metric("downstream_requests_total", to_service=policy.downstream, outcome="timeout") == 0


def test_breakers_off_keep_no_breaker_and_eject_no_replica():
    urls = ["http://127.0.0.1:8002", "http://127.0.0.1:8012"]
    world = World(500)
    policy = make(world, urls=urls, breakers=False, retries=False, ejection_consecutive_failures=1)
    for _ in range(40):  # far past the breaker's window and the ejection's threshold
        assert run(policy.call(world.send, retryable=False)).status == 500
    assert len(world.calls) == 40
    assert {u for u, _ in world.calls} == set(urls)  # both replicas kept getting calls
    assert [s["state"] for s in policy.snapshot()] == ["off", "off"]
    assert policy._breakers == {}
    assert REGISTRY.get_sample_value("breaker_state", {"downstream": f"{policy.downstream}@127.0.0.1:8002"}) is None
    assert metric("downstream_requests_total", to_service=policy.downstream, outcome="breaker_open") == 0


def test_bulkheads_off_let_every_call_through_at_once():
    async def scenario() -> tuple[Policy, int]:
        policy = make(World(200), bulkheads=False, bulkhead_max_concurrent=1, bulkhead_max_wait_s=0.0)
        gate, inside = asyncio.Event(), []

        async def held(base_url: str, timeout_s: float | None) -> FakeReply:
            inside.append(base_url)
            await gate.wait()
            return FakeReply(200)

        calls = [asyncio.create_task(policy.call(held, retryable=False)) for _ in range(10)]
        while len(inside) < 10:
            await asyncio.sleep(0)
        gate.set()
        assert [(await c).status for c in calls] == [200] * 10
        return policy, len(inside)

    policy, concurrent = run(scenario())
    assert concurrent == 10 and policy.bulkhead is None
    assert metric("bulkhead_rejections_total", downstream=policy.downstream) == 0
    assert REGISTRY.get_sample_value("bulkhead_inflight", {"downstream": policy.downstream}) is None


def test_patterns_choose_the_policy_patterns_and_resilience_off_takes_the_call_patterns_away():
    def on(patterns: str, **fields) -> list[str]:
        return policy_config(resilience_settings(patterns=patterns, **fields), "payments", 3.0).patterns_on

    assert on("all") == ["retries", "timeouts", "breakers", "bulkheads"]
    assert on("none") == []
    assert on("retries,breakers") == ["retries", "breakers"]
    assert on("shedding,idempotency,outbox") == []  # patterns of the door and the data, not of calls
    assert on("retries,timeouts", resilience="off") == ["timeouts"]
    assert on("none", resilience="off") == []
