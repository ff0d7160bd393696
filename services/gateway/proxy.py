"""What the gateway does with a request: validate it, pass it to orders, pass back the answer.

The gateway keeps no state of its own: orders owns the idempotency keys, so the
gateway's retries (same key) can never make a second order.
"""

from __future__ import annotations

from typing import Any

from fastapi.responses import Response

from services.common.web.errors import FAILED_DEPENDENCY
from services.common.web.http import Downstream, Reply

_PASSED_HEADERS = ("Idempotency-Replayed", "Retry-After", FAILED_DEPENDENCY)


def relay(reply: Reply) -> Response:
    """Orders' answer as the gateway's, with the headers a client needs."""
    headers = {h: reply.headers[h] for h in _PASSED_HEADERS if h in reply.headers}
    return Response(reply.body, status_code=reply.status, headers=headers, media_type="application/json")


async def place_order(orders: Downstream, *, key: str, body: dict[str, Any], budget_s: float) -> Response:
    reply = await orders.request(
        "POST", "/orders", json=body, headers={"Idempotency-Key": key}, retryable=True, budget_s=budget_s
    )
    return relay(reply)


async def read(orders: Downstream, path: str, budget_s: float) -> Response:
    return relay(await orders.request("GET", path, retryable=True, budget_s=budget_s))
