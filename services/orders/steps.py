"""The saga's calls to inventory and payments, each turned into a plain outcome.

`Unsure` means the call may or may not have taken effect (a timeout, a 5xx, a reset):
the saga must not guess, only repeat the idempotent call later or compensate.
"""

from __future__ import annotations

from typing import Any

from services.common.web.errors import DownstreamError
from services.common.web.http import Downstream, Reply


class Unsure(Exception):
    """The downstream's answer is unknown; `sent` is False when nothing left this process."""

    def __init__(self, downstream: str, reason: str, sent: bool, retry_after_s: float | None = None):
        super().__init__(reason)
        self.downstream, self.reason, self.sent, self.retry_after_s = downstream, reason, sent, retry_after_s


async def _call(
    downstream: Downstream,
    method: str,
    path: str,
    *,
    budget_s: float,
    json: Any = None,
    headers: dict[str, str] | None = None,
) -> Reply:
    try:
        return await downstream.request(method, path, json=json, headers=headers, retryable=True, budget_s=budget_s)
    except DownstreamError as exc:
        raise Unsure(downstream.name, exc.message, exc.sent, exc.retry_after_s) from exc


def _expect(reply: Reply, downstream: Downstream, *ok: int) -> Reply:
    if reply.status not in ok:
        raise Unsure(downstream.name, f"{downstream.name} answered {reply.status}", True)
    return reply


async def reserve(
    inventory: Downstream, order_id: str, items: list[dict[str, Any]], budget_s: float
) -> tuple[int, dict[str, Any]]:
    """(201, reservation) | (409, rejected reservation) | (422, error body)."""
    reply = _expect(
        await _call(inventory, "POST", "/reservations", budget_s=budget_s, json={"order_id": order_id, "items": items}),
        inventory,
        201,
        409,
        422,
    )
    return reply.status, reply.json()


async def charge(
    payments: Downstream, *, key: str, order_id: str, customer_id: str, amount_cents: int, budget_s: float
) -> str:
    """'succeeded' | 'declined' | 'voided' (every one of them a definite answer)."""
    reply = _expect(
        await _call(
            payments,
            "POST",
            "/charges",
            budget_s=budget_s,
            headers={"Idempotency-Key": key},
            json={"order_id": order_id, "customer_id": customer_id, "amount_cents": amount_cents},
        ),
        payments,
        201,
        402,
        409,
    )
    status = reply.json().get("status")
    if status not in ("succeeded", "declined", "voided"):
        raise Unsure(payments.name, f"payments answered {reply.status} without a charge status", True)
    return status


async def commit(inventory: Downstream, order_id: str, budget_s: float) -> None:
    _expect(await _call(inventory, "POST", f"/reservations/{order_id}/commit", budget_s=budget_s), inventory, 200)


async def release(inventory: Downstream, order_id: str, budget_s: float) -> None:
    _expect(await _call(inventory, "POST", f"/reservations/{order_id}/release", budget_s=budget_s), inventory, 200)
