"""Stock rules: reserve for an order, then commit it (paid) or release it (compensation).

Every operation is idempotent per order id and serialised per order by an advisory
lock; product rows are locked in SKU order (`SELECT ... FOR UPDATE`), so two orders
never oversell and never deadlock. The rules run in the database, one function each
(migrations/v0001_baseline.sql, which lists their steps), so that an operation is
one round trip: sent from here as seven statements (a transaction), they were seven, and
the round trips were most of inventory's work per order. A function answers an outcome;
its refusals become errors here. A change of a rule is a change of that migration
(`CREATE OR REPLACE`; a changed signature needs a `DROP FUNCTION` first).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import asyncpg

from services.common.data.db import Connection
from services.common.web.errors import BadInput, Conflict, NotFound


@dataclass(frozen=True)
class Reservation:
    order_id: str
    status: str
    items: list[dict[str, Any]]
    total_cents: int

    def as_dict(self) -> dict[str, Any]:
        return {"order_id": self.order_id, "status": self.status, "items": self.items, "total_cents": self.total_cents}


def _reservation(order_id: str, row: asyncpg.Record) -> Reservation:
    return Reservation(order_id, row["res_status"], row["res_items"], row["res_total_cents"])


async def reserve(
    conn: Connection, order_id: str, items: list[dict[str, Any]], *, hold_locks_s: float = 0.0
) -> Reservation:
    """Take stock for every item or none; a repeat returns the first answer.

    `hold_locks_s` keeps the product row locks that long (the lock-contention fault).
    """
    row = await conn.fetchrow(
        "SELECT * FROM stock_reserve($1, $2::text[], $3::integer[], $4)",
        order_id,
        [i["sku"] for i in items],
        [i["quantity"] for i in items],
        float(hold_locks_s),
    )
    assert row is not None
    if row["outcome"] == "unknown_sku":
        raise BadInput(f"unknown SKU: {row['detail']}", code="unknown_sku")
    return _reservation(order_id, row)


async def release(conn: Connection, order_id: str) -> Reservation:
    """Give the stock back. With no reservation yet, leave a tombstone so a late
    reserve for this order cannot take stock after the order has given up."""
    row = await conn.fetchrow("SELECT * FROM stock_settle($1, false)", order_id)
    assert row is not None
    if row["outcome"] == "committed":
        raise Conflict("reservation_committed", f"order {order_id} is paid: its stock cannot be released")
    return _reservation(order_id, row)


async def commit(conn: Connection, order_id: str) -> Reservation:
    """Turn reserved stock into sold stock, once the order is paid."""
    row = await conn.fetchrow("SELECT * FROM stock_settle($1, true)", order_id)
    assert row is not None
    if row["outcome"] == "not_found":
        raise NotFound(f"no reservation for order {order_id}")
    if row["outcome"] == "not_active":
        raise Conflict(
            "reservation_not_active", f"order {order_id}'s reservation is {row['res_status']}: nothing to commit"
        )
    return _reservation(order_id, row)


async def get_reservation(conn: Connection, order_id: str) -> Reservation:
    row = await conn.fetchrow(
        "SELECT order_id, status, items, total_cents FROM reservations WHERE order_id = $1", order_id
    )
    if row is None:
        raise NotFound(f"no reservation for order {order_id}")
    return Reservation(**row)


async def product(conn: Connection, sku: str) -> dict[str, Any]:
    row = await conn.fetchrow(
        """SELECT sku, name, unit_price_cents, available, reserved, committed FROM products
           WHERE sku = $1""",
        sku,
    )
    if row is None:
        raise NotFound(f"unknown SKU {sku}")
    return dict(row)


async def products(conn: Connection) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT sku, name, unit_price_cents, available, reserved, committed FROM products ORDER BY sku"
    )
    return [dict(r) for r in rows]
