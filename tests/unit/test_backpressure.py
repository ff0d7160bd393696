"""Load shedding: 429 + Retry-After past max_inflight, exempt paths always served.

Requests are held inside the app on an asyncio.Event, so "in flight" is exact: no sleeps.
"""

from __future__ import annotations

import asyncio
import contextlib

import httpx
import orjson
from prometheus_client import REGISTRY
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route

from services.common.resilience.backpressure import BackpressureMiddleware


def metric(name: str) -> float:
    return REGISTRY.get_sample_value(name) or 0.0


class HeldApp:
    """A tiny app whose /work requests wait until `release` is set."""

    def __init__(self, max_inflight: int) -> None:
        self.release = asyncio.Event()
        self.entered = 0
        self.all_entered = asyncio.Event()
        self.expect = 0

        async def work(request: Request) -> JSONResponse:
            self.entered += 1
            if self.entered >= self.expect:
                self.all_entered.set()
            await self.release.wait()
            return JSONResponse({"done": True})

        async def health(request: Request) -> JSONResponse:
            return JSONResponse({"status": "ok"})

        async def metrics(request: Request) -> PlainTextResponse:
            return PlainTextResponse("")

        self.app = Starlette(
            routes=[Route("/work", work), Route("/health", health), Route("/metrics", metrics)],
            middleware=[Middleware(BackpressureMiddleware, max_inflight=max_inflight, retry_after_s=2.5)],
        )

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=self.app), base_url="http://test")


def test_sheds_past_max_inflight_while_health_passes():
    async def scenario():
        held = HeldApp(max_inflight=2)
        held.expect = 2
        shed_before = metric("load_shed_total")
        inflight_before = metric("http_inflight_requests")
        async with held.client() as client:
            admitted = [asyncio.create_task(client.get("/work")) for _ in range(2)]
            await held.all_entered.wait()
            assert metric("http_inflight_requests") == inflight_before + 2

            shed = await client.get("/work")
            assert shed.status_code == 429
            assert shed.headers["content-type"] == "application/json"
            assert shed.headers["retry-after"] == "3"  # 2.5 s rounded up
            assert orjson.loads(shed.content)["error"]["code"] == "overloaded"
            assert metric("load_shed_total") == shed_before + 1

            assert (await client.get("/health")).status_code == 200
            assert (await client.get("/metrics")).status_code == 200

            held.release.set()
            assert [r.status_code for r in await asyncio.gather(*admitted)] == [200, 200]
            assert (await client.get("/work")).status_code == 200  # room again
        assert metric("http_inflight_requests") == inflight_before
        assert metric("load_shed_total") == shed_before + 1

    asyncio.run(scenario())


def test_no_limit_when_max_inflight_is_zero():
    async def scenario():
        held = HeldApp(max_inflight=0)
        held.expect = 20
        async with held.client() as client:
            tasks = [asyncio.create_task(client.get("/work")) for _ in range(20)]
            await held.all_entered.wait()
            held.release.set()
            assert {r.status_code for r in await asyncio.gather(*tasks)} == {200}

    asyncio.run(scenario())


def test_exempt_paths_do_not_take_a_slot():
    async def scenario():
        held = HeldApp(max_inflight=1)
        held.expect = 1
        async with held.client() as client:
            task = asyncio.create_task(client.get("/work"))
            await held.all_entered.wait()
            for _ in range(5):
                assert (await client.get("/health")).status_code == 200
            assert (await client.get("/work")).status_code == 429
            held.release.set()
            assert (await task).status_code == 200

    asyncio.run(scenario())


def test_a_failing_request_frees_its_slot():
    async def scenario():
        async def boom(scope, receive, send):
            raise RuntimeError("handler bug")

        async def receive():
            return {"type": "http.request", "body": b""}

        async def send(message):
            pass

        middleware = BackpressureMiddleware(boom, max_inflight=1, retry_after_s=1.0)
        with contextlib.suppress(RuntimeError):
            await middleware({"type": "http", "path": "/x"}, receive, send)
        assert middleware.inflight == 0

    asyncio.run(scenario())


# --- the limit as an object: fixed or adaptive ----------------------------------------------


class RecordingLimit:
    """A limit the test sets by hand; it keeps the samples the door gives it."""

    def __init__(self, limit: int, usual_latency_s: float = 0.0, queue_capacity: int = 0) -> None:
        self.limit = limit
        self.usual_latency_s = usual_latency_s
        self.queue_capacity = queue_capacity
        self.samples: list[tuple[float, int]] = []

    def update(self, rtt_s: float, inflight: int) -> int:
        self.samples.append((rtt_s, inflight))
        return self.limit


def _app_with(limit, clock=None, **kwargs):
    async def work(request: Request) -> JSONResponse:
        return JSONResponse({"done": True})

    options = {"limit": limit, "retry_after_s": 1.0, **kwargs}
    if clock is not None:
        options["clock"] = clock
    return Starlette(routes=[Route("/work", work)], middleware=[Middleware(BackpressureMiddleware, **options)])


def test_the_door_follows_the_limit_object_and_feeds_it_each_admitted_request():
    async def scenario():
        limit = RecordingLimit(0)
        ticks = iter([0.0, 10.0, 10.25, 20.0, 20.5])  # the first starts the door's shed-pacing window
        app = _app_with(limit, clock=lambda: next(ticks))
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
            assert (await client.get("/work")).status_code == 200
            assert (await client.get("/work")).status_code == 200
            # From admission to the end of the response, with the in-flight count it was admitted with.
            assert limit.samples == [(0.25, 1), (0.5, 1)]
            limit.limit = 1  # what the limit says now is what the door does
            held = HeldApp(max_inflight=0)  # a door of its own around held requests
            door = BackpressureMiddleware(held.app, limit=limit)
            held.expect = 1
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=door), base_url="http://test") as c2:
                first = asyncio.create_task(c2.get("/work"))
                await held.all_entered.wait()
                shed = await c2.get("/work")
                assert shed.status_code == 429 and shed.headers["retry-after"] == "1"
                limit.limit = 2  # the limit grew: the next request is admitted
                held.expect = 2
                second = asyncio.create_task(c2.get("/work"))
                await held.all_entered.wait()
                held.release.set()
                assert [r.status_code for r in await asyncio.gather(first, second)] == [200, 200]
        assert len(limit.samples) == 4  # the shed request taught nothing

    asyncio.run(scenario())


class Gate:
    """An app whose /work?n= requests wait until `release` is set; `order` lists the
    requests as they entered the app (past the door)."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.order: list[str] = []

        async def work(request: Request) -> JSONResponse:
            self.order.append(request.query_params["n"])
            await self.release.wait()
            return JSONResponse({"done": True})

        self.app = Starlette(routes=[Route("/work", work)])

    async def entered(self, count: int) -> None:
        while len(self.order) < count:
            await asyncio.sleep(0)


def _queued(outcome: str) -> float:
    return REGISTRY.get_sample_value("admission_queue_total", {"outcome": outcome}) or 0.0


def test_past_the_limit_a_request_waits_for_a_slot_and_the_newest_waiter_goes_first():
    async def scenario():
        gate = Gate()
        door = BackpressureMiddleware(gate.app, limit=RecordingLimit(1, queue_capacity=2), queue_wait_s=30)
        admitted_before = _queued("admitted")
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=door), base_url="http://test") as client:
            first = asyncio.create_task(client.get("/work", params={"n": "first"}))
            await gate.entered(1)
            older = asyncio.create_task(client.get("/work", params={"n": "older"}))
            while len(door.queue) < 1:
                await asyncio.sleep(0)
            newer = asyncio.create_task(client.get("/work", params={"n": "newer"}))
            while len(door.queue) < 2:
                await asyncio.sleep(0)
            full = await client.get("/work", params={"n": "full"})  # the queue is full: refused at once
            assert full.status_code == 429 and full.headers["retry-after"] == "1"
            gate.release.set()
            assert [r.status_code for r in await asyncio.gather(first, older, newer)] == [200, 200, 200]
        assert gate.order == ["first", "newer", "older"]  # served newest first
        assert _queued("admitted") == admitted_before + 2
        assert door.inflight == 0 and len(door.queue) == 0

    asyncio.run(scenario())


def test_a_waiter_gets_429_when_no_slot_frees_within_its_wait():
    async def scenario():
        gate = Gate()
        door = BackpressureMiddleware(gate.app, limit=RecordingLimit(1, queue_capacity=4), queue_wait_s=0.05)
        shed_before = _queued("shed")
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=door), base_url="http://test") as client:
            first = asyncio.create_task(client.get("/work", params={"n": "first"}))
            await gate.entered(1)
            waited = await client.get("/work", params={"n": "late"})
            assert waited.status_code == 429 and not first.done()
            gate.release.set()
            assert (await first).status_code == 200
        assert gate.order == ["first"] and _queued("shed") == shed_before + 1
        assert door.inflight == 0 and len(door.queue) == 0

    asyncio.run(scenario())


def test_while_the_queue_stands_a_newcomer_is_refused_at_once():
    async def scenario():
        now = [0.0]
        gate = Gate()
        door = BackpressureMiddleware(
            gate.app, limit=RecordingLimit(1, queue_capacity=4), queue_wait_s=30, clock=lambda: now[0]
        )
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=door), base_url="http://test") as client:
            first = asyncio.create_task(client.get("/work", params={"n": "first"}))
            await gate.entered(1)
            waiting = asyncio.create_task(client.get("/work", params={"n": "waiting"}))
            while len(door.queue) < 1:
                await asyncio.sleep(0)
            assert not door.queue.standing()
            now[0] = 30.0  # the queue has not been empty for a whole wait: it stands
            assert door.queue.standing()
            assert (await client.get("/work", params={"n": "newcomer"})).status_code == 429
            gate.release.set()
            assert [r.status_code for r in await asyncio.gather(first, waiting)] == [200, 200]
        assert gate.order == ["first", "waiting"]

    asyncio.run(scenario())


def test_a_waiter_whose_client_leaves_gives_its_place_up():
    async def scenario():
        gate = Gate()
        door = BackpressureMiddleware(gate.app, limit=RecordingLimit(1, queue_capacity=4), queue_wait_s=30)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=door), base_url="http://test") as client:
            first = asyncio.create_task(client.get("/work", params={"n": "first"}))
            await gate.entered(1)
            gone = asyncio.create_task(client.get("/work", params={"n": "gone"}))
            while len(door.queue) < 1:
                await asyncio.sleep(0)
            gone.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await gone
            assert len(door.queue) == 0
            gate.release.set()
            assert (await first).status_code == 200
        assert door.inflight == 0 and gate.order == ["first"]

    asyncio.run(scenario())


def test_a_static_limit_learns_nothing():
    from services.common.resilience.backpressure import StaticLimit

    limit = StaticLimit(5)
    assert limit.update(9.0, 5) == 5 and limit.limit == 5 and limit.usual_latency_s == 0
    assert limit.queue_capacity == 0  # past a fixed limit nothing waits


def test_deadline_aware_admission_refuses_a_request_that_cannot_finish_in_time():
    import time

    async def scenario():
        limit = RecordingLimit(10, usual_latency_s=0.2)
        app = _app_with(limit, deadline_aware=True)
        # The context middleware sets the deadline in real stacks; here the request sets it.
        from services.common.web.middleware import RequestContextMiddleware

        wrapped = RequestContextMiddleware(app, service="test", max_body_bytes=1024)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=wrapped), base_url="http://test") as client:
            soon = str(int((time.time() + 0.05) * 1000))
            later = str(int((time.time() + 5) * 1000))
            refused = await client.get("/work", headers={"X-Request-Deadline": soon})
            assert refused.status_code == 504
            assert orjson.loads(refused.content)["error"]["code"] == "deadline_exceeded"
            assert (await client.get("/work", headers={"X-Request-Deadline": later})).status_code == 200
            assert (await client.get("/work")).status_code == 200  # no deadline: nothing to judge
        assert len(limit.samples) == 2

    asyncio.run(scenario())


def test_the_profile_picks_the_door(monkeypatch):
    from services.common.resilience.adaptive import GradientLimit
    from services.common.resilience.backpressure import StaticLimit
    from services.common.resilience.latency_target import LatencyTargetLimit
    from services.common.web.app import admission_limit
    from services.gateway.settings import Settings as GatewaySettings
    from services.orders.settings import Settings as OrdersSettings

    monkeypatch.delenv("ADMISSION", raising=False)
    # By default only the gateway has a door: one that keeps a latency target in training,
    # a static one in ci.
    for profile, door in (("training", LatencyTargetLimit), ("ci", StaticLimit)):
        monkeypatch.setenv("CHAOSLAB_PROFILE", profile)
        assert isinstance(admission_limit(GatewaySettings()), door)
        assert admission_limit(OrdersSettings()) is None
        assert GatewaySettings().admission_queue_wait_s == 0  # past an adaptive limit: 429 at once
    monkeypatch.setenv("ADMISSION", "static")
    assert isinstance(admission_limit(GatewaySettings()), StaticLimit)
    assert admission_limit(OrdersSettings()) is None  # no MAX_INFLIGHT, static: no door at all
    monkeypatch.setenv("ADMISSION", "adaptive")
    adaptive = admission_limit(GatewaySettings())
    assert isinstance(adaptive, GradientLimit)
    assert adaptive.config.max_limit <= GatewaySettings().max_inflight  # MAX_INFLIGHT stays the ceiling
    # A service without a door gets none from ADMISSION alone: the stack's door is the
    # gateway's. MAX_INFLIGHT gives it one, and is the adaptive limit's ceiling there too.
    assert admission_limit(OrdersSettings()) is None
    monkeypatch.setenv("MAX_INFLIGHT", "20")
    inner = admission_limit(OrdersSettings())
    assert isinstance(inner, GradientLimit) and inner.config.max_limit == 20
