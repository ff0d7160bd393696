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
