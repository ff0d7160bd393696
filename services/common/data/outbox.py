"""Transactional outbox: an event is written in the same transaction as the change it
announces, then a relay delivers it until the receiver acknowledges it.

Delivery is at least once (a relay that dies between delivery and marking sends again);
the receiver de-duplicates by event id, so each event takes effect exactly once.
`outbox_pending` and `outbox_oldest_age_seconds` show a relay that is not keeping up.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from services.common.data.db import DB_ERRORS, Connection, Database
from services.common.web import logging as log
from services.common.web.errors import ChaoslabError
from services.common.web.metrics import (
    outbox_delivered_total,
    outbox_failed_total,
    outbox_oldest_age_seconds,
    outbox_pending,
)

_logger = log.get_logger("outbox")

# The table, run by the owning service among its migrations.
OUTBOX_SQL = Path(__file__).with_name("outbox.sql")

Deliver = Callable[[list[dict[str, Any]]], Awaitable[None]]


async def write_event(
    conn: Connection,
    *,
    event_type: str,
    order_id: str,
    correlation_id: str | None,
    payload: dict[str, Any],
    destination: str = "notifications",
) -> str:
    """Add an event for `destination` inside the caller's transaction. Its id is derived
    from the order and the event type, so writing the same fact twice makes one event."""
    event_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"chaoslab:{order_id}:{event_type}"))
    await conn.execute(
        """INSERT INTO outbox_events (event_id, type, order_id, correlation_id, payload, destination)
           VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (event_id) DO NOTHING""",
        event_id,
        event_type,
        order_id,
        correlation_id,
        payload,
        destination,
    )
    return event_id


class OutboxRelay:
    """Delivers unpublished events in batches; backs off while the receiver is down.

    `stuck()` is the outbox-stuck fault: once it has been seen, this relay hangs for
    the rest of the process's life, as a deadlocked relay would, and only a restart
    brings delivery back. Several relays (replicas) can run at once:
    `FOR UPDATE SKIP LOCKED` gives each its own batch.
    """

    def __init__(
        self,
        db: Database,
        destination: str,
        deliver: Deliver,
        *,
        interval_s: float,
        retention_s: float,
        max_backoff_s: float,
        batch_size: int = 100,
        stuck: Callable[[], bool] = lambda: False,
    ) -> None:
        self.db, self.destination, self.deliver = db, destination, deliver
        self.interval_s, self.retention_s = interval_s, retention_s
        self.max_backoff_s, self.batch_size, self.stuck = max_backoff_s, batch_size, stuck
        self.hung = False

    async def run(self) -> None:
        backoff = self.interval_s
        last_purge = 0.0
        loop = asyncio.get_running_loop()
        while True:
            try:
                sent = await self._cycle()
                if loop.time() - last_purge > min(60.0, self.retention_s):
                    await self.purge()
                    last_purge = loop.time()
            except Exception as exc:  # noqa: BLE001 - the relay must outlive any failure
                outbox_failed_total.labels(self.destination).inc()
                expected = isinstance(exc, (ChaoslabError, *DB_ERRORS))
                (_logger.warning if expected else _logger.error)(
                    "outbox.delivery_failed",
                    destination=self.destination,
                    error=str(exc) or repr(exc),
                    retry_in_s=round(backoff, 2),
                    exc_info=None if expected else exc,
                )
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self.max_backoff_s)
                continue
            backoff = self.interval_s
            if sent < self.batch_size:
                await asyncio.sleep(self.interval_s)

    async def _cycle(self) -> int:
        await self.measure()
        if not self.hung and self.stuck():
            self.hung = True
            _logger.error(
                "outbox.relay_stuck", destination=self.destination, note="no delivery until this process restarts"
            )
        return 0 if self.hung else await self.relay_once()

    async def relay_once(self) -> int:
        """Deliver one batch; returns how many were acknowledged."""
        async with self.db.connection() as conn, conn.transaction():
            rows = await conn.fetch(
                """SELECT event_id, type, order_id, correlation_id, payload, created_at
                   FROM outbox_events WHERE published_at IS NULL AND destination = $2
                   ORDER BY created_at LIMIT $1 FOR UPDATE SKIP LOCKED""",
                self.batch_size,
                self.destination,
            )
            if not rows:
                return 0
            events = [
                {**dict(r), "event_id": str(r["event_id"]), "created_at": r["created_at"].isoformat()} for r in rows
            ]
            ids = [r["event_id"] for r in rows]
            failure: ChaoslabError | None = None
            try:
                await self.deliver(events)
            except ChaoslabError as exc:
                failure = exc
                await conn.execute(
                    "UPDATE outbox_events SET attempts = attempts + 1, last_error = $2 WHERE event_id = ANY($1)",
                    ids,
                    str(exc)[:500],
                )
            else:
                await conn.execute(
                    "UPDATE outbox_events SET published_at = now(), attempts = attempts + 1 WHERE event_id = ANY($1)",
                    ids,
                )
        if failure:
            raise failure
        outbox_delivered_total.labels(self.destination).inc(len(rows))
        return len(rows)

    async def measure(self) -> None:
        async with self.db.connection() as conn:
            row = await conn.fetchrow(
                """SELECT count(*) AS n, min(created_at) AS oldest FROM outbox_events
                   WHERE published_at IS NULL AND destination = $1""",
                self.destination,
            )
        assert row is not None  # an aggregate without GROUP BY always returns one row
        outbox_pending.labels(self.destination).set(row["n"])
        age = (datetime.now(UTC) - row["oldest"]).total_seconds() if row["oldest"] else 0.0
        outbox_oldest_age_seconds.labels(self.destination).set(max(age, 0.0))

    async def purge(self) -> None:
        """Published events are kept for the retention window, then deleted. Nothing is
        kept for `chaoslab verify`: it judges purged events from the receiving side
        (notifications' inbox, payments' charges), which keeps everything."""
        async with self.db.connection() as conn:
            await conn.execute(
                "DELETE FROM outbox_events WHERE published_at < now() - make_interval(secs => $1)", self.retention_s
            )
