"""gateway: the public entry point. Validates, sheds load, and calls orders through its policy."""

from __future__ import annotations

from contextlib import AsyncExitStack
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Header, Query, Request

from services.common.data.contracts import Order, OrderRequest
from services.common.data.idempotency import require_key
from services.common.faults.runtime import ChaosRuntime
from services.common.web.app import create_app
from services.common.web.http import Downstream, downstream, make_transport
from services.common.web.openapi import error_responses
from services.gateway import proxy
from services.gateway.ratelimit import RateLimiter
from services.gateway.settings import Settings


def build_router(orders: Downstream, settings: Settings, limiter: RateLimiter) -> APIRouter:
    # async: FastAPI runs a plain `def` dependency in its thread pool, a thread hand-off
    # per request for what is a few dictionary look-ups.
    async def rate_limit(request: Request, x_client_id: str | None = Header(None)) -> None:
        limiter.check(request.client.host if request.client else "unknown", x_client_id)

    router = APIRouter(tags=["orders"], dependencies=[Depends(rate_limit)])
    budget = settings.request_timeout_s

    @router.post(
        "/orders", status_code=201, response_model=Order, responses=error_responses(402, 409, 413, 422, 429, 503, 504)
    )
    async def place_order(request: OrderRequest, idempotency_key: str | None = Header(None)):
        """Place an order. Send a fresh `Idempotency-Key` per order and the same key on retries."""
        return await proxy.place_order(
            orders, key=require_key(idempotency_key), body=request.model_dump(), budget_s=budget
        )

    @router.get("/orders/{order_id}", response_model=Order, responses=error_responses(404, 429, 503))
    async def get_order(order_id: str):
        return await proxy.read(orders, f"/orders/{order_id}", budget)

    @router.get("/orders", responses=error_responses(422, 429, 503))
    async def list_orders(limit: int = Query(50, ge=1, le=500), status: str | None = None):
        query = urlencode({"limit": limit, **({"status": status} if status else {})})
        return await proxy.read(orders, f"/orders?{query}", budget)

    return router


def build_app(settings: Settings | None = None):
    settings = settings or Settings()
    transport = make_transport(settings.http_client)
    chaos = ChaosRuntime.for_service(settings)
    orders = downstream(
        settings, "orders", settings.orders_url, transport, chaos=chaos, timeout_s=settings.request_timeout_s
    )
    limiter = RateLimiter(lambda: chaos.value("rate_limit_rps") or settings.rate_limit_rps)

    async def lifecycle(stack: AsyncExitStack) -> None:
        stack.push_async_callback(transport.close)

    return create_app(
        settings,
        routers=[build_router(orders, settings, limiter)],
        chaos=chaos,
        downstreams=(orders,),
        gather_breakers=(orders,),
        lifecycle=lifecycle,
        public=True,  # its routes are the stack's front door: no service credential
    )
