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

    def __init__(self, limit: int, usual_latency_s: float = 0.0) -> None:
        self.limit = limit
        self.usual_latency_s = usual_latency_s
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
        ticks = iter([10.0, 10.25, 20.0, 20.5])
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


def test_a_static_limit_learns_nothing():
    from services.common.resilience.backpressure import StaticLimit

    limit = StaticLimit(5)
    assert limit.update(9.0, 5) == 5 and limit.limit == 5 and limit.usual_latency_s == 0


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
    from services.common.web.app import admission_limit
    from services.gateway.settings import Settings as GatewaySettings
    from services.orders.settings import Settings as OrdersSettings

    monkeypatch.setenv("ADMISSION", "static")
    assert isinstance(admission_limit(GatewaySettings()), StaticLimit)
    assert admission_limit(OrdersSettings()) is None  # no MAX_INFLIGHT, static: no door at all
    monkeypatch.setenv("ADMISSION", "adaptive")
    adaptive = admission_limit(GatewaySettings())
    assert isinstance(adaptive, GradientLimit)
    assert adaptive.config.max_limit <= GatewaySettings().max_inflight  # MAX_INFLIGHT stays the ceiling
    assert isinstance(admission_limit(OrdersSettings()), GradientLimit)
