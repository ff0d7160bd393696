"""Stock rules: reserve for an order, then commit it (paid) or release it (compensation).

Every operation is idempotent per order id and serialised per order by an advisory
lock; product rows are locked in SKU order (`SELECT ... FOR UPDATE`), so two orders
never oversell and never deadlock.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

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


async def _lock_order(conn: Connection, order_id: str) -> Reservation | None:
    await conn.execute("SELECT pg_advisory_xact_lock(hashtext('reservation:' || $1))", order_id)
    row = await conn.fetchrow(
        "SELECT order_id, status, items, total_cents FROM reservations WHERE order_id = $1", order_id
    )
    return Reservation(**row) if row else None


async def reserve(
    conn: Connection, order_id: str, items: list[dict[str, Any]], *, hold_locks_s: float = 0.0
) -> Reservation:
    """Take stock for every item or none; a repeat returns the first answer.

    `hold_locks_s` keeps the product row locks that long (the lock-contention fault).
    """
    wanted = _quantities(items)
    async with conn.transaction():
        existing = await _lock_order(conn, order_id)
        if existing:
            return existing
        rows = await conn.fetch(
            """SELECT sku, unit_price_cents, available FROM products
               WHERE sku = ANY($1::text[]) ORDER BY sku FOR UPDATE""",
            sorted(wanted),
        )
        found = {r["sku"]: r for r in rows}
        unknown = sorted(set(wanted) - set(found))
        if unknown:
            raise BadInput(f"unknown SKU: {', '.join(unknown)}", code="unknown_sku")
        if hold_locks_s > 0:
            await conn.execute("SELECT pg_sleep($1)", hold_locks_s)
        priced = [
            {"sku": i["sku"], "quantity": i["quantity"], "unit_price_cents": found[i["sku"]]["unit_price_cents"]}
            for i in items
        ]
        total = sum(i["quantity"] * i["unit_price_cents"] for i in priced)
        short = any(found[sku]["available"] < qty for sku, qty in wanted.items())
        status = "rejected" if short else "reserved"
        if not short:
            await conn.execute(
                """UPDATE products p SET available = p.available - w.qty, reserved = p.reserved + w.qty
                   FROM unnest($1::text[], $2::int[]) AS w(sku, qty) WHERE p.sku = w.sku""",
                list(wanted),
                list(wanted.values()),
            )
        await conn.execute(
            "INSERT INTO reservations (order_id, status, items, total_cents) VALUES ($1, $2, $3, $4)",
            order_id,
            status,
            priced,
            total,
        )
        return Reservation(order_id, status, priced, total)


def _quantities(items: list[dict[str, Any]]) -> Counter:
    """Units per SKU (an order may list one SKU twice)."""
    wanted: Counter = Counter()
    for item in items:
        wanted[item["sku"]] += item["quantity"]
    return wanted


async def _settle(conn: Connection, reservation: Reservation, status: str, stock_change: str) -> Reservation:
    """Move a reserved order's stock (`stock_change`, a SET clause over `w.qty`) and
    give the reservation its final status; rows locked in SKU order, as in reserve."""
    wanted = _quantities(reservation.items)
    skus = sorted(wanted)
    await conn.execute("SELECT 1 FROM products WHERE sku = ANY($1::text[]) ORDER BY sku FOR UPDATE", skus)
    await conn.execute(
        f"""UPDATE products p SET {stock_change}
                           FROM unnest($1::text[], $2::int[]) AS w(sku, qty) WHERE p.sku = w.sku""",
        skus,
        [wanted[s] for s in skus],
    )
    await conn.execute(
        "UPDATE reservations SET status = $2, updated_at = now() WHERE order_id = $1", reservation.order_id, status
    )
    return Reservation(reservation.order_id, status, reservation.items, reservation.total_cents)


async def release(conn: Connection, order_id: str) -> Reservation:
    """Give the stock back. With no reservation yet, leave a tombstone so a late
    reserve for this order cannot take stock after the order has given up."""
    async with conn.transaction():
        existing = await _lock_order(conn, order_id)
        if existing is None:
            await conn.execute(
                "INSERT INTO reservations (order_id, status, items, total_cents) VALUES ($1, 'released', '[]', 0)",
                order_id,
            )
            return Reservation(order_id, "released", [], 0)
        if existing.status == "committed":
            raise Conflict("reservation_committed", f"order {order_id} is paid: its stock cannot be released")
        if existing.status != "reserved":
            return existing
        return await _settle(
            conn, existing, "released", "available = p.available + w.qty, reserved = p.reserved - w.qty"
        )


async def commit(conn: Connection, order_id: str) -> Reservation:
    """Turn reserved stock into sold stock, once the order is paid."""
    async with conn.transaction():
        existing = await _lock_order(conn, order_id)
        if existing is None:
            raise NotFound(f"no reservation for order {order_id}")
        if existing.status == "committed":
            return existing
        if existing.status != "reserved":
            raise Conflict(
                "reservation_not_active", f"order {order_id}'s reservation is {existing.status}: nothing to commit"
            )
        return await _settle(
            conn, existing, "committed", "reserved = p.reserved - w.qty, committed = p.committed + w.qty"
        )


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
