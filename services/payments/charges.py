"""Charges, idempotent by key: a key is charged at most once, whatever the retries.

A charge over the customer's limit is declined (a business answer, not an error). A
void refunds a charge, or, when the charge never arrived, leaves a tombstone so that a
late retry of it is refused: the caller that gave up can be sure nothing was taken.

A request looks its key up first (`stored`): a key already charged, declined or voided
is answered from its row and never reaches the card processor. Only a new key is
authorised, then written by `charge`, whose insert (on conflict, nothing) settles a race
between two first requests with one key (two replicas, say): one row, and the loser
answers from it.

With the `idempotency` pattern off (PATTERNS) keys are only recorded: every request is
a new charge (`charge_again`, stored with `deduplicated` false), so a retried charge is
charged twice, and a void voids whatever the key and order were charged (`void_again`).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg

from services.common.data.db import Connection
from services.common.web.errors import Conflict, DeadlineExceeded

_COLUMNS = "idempotency_key, order_id, customer_id, amount_cents, status, reason, created_at"


def _charge(row: asyncpg.Record) -> dict[str, Any]:
    charge = dict(row)
    charge["created_at"] = charge["created_at"].isoformat()
    return charge


async def charge(
    conn: Connection,
    *,
    key: str,
    order_id: str,
    customer_id: str,
    amount_cents: int,
    limit_cents: int,
    still_wanted,
) -> dict[str, Any]:
    """Charge once per key. `still_wanted()` is false once the caller's deadline passed:
    then nothing is written, so a caller that gave up is never charged behind its back.

    The insert comes first and alone (one round trip, its own transaction): a new key,
    the usual case, is charged by it. A key it finds taken (a race lost to another
    replica, a void's tombstone) is answered from the row that holds it, as is a key
    already charged when the caller has given up meanwhile."""
    if still_wanted():
        row = await _insert(conn, key, order_id, customer_id, amount_cents, limit_cents, deduplicated=True)
        if row is not None:
            return _charge(row)
    existing = await stored(conn, key=key, order_id=order_id, amount_cents=amount_cents)
    if existing is None:  # the insert was not tried: the key is new and its caller gone
        raise DeadlineExceeded("the caller's deadline passed before the charge was made")
    return existing


async def _insert(
    conn: Connection,
    key: str,
    order_id: str,
    customer_id: str,
    amount_cents: int,
    limit_cents: int,
    *,
    deduplicated: bool,
) -> Any:
    """A new charge, declined over the customer's limit, else succeeded; None when a
    deduplicated key is taken. Only deduplicated rows hold their key unique (the partial
    index of migrations/v0001_baseline.sql): another row never conflicts."""
    status, reason = (
        ("declined", f"amount {amount_cents} is over the limit {limit_cents}")
        if amount_cents > limit_cents
        else ("succeeded", None)
    )
    return await conn.fetchrow(
        f"""INSERT INTO charges (idempotency_key, deduplicated, order_id, customer_id, amount_cents, status, reason)
            VALUES ($1, $2, $3, $4, $5, $6, $7)
            ON CONFLICT (idempotency_key) WHERE deduplicated DO NOTHING RETURNING {_COLUMNS}""",
        key,
        deduplicated,
        order_id,
        customer_id,
        amount_cents,
        status,
        reason,
    )


async def charge_again(
    conn: Connection,
    *,
    key: str,
    order_id: str,
    customer_id: str,
    amount_cents: int,
    limit_cents: int,
    still_wanted,
) -> dict[str, Any]:
    """Idempotency off: a new charge for every request, whatever its key; a retry of a
    charge is charged again. Nothing is written once the caller's deadline passed."""
    if not still_wanted():
        raise DeadlineExceeded("the caller's deadline passed before the charge was made")
    row = await _insert(conn, key, order_id, customer_id, amount_cents, limit_cents, deduplicated=False)
    assert row is not None  # a row that is not deduplicated conflicts with none
    return _charge(row)


async def stored(conn: Connection, *, key: str, order_id: str, amount_cents: int) -> dict[str, Any] | None:
    """The answer already given for `key` (a replay), or None when the key is new."""
    existing = await conn.fetchrow(f"SELECT {_COLUMNS} FROM charges WHERE idempotency_key = $1 AND deduplicated", key)
    if existing is None:
        return None
    return _answer(existing, key=key, order_id=order_id, amount_cents=amount_cents)


def _answer(existing: asyncpg.Record, *, key: str, order_id: str, amount_cents: int) -> dict[str, Any]:
    """The stored charge for a repeat of its request; 409 for the key reused by another."""
    if existing["order_id"] != order_id or (
        existing["status"] != "voided" and existing["amount_cents"] != amount_cents
    ):
        raise Conflict(
            "idempotency_key_reused",
            f"idempotency key {key!r} was used for order {existing['order_id']} with amount {existing['amount_cents']}",
        )
    return _charge(existing)


class OnePerKey:
    """Requests for one key take turns in this replica: a duplicate that arrives while
    the first is still being authorised waits for it, then finds its row and replays it,
    instead of queueing for the processor too. (Replicas do not share this; the insert's
    conflict handling keeps them to one charge.)"""

    def __init__(self) -> None:
        self._turns: dict[str, tuple[asyncio.Lock, int]] = {}

    @asynccontextmanager
    async def turn(self, key: str) -> AsyncIterator[None]:
        lock, users = self._turns.get(key, (asyncio.Lock(), 0))
        self._turns[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._turns[key]
            if users == 1:
                del self._turns[key]
            else:
                self._turns[key] = (lock, users - 1)


async def void(conn: Connection, *, key: str, order_id: str) -> dict[str, Any]:
    """Refund the charge under `key`, or refuse it in advance when it never arrived."""
    row = await conn.fetchrow(
        f"""INSERT INTO charges (idempotency_key, order_id, customer_id, amount_cents, status, reason)
            VALUES ($1, $2, '', 0, 'voided', 'voided before any charge arrived')
            ON CONFLICT (idempotency_key) WHERE deduplicated DO UPDATE
              SET status = 'voided', reason = 'voided by the caller', updated_at = now()
              WHERE charges.order_id = EXCLUDED.order_id
            RETURNING {_COLUMNS}""",
        key,
        order_id,
    )
    if row is None:
        raise Conflict("idempotency_key_reused", f"idempotency key {key!r} belongs to another order")
    return _charge(row)


async def void_again(conn: Connection, *, key: str, order_id: str) -> dict[str, Any]:
    """Idempotency off: void every charge made under `key` for `order_id` (a retried charge
    made several). With none there is nothing to void; the void is recorded all the same,
    but refuses nothing: a later charge is not looked up."""
    rows = await conn.fetch(
        f"""UPDATE charges SET status = 'voided', reason = 'voided by the caller', updated_at = now()
            WHERE idempotency_key = $1 AND order_id = $2 AND status <> 'voided' RETURNING {_COLUMNS}""",
        key,
        order_id,
    )
    if rows:
        return _charge(rows[0])
    voided = await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM charges WHERE idempotency_key = $1 AND order_id = $2 LIMIT 1", key, order_id
    )
    if voided is not None:  # voided before: the same answer
        return _charge(voided)
    row = await conn.fetchrow(
        f"""INSERT INTO charges (idempotency_key, deduplicated, order_id, customer_id, amount_cents, status, reason)
            VALUES ($1, false, $2, '', 0, 'voided', 'voided before any charge arrived') RETURNING {_COLUMNS}""",
        key,
        order_id,
    )
    assert row is not None  # an INSERT without ON CONFLICT returns its row
    return _charge(row)


async def for_order(conn: Connection, order_id: str) -> list[dict[str, Any]]:
    rows = await conn.fetch(f"SELECT {_COLUMNS} FROM charges WHERE order_id = $1 ORDER BY created_at", order_id)
    return [_charge(r) for r in rows]
