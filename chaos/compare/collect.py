"""Reading one set's figures off its stack: payments' received calls (its /metrics), the
database's duplicates, double charges and lost events, and `chaoslab verify`.

The client's side (the ledger) is measure.py's; this module only reads.
"""

from __future__ import annotations

import asyncio
import time
import urllib.request
from dataclasses import asdict, dataclass, field
from typing import Any

import asyncpg

from chaos import ledger
from chaos import verify as verifier
from chaos.layout import StackLayout


def metric_sum(text: str, name: str, **labels: str) -> float:
    """The sum of the samples of metric `name` in a /metrics text that carry `labels`."""
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        head, _, value = line.rpartition(" ")
        if all(f'{k}="{v}"' in head for k, v in labels.items()):
            total += float(value)
    return total


def calls_received(text: str) -> float:
    """The POSTs payments answered (its /metrics text): every charge and every void that
    reached it, those a fault answered before any route (`unmatched`) included. (A fault
    answers before the route is known, so a failed charge and a failed void look alike:
    both are counted, as both are load on payments.)"""
    return metric_sum(text, "http_requests_total", service="payments", method="POST")


def payments_calls(layout: StackLayout) -> float:
    with urllib.request.urlopen(f"{layout.url('payments')}/metrics", timeout=5) as resp:
        return calls_received(resp.read().decode())


# Orders beyond the first for one key; successful charges beyond the first for one key
# (one order charged twice, or each of a key's duplicate orders charged); confirmed orders
# whose event is not in notifications' inbox.
HARM_SQL = {
    "duplicate_orders": """
        SELECT coalesce(sum(n - 1), 0) FROM (
            SELECT count(*) AS n FROM orders.orders GROUP BY idempotency_key HAVING count(*) > 1) d""",
    "double_charges": """
        SELECT coalesce(sum(n - 1), 0) FROM (
            SELECT count(*) AS n FROM payments.charges c JOIN orders.orders o ON o.order_id::text = c.order_id
            WHERE c.status = 'succeeded' GROUP BY o.idempotency_key HAVING count(*) > 1) d""",
    "events_lost": """
        SELECT count(*) FROM orders.orders o
        WHERE o.status = 'confirmed'
          AND NOT EXISTS (SELECT 1 FROM notifications.inbox i WHERE i.order_id = o.order_id::text)""",
}
# What is still moving: pending orders, outbox events not delivered yet.
IN_FLIGHT_SQL = """
    SELECT (SELECT count(*) FROM orders.orders WHERE status = 'pending')
         + (SELECT count(*) FROM orders.outbox_events WHERE published_at IS NULL)"""


async def _query(database_url: str, sql: str) -> int:
    conn = await asyncpg.connect(database_url, timeout=10)
    try:
        return int(await conn.fetchval(sql))
    finally:
        await conn.close()


def settle(layout: StackLayout, limit_s: float, tick=lambda: None) -> float:
    """Wait (at most `limit_s`) until no order is pending and the outbox is empty, as the
    sweeper and the relay finish what the load left; returns the seconds waited."""
    started = time.monotonic()
    while time.monotonic() - started < limit_s:
        try:
            if asyncio.run(_query(layout.database_url, IN_FLIGHT_SQL)) == 0:
                break
        except (OSError, asyncpg.PostgresError):
            pass
        tick()
        time.sleep(1.0)
    return round(time.monotonic() - started, 1)


def harm(layout: StackLayout) -> dict[str, int]:
    """Duplicate orders, double charges and events lost, from the database."""

    async def read() -> dict[str, int]:
        return {name: await _query(layout.database_url, sql) for name, sql in HARM_SQL.items()}

    return asyncio.run(read())


@dataclass
class Verdict:
    """`chaoslab verify` (with the ledger) on the settled stack: each failed check and
    how many violations it found."""

    ok: bool = False
    failed: dict[str, int] = field(default_factory=dict)
    examples: dict[str, list[str]] = field(default_factory=dict)
    orders: dict[str, int] = field(default_factory=dict)
    error: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def verify(layout: StackLayout, entries: ledger.Ledger) -> Verdict:
    try:
        report = asyncio.run(verifier.snapshot(layout.database_url, 0.0, ledger=entries, examples=3))
    except (OSError, asyncpg.PostgresError) as exc:
        return Verdict(error=f"verify could not read the database: {exc}")
    return Verdict(
        ok=not report.failed,
        failed={c.name: c.count for c in report.failed},
        examples={c.name: c.examples for c in report.failed},
        orders=report.counts,
    )
