"""Transactional outbox: an event is written in the same transaction as the change it
announces, then a relay delivers it until the receiver acknowledges it.

Delivery is at least once (a relay that dies between delivery and marking sends again);
the receiver de-duplicates by event id, so each event takes effect exactly once.
`outbox_pending` and `outbox_oldest_age_seconds` show a relay that is not keeping up.

A relay round never holds a transaction (or a row lock, or a pooled connection) while it
waits on the receiver:

1. **claim**: one statement, committed at once, takes a batch (`FOR UPDATE SKIP LOCKED`,
   only rows no live claim holds) and gives it a claim token and a lease
   (`claimed_until`). Another relay (replica) skips it; a relay that dies mid-delivery
   leaves a claim that expires, and the batch goes again;
2. **deliver**, outside any transaction;
3. **mark**: one short statement marks the batch delivered, or records the failure.

What a failure means depends on who answered:

- no answer (refused connection, timeout, open breaker): the receiver is down. The claim
  is released and the relay backs off; nothing counts against the event;
- the receiver refused the batch (`Refused`, any non-2xx answer): the relay sends the
  batch's events one by one, so one bad event cannot hold back the others. An event
  refused on its own with a permanent 4xx (not 408, 409 or 429) is moved to
  `outbox_dead_letters` at once; refused otherwise, it backs off on its own
  (`retry_at`), and after `max_attempts` such refusals it is dead-lettered too. Events
  behind it keep going. `outbox_dead_letters` and `outbox_dead_lettered_total` count
  them, and `chaoslab verify` names each one (`no_dead_letters`).

With the `outbox` pattern off (PATTERNS), nothing is written here and no relay runs:
`DirectDelivery` sends each event once, right after the transaction that made it, and
an event it cannot deliver then is lost (`events_sent_directly_total{outcome="lost"}`).
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from services.common.data.db import DB_ERRORS, Connection, Database
from services.common.web import logging as log
from services.common.web.errors import ChaoslabError, DownstreamError
from services.common.web.metrics import (
    events_sent_directly_total,
    outbox_dead_lettered_total,
    outbox_dead_letters,
    outbox_delivered_total,
    outbox_failed_total,
    outbox_oldest_age_seconds,
    outbox_pending,
)

_logger = log.get_logger("outbox")

# The table, run by the owning service among its migrations.
OUTBOX_SQL = Path(__file__).with_name("outbox.sql")

Deliver = Callable[[list[dict[str, Any]]], Awaitable[None]]

# 4xx answers that say "not now" rather than "never".
_TRANSIENT_4XX = frozenset({408, 409, 429})
_EVENT_COLUMNS = "event_id, type, order_id, correlation_id, payload, created_at"


class Refused(DownstreamError):
    """The destination answered a delivery with something other than a 2xx."""

    def __init__(self, destination: str, status: int, detail: str = "") -> None:
        super().__init__(destination, f"{destination} answered {status}" + (f": {detail[:300]}" if detail else ""))
        self.status = status

    @property
    def permanent(self) -> bool:
        """A 4xx other than 408, 409 and 429: sending the same event again cannot help."""
        return 400 <= self.status < 500 and self.status not in _TRANSIENT_4XX


def event_id_of(order_id: str, event_type: str) -> str:
    """An event's id, derived from its order and its type: the same fact twice is one event."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"chaoslab:{order_id}:{event_type}"))


@dataclass(frozen=True)
class Event:
    """One fact for one destination, before it is written to the outbox (`insert_events`)
    or, with the outbox off, sent at once (`DirectDelivery`)."""

    type: str
    order_id: str
    correlation_id: str | None
    payload: dict[str, Any]
    destination: str = "notifications"

    def delivered_as(self, created_at: datetime) -> dict[str, Any]:
        """The event as a relay delivers it (its columns, dates as ISO text)."""
        return {
            "event_id": event_id_of(self.order_id, self.type),
            "type": self.type,
            "order_id": self.order_id,
            "correlation_id": self.correlation_id,
            "payload": self.payload,
            "created_at": created_at.isoformat(),
        }


def insert_events(first: int, only_if: str = "true") -> str:
    """An INSERT of outbox events whose columns come as six array parameters, `$first`
    on (`event_arrays`), made only if the SQL condition `only_if` holds. One statement,
    so it can be a data-modifying WITH inside the statement that writes the change the
    events announce: both commit, or neither. An event's id is derived from its order
    and type, so the same fact twice is one event."""
    ids, types, orders, cids, payloads = (f"${first + i}" for i in range(5))
    return f"""INSERT INTO outbox_events (event_id, type, order_id, correlation_id, payload, destination)
        SELECT e.event_id, e.type, e.order_id, e.correlation_id, e.payload::jsonb, e.destination
        FROM unnest({ids}::uuid[], {types}::text[], {orders}::text[], {cids}::text[], {payloads}::text[],
                    ${first + 5}::text[]) AS e(event_id, type, order_id, correlation_id, payload, destination)
        WHERE {only_if}
        ON CONFLICT (event_id) DO NOTHING"""


def event_arrays(events: Sequence[Event]) -> tuple[list[Any], ...]:
    """The six array parameters of `insert_events`, one element per event."""
    return (
        [event_id_of(e.order_id, e.type) for e in events],
        [e.type for e in events],
        [e.order_id for e in events],
        [e.correlation_id for e in events],
        [orjson.dumps(e.payload).decode() for e in events],
        [e.destination for e in events],
    )


class DirectDelivery:
    """The outbox switched off: whoever makes an event sends it at once, in one call per
    destination, and never again. No row, no relay, no retry: an event the destination
    does not take then (down, slow, refusing) is lost, which is what the outbox prevents.
    Counts each event in `events_sent_directly_total{destination,outcome}`, `delivered`
    or `lost`."""

    def __init__(self, deliverers: Mapping[str, Deliver], clock: Callable[[], datetime] = lambda: datetime.now(UTC)):
        self.deliverers = deliverers
        self._clock = clock

    async def send(self, events: Sequence[Event]) -> int:
        """Send `events` once; returns how many were lost. Never raises for a delivery
        that failed: the change the events announce is committed already."""
        lost = 0
        for destination in dict.fromkeys(e.destination for e in events):
            batch = [e.delivered_as(self._clock()) for e in events if e.destination == destination]
            try:
                await self.deliverers[destination](batch)
            except Exception as exc:  # noqa: BLE001 - a lost event never fails the order it announces
                lost += len(batch)
                events_sent_directly_total.labels(destination, "lost").inc(len(batch))
                expected = isinstance(exc, (ChaoslabError, *DB_ERRORS))
                (_logger.warning if expected else _logger.error)(
                    "outbox.off.event_lost",
                    destination=destination,
                    events=[e["event_id"] for e in batch],
                    error=str(exc) or repr(exc),
                    exc_info=None if expected else exc,
                )
            else:
                events_sent_directly_total.labels(destination, "delivered").inc(len(batch))
        return lost


class OutboxRelay:
    """Delivers unpublished events in batches; backs off while the receiver is down.

    `stuck()` is the outbox-stuck fault: once it has been seen, this relay hangs for
    the rest of the process's life, as a deadlocked relay would, and only a restart
    brings delivery back. `drop()` is the data-loss fault: the share of batches marked
    delivered without being sent, as a relay that loses what it acknowledges would;
    nothing here notices, only a reconciliation with the receiver's count does. Several
    relays (replicas) can run at once: each claims its own batch (see the module's
    docstring).
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
        max_attempts: int = 50,
        lease_s: float = 30.0,
        stuck: Callable[[], bool] = lambda: False,
        drop: Callable[[], float] = lambda: 0.0,
    ) -> None:
        self.db, self.destination, self.deliver = db, destination, deliver
        self.interval_s, self.retention_s = interval_s, retention_s
        self.max_backoff_s, self.batch_size, self.stuck, self.drop = max_backoff_s, batch_size, stuck, drop
        self.max_attempts, self.lease_s = max(1, max_attempts), lease_s
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
        """Claim a batch, deliver it outside any transaction, mark it; returns how many
        were acknowledged. Raises when the receiver could not take them (the relay backs off)."""
        token = uuid.uuid4()
        events = await self._claim(token)
        if not events:
            return 0
        if random.random() < self.drop():
            await self._mark_delivered([e["event_id"] for e in events])
            return len(events)
        try:
            await self.deliver(events)
        except Refused as exc:
            if len(events) > 1:
                return await self._one_by_one(events, token)
            await self._refused(events[0], token, exc)
            if not exc.permanent:
                raise
            return 0
        except Exception as exc:
            await self._release([e["event_id"] for e in events], token, exc)
            raise
        await self._mark_delivered([e["event_id"] for e in events])
        return len(events)

    async def _one_by_one(self, events: list[dict[str, Any]], token: uuid.UUID) -> int:
        """The receiver refused the batch: find the event(s) it refuses, deliver the rest."""
        delivered = 0
        for i, event in enumerate(events):
            if not await self._renew(event["event_id"], token):
                continue  # the claim ran out and another relay took the event
            try:
                await self.deliver([event])
            except Refused as exc:
                await self._refused(event, token, exc)
                if exc.permanent:
                    continue
                # Refused "not now": the event or the receiver? The event backs off on its
                # own; the relay backs off too, and the rest waits for the next round.
                await self._release([e["event_id"] for e in events[i + 1 :]], token, None)
                raise
            except Exception as exc:
                await self._release([e["event_id"] for e in events[i:]], token, exc)
                raise
            await self._mark_delivered([event["event_id"]])
            delivered += 1
        return delivered

    async def _claim(self, token: uuid.UUID) -> list[dict[str, Any]]:
        """One statement, so one short transaction: the batch's row locks last as long as it does."""
        async with self.db.connection() as conn:
            rows = await conn.fetch(
                f"""WITH batch AS (
                        SELECT event_id FROM outbox_events
                        WHERE published_at IS NULL AND destination = $2
                          AND (claimed_until IS NULL OR claimed_until < now())
                          AND (retry_at IS NULL OR retry_at <= now())
                        ORDER BY created_at LIMIT $1 FOR UPDATE SKIP LOCKED)
                    UPDATE outbox_events e
                    SET claim_token = $3, claimed_until = now() + make_interval(secs => $4),
                        attempts = e.attempts + 1
                    FROM batch WHERE e.event_id = batch.event_id
                    RETURNING {", ".join(f"e.{c}" for c in _EVENT_COLUMNS.split(", "))}""",
                self.batch_size,
                self.destination,
                token,
                self.lease_s,
            )
        rows = sorted(rows, key=lambda r: r["created_at"])
        return [{**dict(r), "event_id": str(r["event_id"]), "created_at": r["created_at"].isoformat()} for r in rows]

    async def _renew(self, event_id: str, token: uuid.UUID) -> bool:
        """A fresh lease (and one more attempt) before a delivery of the event on its own."""
        async with self.db.connection() as conn:
            row = await conn.fetchrow(
                """UPDATE outbox_events SET claimed_until = now() + make_interval(secs => $3), attempts = attempts + 1
                   WHERE event_id = $1 AND claim_token = $2 AND published_at IS NULL RETURNING 1""",
                uuid.UUID(event_id),
                token,
                self.lease_s,
            )
        return row is not None

    async def _mark_delivered(self, ids: list[str]) -> None:
        # Whoever holds the claim now: an acknowledged event is delivered.
        async with self.db.connection() as conn:
            await conn.execute(
                """UPDATE outbox_events SET published_at = now(), claim_token = NULL, claimed_until = NULL
                   WHERE event_id = ANY($1::uuid[]) AND published_at IS NULL""",
                ids,
            )
        outbox_delivered_total.labels(self.destination).inc(len(ids))

    async def _release(self, ids: list[str], token: uuid.UUID, exc: BaseException | None) -> None:
        """Give the claim back (the receiver is down): the events go again next round."""
        if not ids:
            return
        try:
            async with self.db.connection() as conn:
                await conn.execute(
                    """UPDATE outbox_events SET claim_token = NULL, claimed_until = NULL,
                                                last_error = coalesce($3, last_error)
                       WHERE event_id = ANY($1::uuid[]) AND claim_token = $2""",
                    ids,
                    token,
                    None if exc is None else (str(exc) or repr(exc))[:500],
                )
        except (ChaoslabError, *DB_ERRORS):
            pass  # the lease runs out by itself

    async def _refused(self, event: dict[str, Any], token: uuid.UUID, exc: Refused) -> None:
        """The receiver refused this event on its own: dead-letter it, or let it back off alone."""
        error = str(exc)[:500]
        event_id = uuid.UUID(event["event_id"])
        async with self.db.connection() as conn:
            refusals = await conn.fetchval(
                """UPDATE outbox_events SET refusals = refusals + 1, last_error = $3
                   WHERE event_id = $1 AND claim_token = $2 RETURNING refusals""",
                event_id,
                token,
                error,
            )
            if refusals is None:
                return  # delivered or taken by another relay meanwhile
            if exc.permanent or refusals >= self.max_attempts:
                await self._dead_letter(conn, event_id, token, error, refusals)
                return
            backoff = min(self.max_backoff_s, self.interval_s * 2 ** (refusals - 1))
            await conn.execute(
                """UPDATE outbox_events SET claim_token = NULL, claimed_until = NULL,
                                            retry_at = now() + make_interval(secs => $3)
                   WHERE event_id = $1 AND claim_token = $2""",
                event_id,
                token,
                backoff,
            )

    async def _dead_letter(
        self, conn: Connection, event_id: uuid.UUID, token: uuid.UUID, error: str, refusals: int
    ) -> None:
        row = await conn.fetchrow(
            """WITH moved AS (
                   DELETE FROM outbox_events WHERE event_id = $1 AND claim_token = $2
                   RETURNING event_id, type, order_id, correlation_id, payload, destination, created_at, attempts)
               INSERT INTO outbox_dead_letters
                   (event_id, type, order_id, correlation_id, payload, destination, created_at, attempts, last_error)
               SELECT event_id, type, order_id, correlation_id, payload, destination, created_at, attempts, $3
               FROM moved
               ON CONFLICT (event_id) DO NOTHING
               RETURNING event_id, type, order_id, attempts""",
            event_id,
            token,
            error,
        )
        if row is None:
            return
        outbox_dead_lettered_total.labels(self.destination).inc()
        _logger.error(
            "outbox.dead_lettered",
            destination=self.destination,
            event_id=str(row["event_id"]),
            event_type=row["type"],
            order_id=row["order_id"],
            attempts=row["attempts"],
            refusals=refusals,
            error=error,
        )

    async def measure(self) -> None:
        async with self.db.connection() as conn:
            row = await conn.fetchrow(
                """SELECT count(*) AS n, min(created_at) AS oldest FROM outbox_events
                   WHERE published_at IS NULL AND destination = $1""",
                self.destination,
            )
            dead = await conn.fetchval(
                "SELECT count(*) FROM outbox_dead_letters WHERE destination = $1", self.destination
            )
        assert row is not None  # an aggregate without GROUP BY always returns one row
        outbox_pending.labels(self.destination).set(row["n"])
        age = (datetime.now(UTC) - row["oldest"]).total_seconds() if row["oldest"] else 0.0
        outbox_oldest_age_seconds.labels(self.destination).set(max(age, 0.0))
        outbox_dead_letters.labels(self.destination).set(dead)

    async def purge(self) -> None:
        """Published events are kept for the retention window, then deleted. Nothing is
        kept for `chaoslab verify`: it judges purged events from the receiving side
        (notifications' inbox, payments' charges), which keeps everything. Dead letters
        are kept until an operator deals with them."""
        async with self.db.connection() as conn:
            await conn.execute(
                "DELETE FROM outbox_events WHERE published_at < now() - make_interval(secs => $1)", self.retention_s
            )
