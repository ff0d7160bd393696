"""payments: charges, idempotent by key, and voids.

A charge looks its key up before anything else: a replay is answered from the stored
charge and never spends the card processor's capacity; only a new key is authorised.
With the `idempotency` pattern off every charge request is authorised and charged."""

from __future__ import annotations

import time
from pathlib import Path

from fastapi import APIRouter, Header
from pydantic import BaseModel, Field, StrictInt

from services.common.data.db import Database
from services.common.data.idempotency import require_key
from services.common.web.app import create_app, json_response
from services.common.web.middleware import request_deadline
from services.common.web.openapi import error_responses
from services.payments import charges
from services.payments.processor import Processor
from services.payments.settings import Settings


class ChargeRequest(BaseModel):
    order_id: str = Field(min_length=1, max_length=64)
    customer_id: str = Field(min_length=1, max_length=64)
    amount_cents: StrictInt = Field(ge=0)


class VoidRequest(BaseModel):
    order_id: str = Field(min_length=1, max_length=64)
    idempotency_key: str = Field(min_length=1, max_length=128)


class VoidBatch(BaseModel):
    voids: list[VoidRequest] = Field(min_length=1, max_length=500)


def _still_wanted() -> bool:
    deadline = request_deadline.get()
    return deadline is None or time.time() < deadline


def build_router(db: Database, settings: Settings, processor: Processor) -> APIRouter:
    router = APIRouter(tags=["payments"])
    one_per_key = charges.OnePerKey()
    idempotency = settings.pattern_on("idempotency")
    void = charges.void if idempotency else charges.void_again

    async def charge_once_per_key(key: str, body: ChargeRequest) -> dict:
        async with one_per_key.turn(key):
            async with db.connection() as conn:
                charge = await charges.stored(conn, key=key, order_id=body.order_id, amount_cents=body.amount_cents)
            if charge is not None:
                return charge
            await processor.authorise(_still_wanted)  # a new key: only now, and with no connection held
            async with db.connection() as conn:
                return await charges.charge(
                    conn,
                    key=key,
                    order_id=body.order_id,
                    customer_id=body.customer_id,
                    amount_cents=body.amount_cents,
                    limit_cents=settings.charge_limit_cents,
                    still_wanted=_still_wanted,
                )

    async def charge_every_time(key: str, body: ChargeRequest) -> dict:
        """Idempotency off: no lookup, no turn per key; every request is authorised and charged."""
        await processor.authorise(_still_wanted)
        async with db.connection() as conn:
            return await charges.charge_again(
                conn,
                key=key,
                order_id=body.order_id,
                customer_id=body.customer_id,
                amount_cents=body.amount_cents,
                limit_cents=settings.charge_limit_cents,
                still_wanted=_still_wanted,
            )

    charge_for = charge_once_per_key if idempotency else charge_every_time

    @router.post("/charges", status_code=201, responses=error_responses(402, 409, 422, 503, 504))
    async def create_charge(body: ChargeRequest, idempotency_key: str | None = Header(None)):
        charge = await charge_for(require_key(idempotency_key), body)
        status = {"succeeded": 201, "declined": 402, "voided": 409}[charge["status"]]
        return json_response(charge, status)

    @router.post("/charges/void", responses=error_responses(409, 422, 503))
    async def void_charge(body: VoidRequest):
        async with db.connection() as conn:
            return json_response(await void(conn, key=body.idempotency_key, order_id=body.order_id))

    @router.post("/charges/voids", responses=error_responses(409, 422, 503))
    async def void_charges(body: VoidBatch):
        """Several voids (the outbox relay's batch) in one transaction: all of them or none."""
        async with db.connection() as conn, conn.transaction():
            # In key order, so two batches sharing keys lock them in the same order.
            voided = {
                (v.idempotency_key, v.order_id): await void(conn, key=v.idempotency_key, order_id=v.order_id)
                for v in sorted(body.voids, key=lambda v: (v.idempotency_key, v.order_id))
            }
        return json_response({"charges": [voided[(v.idempotency_key, v.order_id)] for v in body.voids]})

    @router.get("/charges", responses=error_responses(422, 503))
    async def list_charges(order_id: str):
        async with db.connection() as conn:
            return json_response({"charges": await charges.for_order(conn, order_id)})

    return router


def build_app(settings: Settings | None = None):
    settings = settings or Settings()
    db = Database.for_service(settings, Path(__file__).parent)
    processor = Processor(settings.processor_connections, settings.processor_service_s)
    return create_app(settings, routers=[build_router(db, settings, processor)], db=db)
