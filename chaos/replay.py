"""`chaoslab replay`: deliver again the events notifications lost, from the source of truth.

An order's final status is the fact; its `order.<status>` event follows from it
(services/orders/store.py `final_events`) and its id from the order and the type, so
the event rebuilt today is the event sent then, and notifications' inbox takes an id
once: replaying is idempotent. A finished order whose event is neither in the inbox nor
still waiting in the outbox was lost on the way (inbox rows deleted, an event marked
published that never arrived, one given up in the dead letters). Replay puts each such
event back in the outbox as unpublished, and the relay delivers it like any other.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass

import asyncpg

from services.common.data.db import create_pool
from services.common.data.outbox import Event, event_id_of
from services.orders import store

# Finished orders whose event is missing: not in the inbox, not pending in the outbox.
# Younger than `grace` it may still be on its way (the relay polls, then delivers).
MISSING_SQL = """
SELECT o.order_id::text FROM orders.orders o
WHERE o.status = ANY($1::text[]) AND o.updated_at >= $2 AND o.updated_at < now() - make_interval(secs => $3)
  AND NOT EXISTS (SELECT 1 FROM notifications.inbox i
                  WHERE i.order_id = o.order_id::text AND i.type = 'order.' || o.status)
  AND NOT EXISTS (SELECT 1 FROM orders.outbox_events e
                  WHERE e.order_id = o.order_id::text AND e.type = 'order.' || o.status
                    AND e.destination = 'notifications' AND e.published_at IS NULL)
ORDER BY o.updated_at
"""
# An event that is still in the outbox (published, or never) is sent again from scratch.
REPUBLISH_SQL = """
INSERT INTO orders.outbox_events (event_id, type, order_id, correlation_id, payload, destination)
VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT (event_id) DO UPDATE SET published_at = NULL, attempts = 0, refusals = 0, retry_at = NULL,
                                     claim_token = NULL, claimed_until = NULL, last_error = NULL
"""
DELIVERED_SQL = "SELECT count(*) FROM notifications.inbox WHERE event_id = ANY($1::uuid[])"


@dataclass(frozen=True)
class Lost:
    order_id: str
    status: str
    event_id: str
    event_type: str


async def find(database_url: str, since: dt.datetime, grace_s: float) -> tuple[list[Lost], list[Event]]:
    """The lost events of orders finished since `since`, and the events to publish again."""
    pool = await create_pool(database_url, "orders", 1, 2, 10)
    try:
        async with pool.acquire() as conn:
            ids = [r[0] for r in await conn.fetch(MISSING_SQL, list(store.FINAL_STATUSES), since, grace_s)]
            events = []
            for order_id in ids:
                order = await store.get(conn, order_id)
                assert order is not None, order_id  # it was just listed
                events.append(
                    next(
                        e
                        for e in store.final_events(
                            order, status=order.status, total_cents=order.total_cents, void_charge=False
                        )
                        if e.destination == "notifications"
                    )
                )
    finally:
        await pool.close()
    lost = [Lost(e.order_id, e.payload["status"], event_id_of(e.order_id, e.type), e.type) for e in events]
    return lost, events


async def republish(database_url: str, events: list[Event]) -> None:
    """Put `events` back in the outbox as unpublished, in one transaction (a dead-lettered
    one leaves the dead letters: it is tried again)."""
    pool = await create_pool(database_url, "orders", 1, 2, 10)
    try:
        async with pool.acquire() as conn, conn.transaction():
            await conn.executemany(
                REPUBLISH_SQL,
                [
                    (event_id_of(e.order_id, e.type), e.type, e.order_id, e.correlation_id, e.payload, e.destination)
                    for e in events
                ],
            )
            await conn.execute(
                "DELETE FROM orders.outbox_dead_letters WHERE event_id = ANY($1::uuid[])",
                [event_id_of(e.order_id, e.type) for e in events],
            )
    finally:
        await pool.close()


def wait_delivered(database_url: str, lost: list[Lost], timeout_s: float, progress: Callable[[int, int], None]) -> int:
    """Poll notifications' inbox until every replayed event is in it (or the deadline);
    the number that arrived."""
    ids = [item.event_id for item in lost]
    deadline = time.monotonic() + timeout_s
    arrived = 0
    while True:
        arrived = asyncio.run(_count(database_url, ids))
        progress(arrived, len(ids))
        if arrived == len(ids) or time.monotonic() >= deadline:
            return arrived
        time.sleep(0.5)


async def _count(database_url: str, ids: list[str]) -> int:
    conn = await asyncpg.connect(database_url, timeout=5)
    try:
        return int(await conn.fetchval(DELIVERED_SQL, ids))
    finally:
        await conn.close()
