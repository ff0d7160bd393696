"""Shed pacing: Retry-After grows while a door sheds more than its target share of what it
admits, and comes back to its base once the excess is gone. A hand-moved clock: no sleeps.
Most tests set the target at one shed per admitted request, to keep the arithmetic plain."""

from __future__ import annotations

import asyncio
import math

import httpx
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from services.common.resilience.backpressure import BackpressureMiddleware
from services.common.resilience.shed_pacing import ShedPacing


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def window(pacing: ShedPacing, clock: Clock, *, admitted: int, shed: int) -> float:
    """One window's traffic, then the first shed request of the next: the wait it is told."""
    for _ in range(admitted):
        pacing.admitted()
    for _ in range(shed):
        pacing.shed()
    clock.now += pacing.window_s
    return pacing.shed()


def test_the_wait_grows_with_the_excess_and_never_past_its_maximum():
    clock = Clock()
    pacing = ShedPacing(1.0, 10.0, target=1.0, clock=clock)
    assert pacing.shed() == 1.0  # the first window: nothing measured yet
    assert window(pacing, clock, admitted=100, shed=399) == 2.0  # 4 shed (the first included) per admitted: sqrt
    assert window(pacing, clock, admitted=100, shed=399) == 4.0
    assert window(pacing, clock, admitted=100, shed=10_000) == 10.0


def test_a_window_that_sheds_less_than_it_admits_shortens_the_wait_down_to_its_base():
    clock = Clock()
    pacing = ShedPacing(1.0, 10.0, target=1.0, clock=clock)
    window(pacing, clock, admitted=100, shed=1600)
    assert pacing.seconds == 4.0
    assert math.isclose(window(pacing, clock, admitted=400, shed=99), 2.0)  # a quarter as many shed as admitted
    assert window(pacing, clock, admitted=400, shed=0) == 1.0


def test_a_whole_window_without_a_shed_request_puts_the_wait_back_to_its_base():
    clock = Clock()
    pacing = ShedPacing(1.0, 10.0, target=1.0, clock=clock)
    window(pacing, clock, admitted=10, shed=1000)
    assert pacing.seconds == 10.0
    clock.now += 2 * pacing.window_s  # the surge is over: requests admitted, none shed
    assert pacing.shed() == 1.0


def test_by_default_the_wait_aims_at_one_shed_request_for_four_admitted():
    clock = Clock()
    pacing = ShedPacing(1.0, 10.0, clock=clock)
    assert window(pacing, clock, admitted=100, shed=100) == 2.0  # four times the target: sqrt
    # From here each window also counts the shed request that opened it.
    assert window(pacing, clock, admitted=100, shed=24) == 2.0  # at the target: the wait holds
    assert window(pacing, clock, admitted=400, shed=24) == 1.0  # a quarter of it: halved


def test_a_maximum_at_the_base_keeps_the_wait_fixed():
    clock = Clock()
    pacing = ShedPacing(1.0, 0.0, target=1.0, clock=clock)
    assert window(pacing, clock, admitted=1, shed=1000) == 1.0


def test_the_door_says_the_paced_wait_in_retry_after():
    """Two requests held in flight at a limit of 2; every request past them is shed. After
    a window that shed eighteen for the two it admitted, Retry-After says six seconds: the
    square root of 17 / 2 (the sheds before the one that turns the window) against the
    target of 1 / 4, rounded up."""
    clock = Clock()
    release = asyncio.Event()

    async def work(_request: Request) -> JSONResponse:
        await release.wait()
        return JSONResponse({"done": True})

    app = Starlette(
        routes=[Route("/work", work)],
        middleware=[
            Middleware(BackpressureMiddleware, max_inflight=2, retry_after_s=1.0, retry_after_max_s=10.0, clock=clock)
        ],
    )

    async def scenario() -> list[str]:
        app.middleware_stack = door = app.build_middleware_stack()
        while not isinstance(door, BackpressureMiddleware):
            door = door.app
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
            held = [asyncio.create_task(client.get("/work")) for _ in range(2)]
            while door.inflight < 2:
                await asyncio.sleep(0)
            said = [(await client.get("/work")).headers["retry-after"] for _ in range(18)]
            clock.now += 1.0
            said.append((await client.get("/work")).headers["retry-after"])
            release.set()
            await asyncio.gather(*held)
        return said

    said = asyncio.run(scenario())
    assert said[:18] == ["1"] * 18
    assert said[18] == "6"
