"""What a restore lost, from what clients were told: the client ledger (chaos/ledger.py)
against the restored database.

An order a client was given a final answer for (201, 402, 409 with an order) that the
database does not hold was lost: those orders are the restore's RPO in orders. Its RPO
in seconds is the span of answers lost: from the last answer the database still holds
before the first lost one, to the last lost one. Each lost order is a promise to follow
up by hand (the customer, the card processor's record of a charge payments forgot).
"""

from __future__ import annotations

import asyncio
import glob
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import asyncpg

from chaos import ledger as client_ledger


@dataclass(frozen=True)
class LostOrder:
    order_id: str
    key: str
    told: int  # the HTTP status the client got
    order_status: str | None
    total_cents: int | None
    answered_at: float


@dataclass
class Reconciliation:
    answered: int  # orders (ids) the ledger has a final answer for
    lost: list[LostOrder]
    rpo_s: float  # the span of answers lost (0 when none was)

    def as_dict(self) -> dict:
        return {"answered": self.answered, "rpo_orders": len(self.lost), "rpo_s": self.rpo_s} | {
            "lost": [asdict(item) for item in self.lost]
        }


def ledger_files(pattern: str) -> list[Path]:
    """The files of a ledger named as CHAOSLAB_LEDGER names it (`{pid}`: one file per
    process) or by a glob."""
    return sorted(Path(p) for p in glob.glob(pattern.replace("{pid}", "*")))


def reconcile(ledger: client_ledger.Ledger, held: set[str]) -> Reconciliation:
    """The ledger's final answers against the order ids the database holds (`held`)."""
    first: dict[str, client_ledger.Entry] = {}
    for entry in ledger.entries:  # in time order
        if entry.final and entry.order_id:
            first.setdefault(entry.order_id, entry)
    lost = [
        LostOrder(e.order_id or "", e.key, e.status, e.order_status, e.total_cents, e.t)
        for oid, e in first.items()
        if oid not in held
    ]
    rpo_s = 0.0
    if lost:
        start = lost[0].answered_at
        kept = [e.t for oid, e in first.items() if oid in held and e.t <= start]
        rpo_s = round(lost[-1].answered_at - (max(kept) if kept else start), 1)
    return Reconciliation(len(first), lost, rpo_s)


async def held_orders(database_url: str, order_ids: Sequence[str]) -> set[str]:
    conn = await asyncpg.connect(database_url, timeout=10)
    try:
        rows = await conn.fetch(
            "SELECT order_id::text FROM orders.orders WHERE order_id::text = ANY($1::text[])", list(order_ids)
        )
        return {r[0] for r in rows}
    finally:
        await conn.close()


def against_database(database_url: str, ledger: client_ledger.Ledger) -> Reconciliation:
    return reconcile(ledger, asyncio.run(held_orders(database_url, client_ledger.order_ids(ledger))))
