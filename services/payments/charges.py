"""Charges, idempotent by key: a key is charged at most once, whatever the retries.

A charge over the customer's limit is declined (a business answer, not an error). A
void refunds a charge, or, when the charge never arrived, leaves a tombstone so that a
late retry of it is refused: the caller that gave up can be sure nothing was taken.
"""

from __future__ import annotations

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
    then nothing is written, so a caller that gave up is never charged behind its back."""
    status, reason = (
        ("declined", f"amount {amount_cents} is over the limit {limit_cents}")
        if amount_cents > limit_cents
        else ("succeeded", None)
    )
    async with conn.transaction():
        existing = await conn.fetchrow(f"SELECT {_COLUMNS} FROM charges WHERE idempotency_key = $1 FOR UPDATE", key)
        if existing is None:
            if not still_wanted():
                raise DeadlineExceeded("the caller's deadline passed before the charge was made")
            row = await conn.fetchrow(
                f"""INSERT INTO charges (idempotency_key, order_id, customer_id, amount_cents, status, reason)
                    VALUES ($1, $2, $3, $4, $5, $6)
                    ON CONFLICT (idempotency_key) DO NOTHING RETURNING {_COLUMNS}""",
                key,
                order_id,
                customer_id,
                amount_cents,
                status,
                reason,
            )
            if row is not None:
                return _charge(row)
            existing = await conn.fetchrow(f"SELECT {_COLUMNS} FROM charges WHERE idempotency_key = $1", key)
            # The insert lost to one that committed, and charges are never deleted: the row is there.
            assert existing is not None, f"charge {key!r} conflicted on insert but cannot be read"
        if existing["order_id"] != order_id or (
            existing["status"] != "voided" and existing["amount_cents"] != amount_cents
        ):
            raise Conflict(
                "idempotency_key_reused",
                f"idempotency key {key!r} was used for order {existing['order_id']} "
                f"with amount {existing['amount_cents']}",
            )
        return _charge(existing)


async def void(conn: Connection, *, key: str, order_id: str) -> dict[str, Any]:
    """Refund the charge under `key`, or refuse it in advance when it never arrived."""
    row = await conn.fetchrow(
        f"""INSERT INTO charges (idempotency_key, order_id, customer_id, amount_cents, status, reason)
            VALUES ($1, $2, '', 0, 'voided', 'voided before any charge arrived')
            ON CONFLICT (idempotency_key) DO UPDATE
              SET status = 'voided', reason = 'voided by the caller', updated_at = now()
              WHERE charges.order_id = EXCLUDED.order_id
            RETURNING {_COLUMNS}""",
        key,
        order_id,
    )
    if row is None:
        raise Conflict("idempotency_key_reused", f"idempotency key {key!r} belongs to another order")
    return _charge(row)


async def for_order(conn: Connection, order_id: str) -> list[dict[str, Any]]:
    rows = await conn.fetch(f"SELECT {_COLUMNS} FROM charges WHERE order_id = $1 ORDER BY created_at", order_id)
    return [_charge(r) for r in rows]
