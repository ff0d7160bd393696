"""Replica pool: round robin, outlier ejection with growing intervals, probes, DNS refresh."""

from __future__ import annotations

import asyncio
import itertools
import socket
from collections import Counter

import pytest
from prometheus_client import REGISTRY

from services.common.resilience.replicas import ReplicaPool, replica_label

_names = itertools.count()
A, B, C = "http://127.0.0.1:8002", "http://127.0.0.1:8012", "http://127.0.0.1:8022"


class FakeClock:
    def __init__(self, now: float = 100.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def pool(urls=(A, B, C), failures=3, base=10.0, cap=80.0):
    clock = FakeClock()
    return ReplicaPool(f"pool-test-{next(_names)}", list(urls), failures, base, cap, clock), clock


def ejected(p: ReplicaPool, url: str) -> bool:
    """Whether `url` is ejected now, as the pool's snapshot (`/status/breakers`) shows it."""
    return any(r["replica"] == url and r["ejected"] for r in p.snapshot())


def fail(p: ReplicaPool, url: str, times: int) -> None:
    for _ in range(times):
        p.record(url, False)


def picks(p: ReplicaPool, n: int) -> Counter:
    return Counter(p.pick() for _ in range(n))


def test_round_robin():
    p, _ = pool()
    assert [p.pick() for _ in range(6)] == [A, B, C, A, B, C]


def test_ejects_after_consecutive_failures_only():
    p, _ = pool(failures=3)
    fail(p, A, 2)
    p.record(A, True)  # a success resets the count
    fail(p, A, 2)
    assert not ejected(p, A)
    fail(p, A, 1)
    assert ejected(p, A)
    assert picks(p, 10) == Counter({B: 5, C: 5})
    assert (
        REGISTRY.get_sample_value("replica_ejections_total", {"downstream": p.name, "replica": "127.0.0.1:8002"}) == 1
    )


def test_ejected_replica_returns_after_the_interval_as_a_probe():
    p, clock = pool(failures=3, base=10.0)
    fail(p, A, 3)
    clock.now += 9.99
    assert A not in picks(p, 6)
    clock.now += 0.01
    assert picks(p, 6) == Counter({A: 2, B: 2, C: 2})
    fail(p, A, 1)  # one failure of the probe re-ejects it, for twice as long
    assert ejected(p, A)
    clock.now += 19.99
    assert ejected(p, A)
    clock.now += 0.01
    assert not ejected(p, A)


def test_ejection_interval_doubles_up_to_the_cap():
    p, clock = pool(failures=1, base=10.0, cap=35.0)
    intervals = []
    for _ in range(4):
        fail(p, A, 1)
        intervals.append(p.snapshot()[0]["seconds_until_return"])
        clock.now += intervals[-1]
    assert intervals == [10.0, 20.0, 35.0, 35.0]


def test_a_successful_probe_keeps_it_and_a_success_streak_decays_the_growth():
    p, clock = pool(failures=3, base=10.0)
    fail(p, A, 3)
    clock.now += 10
    p.record(A, True)  # the probe passed: back to needing 3 failures
    fail(p, A, 2)
    assert not ejected(p, A)
    fail(p, A, 1)
    assert p.snapshot()[0]["seconds_until_return"] == 20.0  # no streak: the growth stays
    clock.now += 20
    for _ in range(3):  # a streak as long as the trip threshold: one step of growth back
        p.record(A, True)
    fail(p, A, 3)
    assert p.snapshot()[0]["seconds_until_return"] == 20.0
    clock.now += 20
    for _ in range(6):  # two streaks: two steps back, to the base interval
        p.record(A, True)
    fail(p, A, 3)
    assert p.snapshot()[0]["seconds_until_return"] == 10.0


def test_never_ejects_the_last_healthy_replica():
    p, _ = pool(failures=1)
    fail(p, A, 1)
    fail(p, B, 1)
    fail(p, C, 5)
    assert ejected(p, A) and ejected(p, B) and not ejected(p, C)
    assert picks(p, 3) == Counter({C: 3})

    single, _ = pool(urls=(A,), failures=1)
    fail(single, A, 10)
    assert not ejected(single, A)
    assert single.pick() == A


def test_late_failures_of_an_ejected_replica_do_not_extend_its_ejection():
    p, _ = pool(failures=2, base=10.0)
    fail(p, A, 2)
    fail(p, A, 10)
    assert p.snapshot()[0]["seconds_until_return"] == 10.0
    assert p.snapshot()[0]["ejections"] == 1


def test_replica_labels():
    assert replica_label("http://payments:8002") == "payments:8002"
    assert replica_label("http://[::1]:8002") == "[::1]:8002"
    assert replica_label("https://payments") == "payments:443"


def test_a_pool_needs_a_url_and_drops_trailing_slashes():
    with pytest.raises(ValueError):
        pool(urls=())
    assert pool(urls=(A + "/", B))[0].urls == [A, B]


def test_refresh_dns_resolves_every_address_and_keeps_state(monkeypatch):
    answers = [["10.0.0.1", "10.0.0.2"], ["10.0.0.2", "10.0.0.3", "10.0.0.3"]]

    async def fake_getaddrinfo(self, host, port, *, type=0, **kwargs):
        assert (host, port, type) == ("payments", 8002, socket.SOCK_STREAM)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (ip, port)) for ip in answers.pop(0)]

    monkeypatch.setattr(asyncio.BaseEventLoop, "getaddrinfo", fake_getaddrinfo)

    async def scenario():
        p, _ = pool(urls=("http://payments:8002",), failures=1)
        await p.refresh_dns()
        assert p.urls == ["http://10.0.0.1:8002", "http://10.0.0.2:8002"]
        fail(p, "http://10.0.0.2:8002", 1)
        assert ejected(p, "http://10.0.0.2:8002")
        await p.refresh_dns()
        assert p.urls == ["http://10.0.0.2:8002", "http://10.0.0.3:8002"]
        assert ejected(p, "http://10.0.0.2:8002")  # state kept across the refresh
        assert p.pick() == "http://10.0.0.3:8002"

    asyncio.run(scenario())


def test_refresh_dns_keeps_the_list_on_resolver_errors_and_ignores_url_lists(monkeypatch):
    async def broken(self, *args, **kwargs):
        raise socket.gaierror("no such name")

    monkeypatch.setattr(asyncio.BaseEventLoop, "getaddrinfo", broken)

    async def scenario():
        p, _ = pool(urls=("http://payments:8002",))
        await p.refresh_dns()
        assert p.urls == ["http://payments:8002"]
        listed, _ = pool(urls=(A, B))
        await listed.refresh_dns()  # a list of URLs is taken as given
        assert listed.urls == [A, B]

    asyncio.run(scenario())
