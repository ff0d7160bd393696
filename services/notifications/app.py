"""notifications: receives order events from the outbox relay, once per event id."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any, Literal
from uuid import UUID

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from services.common.data.db import Database
from services.common.web.app import create_app, json_response
from services.common.web.openapi import error_responses
from services.notifications import alerts, inbox
from services.notifications.settings import Settings


class Event(BaseModel):
    event_id: UUID
    type: str = Field(min_length=1, max_length=64)
    order_id: str = Field(min_length=1, max_length=64)
    correlation_id: str | None = None
    payload: dict[str, Any]
    created_at: datetime


class EventBatch(BaseModel):
    events: list[Event] = Field(min_length=1, max_length=500)


class Alert(BaseModel):
    status: Literal["firing", "resolved"]
    labels: dict[str, str]
    annotations: dict[str, str] = {}
    startsAt: str | None = None  # noqa: N815 - Alertmanager's field names
    endsAt: str | None = None  # noqa: N815
    fingerprint: str = ""


class AlertmanagerWebhook(BaseModel):
    """The part of Alertmanager's webhook payload (version 4) we keep."""

    receiver: str = Field("", max_length=200)  # where Alertmanager routed them: page or ticket
    alerts: list[Alert] = Field(max_length=1000)


def build_router(db: Database) -> APIRouter:
    router = APIRouter(tags=["notifications"])

    @router.post("/events", responses=error_responses(422, 503))
    async def receive(batch: EventBatch):
        events = [e.model_dump(mode="json") for e in batch.events]
        async with db.connection() as conn:
            return json_response(await inbox.accept(conn, events))

    @router.get("/events", responses=error_responses(422, 503))
    async def list_events(order_id: str | None = None, limit: int = Query(100, ge=1, le=1000)):
        async with db.connection() as conn:
            return json_response({"events": await inbox.recent(conn, order_id=order_id, limit=limit)})

    @router.post("/alerts", responses=error_responses(422, 503))
    async def receive_alerts(body: AlertmanagerWebhook):
        """Alertmanager's webhook: every alert it sends, firing or resolved."""
        async with db.connection() as conn:
            count = await alerts.record(conn, [a.model_dump() for a in body.alerts], receiver=body.receiver)
        return json_response({"recorded": count})

    @router.get("/alerts", responses=error_responses(422, 503))
    async def list_alerts(status: Literal["firing", "resolved"] | None = None, limit: int = Query(100, ge=1, le=1000)):
        async with db.connection() as conn:
            return json_response({"alerts": await alerts.recent(conn, status=status, limit=limit)})

    return router


def build_app(settings: Settings | None = None):
    settings = settings or Settings()
    db = Database.for_service(settings, Path(__file__).parent)
    return create_app(settings, routers=[build_router(db)], db=db)
