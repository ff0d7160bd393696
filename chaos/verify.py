"""`chaoslab verify`: the stack's invariants, checked by reading every schema directly.

No order lost, doubled or stuck; no double charge; no charge behind a failed order;
stock conserved; every outbox event delivered exactly once. Anything younger than the
grace period is still in flight and is not judged.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

import asyncpg

from services.common.web.settings import PROFILE_DEFAULTS


@dataclass
class Check:
    name: str
    description: str
    count: int = 0
    examples: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.count == 0


# (name, description, SQL returning one text column per violation; $1 = grace seconds)
CHECKS: list[tuple[str, str, str]] = [
    (
        "confirmed_charged_once",
        "every confirmed order has exactly one successful charge of its total",
        """
        SELECT o.order_id::text || ': ' || count(c.*) FILTER (WHERE c.status = 'succeeded')
               || ' successful charge(s) totalling '
               || coalesce(sum(c.amount_cents) FILTER (WHERE c.status = 'succeeded'), 0)
               || ', order total ' || o.total_cents
        FROM orders.orders o LEFT JOIN payments.charges c ON c.order_id = o.order_id::text
        WHERE o.status = 'confirmed'
        GROUP BY o.order_id, o.total_cents
        HAVING count(c.*) FILTER (WHERE c.status = 'succeeded') <> 1
            OR coalesce(sum(c.amount_cents) FILTER (WHERE c.status = 'succeeded'), 0) <> o.total_cents""",
    ),
    (
        "failed_not_charged",
        "no failed order keeps a successful charge (voids delivered)",
        """
        SELECT o.order_id::text || ' is ' || o.status || ' but charge ' || c.idempotency_key || ' succeeded'
        FROM orders.orders o JOIN payments.charges c ON c.order_id = o.order_id::text
        WHERE o.status IN ('payment_failed', 'out_of_stock', 'rejected') AND c.status = 'succeeded'
          AND o.updated_at < now() - make_interval(secs => $1)""",
    ),
    (
        "charges_have_orders",
        "every successful charge belongs to a confirmed or pending order",
        """
        SELECT 'charge ' || c.idempotency_key || ' for order ' || c.order_id
               || ' (' || coalesce(o.status, 'missing') || ')'
        FROM payments.charges c LEFT JOIN orders.orders o ON o.order_id::text = c.order_id
        WHERE c.status = 'succeeded' AND (o.status IS NULL OR o.status NOT IN ('confirmed', 'pending'))
          AND c.created_at < now() - make_interval(secs => $1)""",
    ),
    (
        "reservations_match_orders",
        "each order's reservation is committed, released or absent to match its status",
        """
        SELECT o.order_id::text || ' is ' || o.status || ' but its reservation is ' || coalesce(r.status, 'missing')
        FROM orders.orders o LEFT JOIN inventory.reservations r ON r.order_id = o.order_id::text
        WHERE (o.status = 'confirmed' AND r.status IS DISTINCT FROM 'committed')
           OR (o.status = 'payment_failed' AND r.status IS DISTINCT FROM 'released')
           OR (o.status = 'out_of_stock' AND r.status IS NOT NULL AND r.status <> 'rejected')
           OR (o.status = 'rejected' AND r.status IS NOT NULL AND r.status <> 'rejected')""",
    ),
    (
        "no_orphan_reservations",
        "no stock is held for an order that does not exist",
        """
        SELECT 'reservation for ' || r.order_id || ' is ' || r.status || ' with no order'
        FROM inventory.reservations r LEFT JOIN orders.orders o ON o.order_id::text = r.order_id
        WHERE o.order_id IS NULL AND r.status IN ('reserved', 'committed')
          AND r.created_at < now() - make_interval(secs => $1)""",
    ),
    (
        "stock_conserved",
        "initial stock = available + reserved + committed, and matches the reservations",
        """
        WITH held AS (
            SELECT i->>'sku' AS sku,
                   sum((i->>'quantity')::int) FILTER (WHERE r.status = 'reserved') AS reserved,
                   sum((i->>'quantity')::int) FILTER (WHERE r.status = 'committed') AS committed
            FROM inventory.reservations r, jsonb_array_elements(r.items) i GROUP BY 1)
        SELECT p.sku || ': initial ' || p.initial || ', available ' || p.available || ', reserved '
               || p.reserved || ' (reservations ' || coalesce(h.reserved, 0) || '), committed '
               || p.committed || ' (reservations ' || coalesce(h.committed, 0) || ')'
        FROM inventory.products p LEFT JOIN held h ON h.sku = p.sku
        WHERE p.initial <> p.available + p.reserved + p.committed
           OR p.reserved <> coalesce(h.reserved, 0) OR p.committed <> coalesce(h.committed, 0)""",
    ),
    (
        "no_stuck_pending",
        "no order stays pending past the sweeper's reach",
        """
        SELECT o.order_id::text || ' pending since ' || o.created_at
        FROM orders.orders o
        WHERE o.status = 'pending' AND o.created_at < now() - make_interval(secs => $1)""",
    ),
    (
        "outbox_delivered",
        "every outbox event reached its destination (notifications' inbox, payments' voids)",
        """
        SELECT e.event_id::text || ' (' || e.type || ' to ' || e.destination || ', order ' || e.order_id || ') '
               || CASE WHEN e.published_at IS NULL THEN 'not delivered after ' || e.attempts || ' attempt(s)'
                       ELSE 'marked delivered but not found there' END
        FROM orders.outbox_events e
        LEFT JOIN notifications.inbox i ON e.destination = 'notifications' AND i.event_id = e.event_id
        LEFT JOIN payments.charges c ON e.destination = 'payments' AND c.order_id = e.order_id
                                     AND c.status = 'voided'
        WHERE i.event_id IS NULL AND c.idempotency_key IS NULL
          AND e.created_at < now() - make_interval(secs => $1)""",
    ),
    (
        "final_orders_announced",
        "every finished order's event reached notifications exactly once",
        """
        SELECT o.order_id::text || ' is ' || o.status || ': ' || count(i.*) || ' event(s) in the inbox'
        FROM orders.orders o LEFT JOIN notifications.inbox i ON i.order_id = o.order_id::text
        WHERE o.status <> 'pending' AND o.updated_at < now() - make_interval(secs => $1)
        GROUP BY o.order_id, o.status HAVING count(i.*) <> 1""",
    ),
    (
        "events_have_orders",
        "every event in notifications is for an order that exists",
        """
        SELECT i.event_id::text || ' for unknown order ' || i.order_id
        FROM notifications.inbox i LEFT JOIN orders.orders o ON o.order_id::text = i.order_id
        WHERE o.order_id IS NULL""",
    ),
]


async def run_checks(database_url: str, grace_s: float, examples: int = 5) -> tuple[list[Check], dict]:
    conn = await asyncpg.connect(database_url, timeout=10)
    try:
        results = []
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            for name, description, sql in CHECKS:
                rows = await conn.fetch(sql, *([grace_s] if "$1" in sql else []))
                results.append(Check(name, description, len(rows), [r[0] for r in rows[:examples]]))
            counts = {
                r["status"]: r["n"]
                for r in await conn.fetch("SELECT status, count(*) AS n FROM orders.orders GROUP BY status")
            }
        return results, counts
    finally:
        await conn.close()


def verify(database_url: str, grace_s: float) -> tuple[list[Check], dict]:
    return asyncio.run(run_checks(database_url, grace_s))


def default_grace_s(profile: str) -> float:
    """Long enough for a crashed order's lease to expire and the sweeper to pass twice."""
    scale = PROFILE_DEFAULTS[profile]
    return scale["order_lease_s"] + 2 * scale["sweeper_interval_s"] + 5
