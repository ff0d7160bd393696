"""The orders table and its unit of work: final status and outbox event, one transaction.

A `pending` order belongs to whoever holds its lease; every write that moves it on
(renew, give up, withdraw, finish) checks the lease token, so a request and the sweeper
can never both finish it. A claim hands out a new token, so an owner whose lease ran
out and was taken over can neither renew it nor finish the order, however late it tries.

With the `idempotency` pattern off an order is inserted with `deduplicated` false: its
key (still the client's) makes it no repeat of any other, so a retried order is taken
again. Only deduplicated orders hold their key unique (migrations/v0001_baseline.sql).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from services.common.data.db import Connection
from services.common.data.outbox import Event, event_arrays, insert_events
from services.common.web.errors import DependencyUnavailable
from services.common.web.metrics import orders_total

FINAL_STATUSES = ("confirmed", "payment_failed", "out_of_stock", "rejected")

_COLUMNS = """order_id::text, idempotency_key, request_hash, customer_id, requested_items, items,
              total_cents, status, response_status, response_body, correlation_id,
              lease_token::text, created_at"""


@dataclass(frozen=True)
class OrderRow:
    order_id: str
    idempotency_key: str
    request_hash: str
    customer_id: str
    requested_items: list[dict[str, Any]]
    items: list[dict[str, Any]] | None
    total_cents: int | None
    status: str
    response_status: int | None
    response_body: dict[str, Any] | None
    correlation_id: str | None
    lease_token: str | None
    created_at: datetime

    def view(self) -> dict[str, Any]:
        """The order as the API shows it."""
        items = self.items or [{**i, "unit_price_cents": None} for i in self.requested_items]
        return {
            "order_id": self.order_id,
            "status": self.status,
            "items": items,
            "total_cents": self.total_cents,
            "correlation_id": self.correlation_id,
            "created_at": self.created_at.isoformat(),
        }


def _row(record: asyncpg.Record | None) -> OrderRow | None:
    return OrderRow(**record) if record else None


async def insert_pending(
    conn: Connection,
    *,
    key: str,
    request_hash: str,
    customer_id: str,
    items: list[dict[str, Any]],
    correlation_id: str | None,
    lease_s: float,
    deduplicate: bool = True,
) -> tuple[OrderRow, bool]:
    """Create the order for `key`, or return the one that already has it (created=False).
    With `deduplicate` False (idempotency off) always create it: the key is only recorded."""
    if not deduplicate:
        row = await conn.fetchrow(
            f"""INSERT INTO orders (order_id, idempotency_key, deduplicated, request_hash, customer_id,
                                    requested_items, status, correlation_id, lease_token, lease_until)
                VALUES (gen_random_uuid(), $1, false, $2, $3, $4, 'pending', $5, gen_random_uuid(),
                        now() + make_interval(secs => $6))
                RETURNING {_COLUMNS}""",
            key,
            request_hash,
            customer_id,
            items,
            correlation_id,
            lease_s,
        )
        assert row is not None  # an INSERT without ON CONFLICT returns its row
        return OrderRow(**row), True
    for _ in range(3):
        row = await conn.fetchrow(
            f"""INSERT INTO orders (order_id, idempotency_key, request_hash, customer_id, requested_items,
                                    status, correlation_id, lease_token, lease_until)
                VALUES (gen_random_uuid(), $1, $2, $3, $4, 'pending', $5, gen_random_uuid(),
                        now() + make_interval(secs => $6))
                ON CONFLICT (idempotency_key) WHERE deduplicated DO NOTHING RETURNING {_COLUMNS}""",
            key,
            request_hash,
            customer_id,
            items,
            correlation_id,
            lease_s,
        )
        if row is not None:
            return OrderRow(**row), True
        existing = await conn.fetchrow(
            f"SELECT {_COLUMNS} FROM orders WHERE idempotency_key = $1 AND deduplicated", key
        )
        if existing is not None:
            return OrderRow(**existing), False
        # The order that held the key was withdrawn (`forget`) between the two statements:
        # the key is free again, so try again to place this one.
    raise DependencyUnavailable(f"Idempotency-Key {key!r} is busy; retry with it", retry_after_s=1)


async def claim(conn: Connection, order_id: str, lease_s: float) -> OrderRow | None:
    """Take over a pending order whose lease has run out (its owner crashed or gave up)."""
    return _row(
        await conn.fetchrow(
            f"""UPDATE orders SET lease_token = gen_random_uuid(), lease_until = now() + make_interval(secs => $2),
                              attempts = attempts + 1, updated_at = now()
            WHERE order_id = $1 AND status = 'pending' AND lease_until < now() RETURNING {_COLUMNS}""",
            order_id,
            lease_s,
        )
    )


async def renew_lease(conn: Connection, order: OrderRow, lease_s: float) -> bool:
    """Extend the lease of a saga still running (its heartbeat). False when this caller
    no longer holds it: the order was finished, withdrawn, or claimed by someone else."""
    renewed = await conn.fetchval(
        """UPDATE orders SET lease_until = now() + make_interval(secs => $3), updated_at = now()
           WHERE order_id = $1 AND status = 'pending' AND lease_token = $2 RETURNING true""",
        order.order_id,
        order.lease_token,
        lease_s,
    )
    return bool(renewed)


async def expired_pending(conn: Connection, limit: int) -> list[str]:
    rows = await conn.fetch(
        """SELECT order_id::text FROM orders WHERE status = 'pending' AND lease_until < now()
           ORDER BY lease_until LIMIT $1""",
        limit,
    )
    return [r["order_id"] for r in rows]


async def give_up_lease(conn: Connection, order: OrderRow) -> None:
    """Stop owning the order now, so a client retry or the sweeper resumes it at once.
    The token goes with the lease: a heartbeat that beats after this cannot renew it."""
    await conn.execute(
        """UPDATE orders SET lease_until = now(), lease_token = NULL, updated_at = now()
           WHERE order_id = $1 AND lease_token = $2""",
        order.order_id,
        order.lease_token,
    )


async def forget(conn: Connection, order: OrderRow) -> None:
    """Delete an order that nothing was ever sent for, so its key can start afresh."""
    await conn.execute(
        "DELETE FROM orders WHERE order_id = $1 AND status = 'pending' AND lease_token = $2",
        order.order_id,
        order.lease_token,
    )


def final_events(order: OrderRow, *, status: str, total_cents: int | None, void_charge: bool) -> list[Event]:
    """What a finished order announces: `order.<status>` to notifications and, with
    `void_charge`, the compensation for a charge whose outcome is unknown: a `charge.void`
    to payments."""
    events = [
        Event(
            type=f"order.{status}",
            order_id=order.order_id,
            correlation_id=order.correlation_id,
            payload={
                "order_id": order.order_id,
                "status": status,
                "customer_id": order.customer_id,
                "total_cents": total_cents,
            },
        )
    ]
    if void_charge:
        events.append(
            Event(
                type="charge.void",
                order_id=order.order_id,
                correlation_id=order.correlation_id,
                payload={"order_id": order.order_id, "idempotency_key": order.idempotency_key},
                destination="payments",
            )
        )
    return events


# The unit of work as one statement (one round trip, one implicit transaction): the
# fenced UPDATE, and the events inserted only when it found the order.
_FINISH = f"""WITH done AS (
        UPDATE orders SET status = $3, response_status = $4, response_body = $5, items = $6,
                          total_cents = $7, lease_token = NULL, lease_until = NULL, updated_at = now()
        WHERE order_id = $1 AND status = 'pending' AND lease_token = $2 RETURNING true
    ), events AS ({insert_events(8, only_if="EXISTS (SELECT FROM done)")})
    SELECT EXISTS (SELECT FROM done)"""


async def finish(
    conn: Connection,
    order: OrderRow,
    *,
    status: str,
    http_status: int,
    body: dict[str, Any],
    items: list[dict[str, Any]] | None,
    total_cents: int | None,
    void_charge: bool = False,
    outbox: bool = True,
) -> bool:
    """The unit of work: the final status, the stored answer and the outbox events
    (`final_events`) are written together or not at all. False when this caller no
    longer holds the lease. With `outbox` False (the pattern off) no event is written:
    the caller sends them itself once this returns."""
    events = final_events(order, status=status, total_cents=total_cents, void_charge=void_charge) if outbox else []
    done = await conn.fetchval(
        _FINISH,
        order.order_id,
        order.lease_token,
        status,
        http_status,
        body,
        items,
        total_cents,
        *event_arrays(events),
    )
    if not done:
        return False
    orders_total.labels(status).inc()
    return True


async def get(conn: Connection, order_id: str) -> OrderRow | None:
    try:
        uuid.UUID(order_id)
    except ValueError:
        return None
    return _row(await conn.fetchrow(f"SELECT {_COLUMNS} FROM orders WHERE order_id = $1::uuid", order_id))


async def recent(conn: Connection, *, limit: int, status: str | None) -> list[OrderRow]:
    rows = await conn.fetch(
        f"""SELECT {_COLUMNS} FROM orders WHERE ($2::text IS NULL OR status = $2)
            ORDER BY created_at DESC LIMIT $1""",
        limit,
        status,
    )
    return [OrderRow(**r) for r in rows]
