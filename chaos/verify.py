"""`chaoslab verify`: the stack's invariants, checked by reading every schema directly.

No order lost, doubled or stuck; no double charge; no charge behind a failed order;
stock conserved; every outbox event delivered exactly once. The whole chain agrees: an
order's items and total are its reservation's and its charge's, and the event
notifications received says what the order says. Anything younger than the grace
period is still in flight and is not judged.

Every check reads one snapshot (one repeatable-read transaction), so no check sees a
write another one missed. Each fault is named by one check where possible: a check
leaves to its neighbour what the neighbour already judges (said in its description).

With a client ledger (`chaos/ledger.py`), the answers the load generator received are
held against the same snapshot: an answer given is a promise the stack must keep.

Published outbox events are deleted once older than the relay's retention window
(`OutboxRelay.purge`). `outbox_delivered` judges the events still there; what a purged
event promised is judged from the receiving side, which keeps everything:
`final_orders_announced` (each finished order has exactly one event in notifications'
inbox), `inbox_matches_orders` (that event says what the order says) and
`failed_not_charged` (a void's effect: no failed order keeps a successful charge).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from dataclasses import dataclass, field

import asyncpg

from chaos import ledger as client_ledger
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


@dataclass
class Report:
    """One snapshot's verdict: the checks, orders by status and, with a ledger, its counts."""

    checks: list[Check]
    counts: dict[str, int]
    ledger: client_ledger.Summary | None = None

    @property
    def failed(self) -> list[Check]:
        return [c for c in self.checks if not c.ok]


_GRACE = "make_interval(secs => $1)"

# Per order and SKU: units, and the distinct unit prices where the items carry them.
_ITEMS_BY_SKU = """
    SELECT {owner}.order_id::text AS order_id, i->>'sku' AS sku, sum((i->>'quantity')::bigint) AS qty,
           array_agg(DISTINCT (i->>'unit_price_cents')::bigint ORDER BY (i->>'unit_price_cents')::bigint)
               FILTER (WHERE i->>'unit_price_cents' IS NOT NULL) AS prices,
           sum((i->>'quantity')::bigint * (i->>'unit_price_cents')::bigint) AS amount
    FROM {source}
    CROSS JOIN LATERAL jsonb_array_elements(
        CASE WHEN jsonb_typeof({owner}.items) = 'array' THEN {owner}.items ELSE '[]' END) i
    WHERE {where}
    GROUP BY 1, 2"""
_ORDER_ITEMS = _ITEMS_BY_SKU.format(owner="o", source="orders.orders o", where="o.status <> 'pending'")
_RESERVED_ITEMS = _ITEMS_BY_SKU.format(
    owner="r",
    source="inventory.reservations r JOIN orders.orders ro ON ro.order_id::text = r.order_id",
    where="ro.status <> 'pending'",
)

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
        f"""
        SELECT o.order_id::text || ' is ' || o.status || ' but charge ' || c.idempotency_key || ' succeeded'
        FROM orders.orders o JOIN payments.charges c ON c.order_id = o.order_id::text
        WHERE o.status IN ('payment_failed', 'out_of_stock', 'rejected') AND c.status = 'succeeded'
          AND o.updated_at < now() - {_GRACE}""",
    ),
    (
        "charges_have_orders",
        "every successful charge belongs to an order that exists (one behind a failed order is failed_not_charged's)",
        f"""
        SELECT 'charge ' || c.idempotency_key || ' for order ' || c.order_id
               || ' (' || coalesce(o.status, 'missing') || ')'
        FROM payments.charges c LEFT JOIN orders.orders o ON o.order_id::text = c.order_id
        WHERE c.status = 'succeeded'
          AND (o.status IS NULL
               OR o.status NOT IN ('confirmed', 'pending', 'payment_failed', 'out_of_stock', 'rejected'))
          AND c.created_at < now() - {_GRACE}""",
    ),
    (
        "failed_charges_not_confirmed",
        "every declined or voided charge belongs to an order that exists and did not end confirmed",
        f"""
        SELECT 'charge ' || c.idempotency_key || ' is ' || c.status || ' but order ' || c.order_id
               || ' is ' || coalesce(o.status, 'missing')
        FROM payments.charges c LEFT JOIN orders.orders o ON o.order_id::text = c.order_id
        WHERE c.status IN ('declined', 'voided')
          AND (o.status = 'confirmed' OR (o.order_id IS NULL AND c.created_at < now() - {_GRACE}))""",
    ),
    (
        "charge_amounts_match",
        "every charge made is for its order's customer, and a declined or voided one for its order's total "
        "(a void that arrived before any charge holds no amount; a successful charge's amount is "
        "confirmed_charged_once's)",
        """
        SELECT 'charge ' || c.idempotency_key || ' (' || c.status || ') for order ' || c.order_id || ': amount '
               || c.amount_cents || ', customer ' || c.customer_id || '; the order ('
               || o.status || ') totals ' || coalesce(o.total_cents::text, 'nothing')
               || ', customer ' || o.customer_id
        FROM payments.charges c JOIN orders.orders o ON o.order_id::text = c.order_id
        WHERE NOT (c.status = 'voided' AND c.customer_id = '')  -- a void's tombstone: no charge was made
          AND (c.customer_id <> o.customer_id
               OR (c.status IN ('declined', 'voided') AND o.status <> 'pending'
                   AND c.amount_cents IS DISTINCT FROM o.total_cents))""",
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
        "order_items_match_reservation",
        "a finished order's items and total are its reservation's (units per SKU, unit prices where both "
        "have them), and the reservation's total is its items' quantity x unit price",
        f"""
        WITH oi AS ({_ORDER_ITEMS}),
        ri AS ({_RESERVED_ITEMS}),
        diff AS (
            SELECT coalesce(oi.order_id, ri.order_id) AS order_id,
                   coalesce(oi.sku, ri.sku) || ' ' || coalesce(oi.qty::text, 'none') || ' unit(s) at '
                   || coalesce(array_to_string(oi.prices, '/'), '?') || ' in the order, '
                   || coalesce(ri.qty::text, 'none') || ' at ' || coalesce(array_to_string(ri.prices, '/'), '?')
                   || ' reserved' AS line
            FROM oi FULL JOIN ri ON ri.order_id = oi.order_id AND ri.sku = oi.sku
            WHERE oi.qty IS DISTINCT FROM ri.qty
               OR (oi.prices IS NOT NULL AND ri.prices IS NOT NULL AND oi.prices <> ri.prices)),
        diffs AS (SELECT order_id, string_agg(line, '; ' ORDER BY line) AS lines FROM diff GROUP BY 1),
        priced AS (SELECT order_id, sum(amount) AS amount FROM ri GROUP BY 1)
        SELECT o.order_id::text || ' (' || o.status || '): total ' || coalesce(o.total_cents::text, 'none')
               || ', reservation (' || r.status || ') total ' || r.total_cents
               || ' for items worth ' || coalesce(p.amount, 0)
               || coalesce('; ' || d.lines, '')
        FROM orders.orders o JOIN inventory.reservations r ON r.order_id = o.order_id::text
        LEFT JOIN diffs d ON d.order_id = r.order_id
        LEFT JOIN priced p ON p.order_id = r.order_id
        WHERE o.status <> 'pending'
          AND (d.order_id IS NOT NULL OR o.total_cents IS DISTINCT FROM r.total_cents
               OR r.total_cents <> coalesce(p.amount, 0))""",
    ),
    (
        "no_orphan_reservations",
        "no stock is held for an order that does not exist",
        f"""
        SELECT 'reservation for ' || r.order_id || ' is ' || r.status || ' with no order'
        FROM inventory.reservations r LEFT JOIN orders.orders o ON o.order_id::text = r.order_id
        WHERE o.order_id IS NULL AND r.status IN ('reserved', 'committed')
          AND r.created_at < now() - {_GRACE}""",
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
        f"""
        SELECT o.order_id::text || ' pending since ' || o.created_at
        FROM orders.orders o
        WHERE o.status = 'pending' AND o.created_at < now() - {_GRACE}""",
    ),
    (
        "outbox_delivered",
        "every outbox event still in the outbox reached its destination (notifications' inbox, payments' "
        "voids); events purged after delivery are judged from the inbox and the charges",
        f"""
        SELECT e.event_id::text || ' (' || e.type || ' to ' || e.destination || ', order ' || e.order_id || ') '
               || CASE WHEN e.published_at IS NULL THEN 'not delivered after ' || e.attempts || ' attempt(s)'
                       ELSE 'marked delivered but not found there' END
        FROM orders.outbox_events e
        LEFT JOIN notifications.inbox i ON e.destination = 'notifications' AND i.event_id = e.event_id
        LEFT JOIN payments.charges c ON e.destination = 'payments' AND c.order_id = e.order_id
                                     AND c.status = 'voided'
        WHERE i.event_id IS NULL AND c.idempotency_key IS NULL
          AND e.created_at < now() - {_GRACE}""",
    ),
    (
        "no_dead_letters",
        "no outbox event was given up on: each one the relay moved to the dead letters (its destination "
        "refused it) was never delivered",
        """
        SELECT d.event_id::text || ' (' || d.type || ' to ' || d.destination || ', order ' || d.order_id || ') '
               || 'dead-lettered after ' || d.attempts || ' attempt(s): ' || coalesce(d.last_error, 'no error kept')
        FROM orders.outbox_dead_letters d
        ORDER BY d.dead_lettered_at""",
    ),
    (
        "final_orders_announced",
        "every finished order's event reached notifications exactly once",
        f"""
        SELECT o.order_id::text || ' is ' || o.status || ': ' || count(i.*) || ' event(s) in the inbox'
        FROM orders.orders o LEFT JOIN notifications.inbox i ON i.order_id = o.order_id::text
        WHERE o.status <> 'pending' AND o.updated_at < now() - {_GRACE}
        GROUP BY o.order_id, o.status HAVING count(i.*) <> 1""",
    ),
    (
        "inbox_matches_orders",
        "each event in notifications says what its order says: type order.<status>, and the payload's "
        "order, status, customer and total (and the correlation id) are the order's",
        """
        SELECT i.event_id::text || ' (' || i.type || ') for order ' || i.order_id || ' says status '
               || coalesce(i.payload->>'status', 'none') || ', total ' || coalesce(i.payload->>'total_cents', 'none')
               || ', customer ' || coalesce(i.payload->>'customer_id', 'none')
               || '; the order is ' || o.status || ', total ' || coalesce(o.total_cents::text, 'none')
               || ', customer ' || o.customer_id
        FROM notifications.inbox i JOIN orders.orders o ON o.order_id::text = i.order_id
        WHERE i.type IS DISTINCT FROM 'order.' || o.status
           OR i.payload->>'status' IS DISTINCT FROM o.status
           OR i.payload->>'order_id' IS DISTINCT FROM i.order_id
           OR i.payload->>'customer_id' IS DISTINCT FROM o.customer_id
           OR nullif(i.payload->'total_cents', 'null'::jsonb) IS DISTINCT FROM to_jsonb(o.total_cents)
           OR i.correlation_id IS DISTINCT FROM o.correlation_id""",
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


async def snapshot(
    database_url: str,
    grace_s: float,
    *,
    ledger: client_ledger.Ledger | None = None,
    examples: int = 5,
) -> Report:
    """Every check (and, with a ledger, the ledger checks) in one repeatable-read snapshot."""
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
            summary = None
            if ledger is not None:
                facts = await _order_facts(conn, client_ledger.order_ids(ledger))
                found = client_ledger.judge(ledger, facts)
                for name, description in client_ledger.LEDGER_CHECKS.items():
                    results.append(Check(name, description, len(found[name]), found[name][:examples]))
                summary = client_ledger.summarise(ledger)
        return Report(results, counts, summary)
    finally:
        await conn.close()


async def _order_facts(conn: asyncpg.Connection, order_ids: list[str]) -> dict[str, client_ledger.OrderFacts]:
    rows = await conn.fetch(
        """SELECT order_id::text AS order_id, idempotency_key, status, total_cents FROM orders.orders
           WHERE order_id::text = ANY($1::text[])""",
        order_ids,
    )
    return {
        r["order_id"]: client_ledger.OrderFacts(r["order_id"], r["idempotency_key"], r["status"], r["total_cents"])
        for r in rows
    }


async def run_checks(database_url: str, grace_s: float, examples: int = 5) -> tuple[list[Check], dict]:
    report = await snapshot(database_url, grace_s, examples=examples)
    return report.checks, report.counts


def verify(database_url: str, grace_s: float) -> tuple[list[Check], dict]:
    return asyncio.run(run_checks(database_url, grace_s))


def verify_report(database_url: str, grace_s: float, ledger_files: Sequence[str | os.PathLike[str]] = ()) -> Report:
    """`verify`, plus the ledger checks when ledger files are given (read before the snapshot)."""
    ledger = client_ledger.read(ledger_files) if ledger_files else None
    return asyncio.run(snapshot(database_url, grace_s, ledger=ledger))


def default_grace_s(profile: str) -> float:
    """Long enough for a crashed order's lease to expire and the sweeper to pass twice."""
    scale = PROFILE_DEFAULTS[profile]
    return scale["order_lease_s"] + 2 * scale["sweeper_interval_s"] + 5
