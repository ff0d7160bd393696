"""inventory: the catalogue, stock levels and per-order reservations."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from pydantic import BaseModel, Field

from services.common.data.contracts import OrderItem
from services.common.data.db import Database
from services.common.faults.runtime import ChaosRuntime
from services.common.web.app import create_app, json_response
from services.common.web.openapi import error_responses
from services.inventory import catalogue, stock
from services.inventory.settings import Settings


class ReserveRequest(BaseModel):
    order_id: str = Field(min_length=1, max_length=64)
    items: list[OrderItem] = Field(min_length=1, max_length=20)


def build_router(db: Database, chaos: ChaosRuntime) -> APIRouter:
    router = APIRouter(tags=["inventory"])

    @router.get("/inventory", responses=error_responses(503))
    async def list_products():
        async with db.connection() as conn:
            return json_response({"products": await stock.products(conn)})

    @router.get("/inventory/{sku}", responses=error_responses(404, 503))
    async def get_product(sku: str):
        async with db.connection() as conn:
            return json_response(await stock.product(conn, sku))

    @router.post("/reservations", status_code=201, responses=error_responses(409, 422, 503))
    async def reserve(body: ReserveRequest):
        items = [i.model_dump() for i in body.items]
        async with db.connection() as conn:
            hold_ms = chaos.value("lock_contention_ms", "/reservations") or 0
            reservation = await stock.reserve(conn, body.order_id, items, hold_locks_s=hold_ms / 1000)
        status = 409 if reservation.status == "rejected" else 201
        return json_response(reservation.as_dict(), status)

    @router.get("/reservations/{order_id}", responses=error_responses(404, 503))
    async def get_reservation(order_id: str):
        async with db.connection() as conn:
            return json_response((await stock.get_reservation(conn, order_id)).as_dict())

    @router.post("/reservations/{order_id}/release", responses=error_responses(409, 503))
    async def release(order_id: str):
        async with db.connection() as conn:
            return json_response((await stock.release(conn, order_id)).as_dict())

    @router.post("/reservations/{order_id}/commit", responses=error_responses(404, 409, 503))
    async def commit(order_id: str):
        async with db.connection() as conn:
            return json_response((await stock.commit(conn, order_id)).as_dict())

    return router


def build_app(settings: Settings | None = None):
    settings = settings or Settings()
    db = Database.for_service(
        settings, Path(__file__).parent, on_ready=lambda conn: catalogue.seed(conn, settings.seed_stock)
    )
    chaos = ChaosRuntime.for_service(settings)
    return create_app(settings, routers=[build_router(db, chaos)], db=db, chaos=chaos)
