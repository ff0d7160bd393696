"""orders: owns the order saga, the transactional outbox and its relay, and the sweeper."""

from __future__ import annotations

from contextlib import AsyncExitStack
from pathlib import Path

from fastapi import APIRouter, Header, Query

from services.common.data.contracts import Order, OrderRequest
from services.common.data.db import Database
from services.common.data.idempotency import require_key
from services.common.data.outbox import DirectDelivery, OutboxRelay, Refused
from services.common.faults.runtime import ChaosRuntime
from services.common.web import logging as log
from services.common.web.app import background, create_app, json_response
from services.common.web.errors import NotFound
from services.common.web.http import downstream, make_transport
from services.common.web.openapi import error_responses
from services.orders import saga, store, sweeper
from services.orders.settings import Settings


def build_router(deps: saga.SagaDeps) -> APIRouter:
    router = APIRouter(tags=["orders"])

    @router.post("/orders", status_code=201, response_model=Order, responses=error_responses(402, 409, 422, 503))
    async def place_order(request: OrderRequest, idempotency_key: str | None = Header(None)):
        answer = await saga.place_order(
            deps, key=require_key(idempotency_key), request=request, correlation_id=log.correlation_id.get()
        )
        headers = {"Idempotency-Replayed": "true"} if answer.replayed else None
        return json_response(answer.body, answer.http_status, headers)

    @router.get("/orders/{order_id}", response_model=Order, responses=error_responses(404, 503))
    async def get_order(order_id: str):
        async with deps.db.connection() as conn:
            order = await store.get(conn, order_id)
        if order is None:
            raise NotFound(f"no order {order_id}")
        return json_response(order.view())

    @router.get("/orders", responses=error_responses(422, 503))
    async def list_orders(limit: int = Query(50, ge=1, le=500), status: str | None = None):
        async with deps.db.connection() as conn:
            orders = await store.recent(conn, limit=limit, status=status)
        return json_response({"orders": [o.view() for o in orders]})

    return router


def build_app(settings: Settings | None = None):
    settings = settings or Settings()
    db = Database.for_service(settings, Path(__file__).parent)
    transport = make_transport(settings.http_client)
    chaos = ChaosRuntime.for_service(settings)
    inventory = downstream(settings, "inventory", settings.inventory_url, transport, chaos=chaos)
    payments = downstream(settings, "payments", settings.payments_url, transport, chaos=chaos)
    notifications = downstream(settings, "notifications", settings.notifications_url, transport, chaos=chaos)

    async def notify(events: list[dict]) -> None:
        reply = await notifications.request(
            "POST", "/events", json={"events": events}, retryable=False, budget_s=settings.downstream_timeout_s
        )
        if not reply.ok:
            raise Refused("notifications", reply.status, reply.body.decode(errors="replace"))

    async def void_charges(events: list[dict]) -> None:
        """One call for the batch: payments voids all of it or none."""
        voids = [e["payload"] for e in events]  # {"order_id", "idempotency_key"}; payments checks them
        reply = await payments.request(
            "POST", "/charges/voids", json={"voids": voids}, retryable=False, budget_s=settings.downstream_timeout_s
        )
        if not reply.ok:
            raise Refused("payments", reply.status, reply.body.decode(errors="replace"))

    deliverers = {"notifications": notify, "payments": void_charges}
    outbox = settings.pattern_on("outbox")
    deps = saga.SagaDeps(
        db=db,
        inventory=inventory,
        payments=payments,
        lease_s=settings.order_lease_s,
        call_budget_s=settings.request_timeout_s,
        idempotency=settings.pattern_on("idempotency"),
        direct=None if outbox else DirectDelivery(deliverers),
    )
    relays = [
        OutboxRelay(
            db,
            destination,
            deliver,
            interval_s=settings.relay_interval_s,
            retention_s=settings.outbox_retention_s,
            max_backoff_s=max(1.0, settings.relay_interval_s * 20),
            max_attempts=settings.outbox_max_attempts,
            # Covers one delivery (a single call, bounded by its budget) with room to mark it.
            lease_s=2 * settings.downstream_timeout_s + 5,
            stuck=lambda: bool(chaos.value("outbox_paused")),
            drop=(lambda: float(chaos.value("outbox_drop") or 0)) if destination == "notifications" else lambda: 0.0,
        )
        for destination, deliver in deliverers.items()
        if outbox  # the outbox off: no relay, its events go out through deps.direct
    ]

    async def lifecycle(stack: AsyncExitStack) -> None:
        stack.push_async_callback(transport.close)
        for relay in relays:
            background(stack, relay.run())
        background(stack, sweeper.run_forever(deps, settings.sweeper_interval_s))

    return create_app(
        settings,
        routers=[build_router(deps)],
        db=db,
        chaos=chaos,
        downstreams=(inventory, payments, notifications),
        lifecycle=lifecycle,
    )
