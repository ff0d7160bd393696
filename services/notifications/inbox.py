"""The inbox: events from the orders outbox, stored once per event id.

`inbox_events_total{outcome}` counts every event received (`new`, or a `duplicate` of
one already stored). It is the receiving side of a reconciliation: the orders relay
counts what it marked delivered (`outbox_delivered_total`), and an event is received
before it is marked, so the relay's count running ahead of this one means events were
marked delivered that never arrived (the EventsLost alert).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from prometheus_client import Counter

from services.common.data.db import Connection
from services.common.web import logging as log

_logger = log.get_logger("inbox")
inbox_events_total = Counter("inbox_events_total", "Order events received, new or a duplicate.", ["outcome"])


async def accept(conn: Connection, events: list[dict[str, Any]]) -> dict[str, int]:
    """Store new events, count redeliveries; the whole batch or nothing."""
    rows = await conn.fetch(
        """INSERT INTO inbox AS i (event_id, type, order_id, correlation_id, payload, created_at)
           SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::jsonb[], $6::timestamptz[])
           ON CONFLICT (event_id) DO UPDATE SET duplicates = i.duplicates + 1
           RETURNING (xmax = 0) AS inserted, event_id, type, order_id, correlation_id""",
        [e["event_id"] for e in events],
        [e["type"] for e in events],
        [e["order_id"] for e in events],
        [e.get("correlation_id") for e in events],
        [e["payload"] for e in events],
        [datetime.fromisoformat(e["created_at"]) for e in events],
    )
    for row in rows:
        if row["inserted"]:
            _logger.info(
                "notification.sent",
                event_type=row["type"],
                order_id=row["order_id"],
                event_id=str(row["event_id"]),
                correlation_id=row["correlation_id"],
            )
    new = sum(1 for r in rows if r["inserted"])
    inbox_events_total.labels("new").inc(new)
    inbox_events_total.labels("duplicate").inc(len(rows) - new)
    return {"accepted": new, "duplicates": len(rows) - new}


async def recent(conn: Connection, *, order_id: str | None, limit: int) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        """SELECT event_id, type, order_id, correlation_id, payload, created_at, received_at, duplicates
           FROM inbox WHERE ($1::text IS NULL OR order_id = $1)
           ORDER BY received_at DESC LIMIT $2""",
        order_id,
        limit,
    )
    return [
        {
            **dict(r),
            "event_id": str(r["event_id"]),
            "created_at": r["created_at"].isoformat(),
            "received_at": r["received_at"].isoformat(),
        }
        for r in rows
    ]
