"""The latency-target limit: cut by a share when a window's tail passes the target, grown
by one when it does not, so the door settles where the machine keeps the target."""

from __future__ import annotations

import asyncio
import itertools

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from services.common.resilience.backpressure import BackpressureMiddleware
from services.common.resilience.latency_target import LatencyTargetConfig, LatencyTargetLimit
from services.common.web.app import admission_limit
from services.gateway.settings import Settings as GatewaySettings


def limit_of(**overrides) -> LatencyTargetLimit:
    values = {"min_limit": 3, "max_limit": 88, "target_s": 0.35, "backoff": 0.9, "min_window": 20}
    return LatencyTargetLimit(LatencyTargetConfig(**(values | overrides)))


def window(limit: LatencyTargetLimit, latencies: list[float], inflight: int | None = None) -> int:
    """Feed one window's samples, each admitted with `inflight` in flight (the limit:
    a busy door); the limit after the last one."""
    assert len(latencies) == max(limit.limit, limit.config.min_window)
    for rtt in latencies:
        result = limit.update(rtt, limit.limit if inflight is None else inflight)
    return result


def test_it_starts_as_the_static_door_would():
    assert limit_of().limit == 88


def test_a_window_whose_tail_passes_the_target_cuts_the_limit_by_the_backoff():
    door = limit_of()
    # 88 samples: 79 fast ones and 9 slow ones put the 90th percentile at 0.4 s
    assert window(door, [0.1] * 79 + [0.4] * 9) == 79  # 88 x 0.9
    assert door.tail_s == 0.4


def test_a_slow_request_or_eight_in_a_window_of_88_is_not_the_tail():
    door = limit_of()
    assert window(door, [0.1] * 80 + [5.0] * 8) == 88  # grown by one, kept at the ceiling


def test_a_window_within_the_target_grows_the_limit_by_one():
    door = limit_of(max_limit=100)
    door.estimate = 50.0
    assert window(door, [0.3] * 50) == 51
    assert door.usual_latency_s == 0.3


def test_the_limit_never_falls_below_its_floor():
    door = limit_of(max_limit=4, min_limit=3)
    for _ in range(5):
        window(door, [2.0] * 20)  # a window is never shorter than min_window
    assert door.limit == 3


def test_a_few_slow_clients_are_not_a_door_too_wide():
    """Ten clients whose orders wait on each other's key, or on a slow payments: slow,
    but the door is not what makes them slow, and cutting it would only shed them."""
    door = limit_of()
    for _ in range(10):
        window(door, [3.0] * 88, inflight=10)
    assert door.limit == 88


def test_nothing_moves_before_a_window_is_full():
    door = limit_of()
    for _ in range(87):
        door.update(9.0, 88)
    assert door.limit == 88


@pytest.mark.parametrize(("capacity", "settles"), [(200.0, range(50, 64)), (400.0, range(88, 89))])
def test_the_door_follows_the_machine(capacity: float, settles: range):
    """A saturated service answers `inflight / capacity` seconds late (Little's law), a
    quarter either way: on a machine that serves 200 a second the door settles where the
    slow tail is near 0.35 s; on one twice as fast the ceiling is already within it."""
    door = limit_of()
    for _ in range(200):
        mean = door.limit / capacity
        n = max(door.limit, 20)
        window(door, [mean * (0.75 + 0.5 * i / (n - 1)) for i in range(n)])
    assert door.limit in settles


@pytest.mark.parametrize(
    "overrides", [{"target_s": 0.0}, {"backoff": 1.0}, {"backoff": 0.0}, {"min_limit": 0}, {"min_limit": 90}]
)
def test_a_limit_that_cannot_work_is_refused(overrides):
    with pytest.raises(ValueError):
        limit_of(**overrides)


def test_the_gateway_door_takes_its_ceiling_and_target_from_its_settings(monkeypatch):
    monkeypatch.setenv("ADMISSION", "latency")
    monkeypatch.setenv("ADMISSION_LATENCY_TARGET_S", "0.2")
    monkeypatch.setenv("MAX_INFLIGHT", "40")
    door = admission_limit(GatewaySettings())
    assert isinstance(door, LatencyTargetLimit)
    assert (door.limit, door.config.max_limit, door.config.target_s) == (40, 40, 0.2)


def test_a_door_with_this_limit_sheds_at_the_limit_that_slow_answers_taught_it():
    async def scenario():
        limit = limit_of(min_limit=1, max_limit=4, target_s=0.5, min_window=2)
        holds: list[asyncio.Event] = []

        async def work(request: Request) -> JSONResponse:
            if request.query_params.get("hold"):
                holds.append(asyncio.Event())
                await holds[-1].wait()
            return JSONResponse({"done": True})

        async def held(client: httpx.AsyncClient, count: int) -> list[asyncio.Task]:
            """`count` requests admitted and held in the app (or the test fails)."""
            before = len(holds)
            tasks = [asyncio.create_task(client.get("/work?hold=1")) for _ in range(count)]
            async with asyncio.timeout(10):
                while len(holds) < before + count:
                    await asyncio.sleep(0)
            return tasks

        async def released(tasks: list[asyncio.Task]) -> list[int]:
            for hold in holds:
                hold.set()
            return [r.status_code for r in await asyncio.gather(*tasks)]

        ticks = itertools.count(0.0, 1.0)  # every reading of the door's clock is a second later
        door = BackpressureMiddleware(Starlette(routes=[Route("/work", work)]), limit=limit, clock=lambda: next(ticks))
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=door), base_url="http://test") as client:
            # A window of four answers, two at a time (half the limit: a busy door), each a
            # second or more: past 0.5 s.
            for _ in range(2):
                assert await released(await held(client, 2)) == [200, 200]
            assert limit.limit == 3  # 4 x 0.9
            three = await held(client, 3)
            shed = await client.get("/work")
            assert shed.status_code == 429 and "retry-after" in shed.headers
            assert await released(three) == [200, 200, 200]

    asyncio.run(scenario())
