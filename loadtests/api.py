"""The gateway as a shopper uses it, over locust's FastHttpSession, in the domain's words.

Every call judges its own answer (`loadtests.checks`) and reports it to locust's stats:

- a final answer is a success when it keeps the contract (`check`), a failure otherwise;
- a 429 or 503 with `Retry-After` is the stack protecting itself, not a failure: the call
  waits as told (at most `CHAOSLAB_RETRY_AFTER_MAX_S`, 2 s), plus up to
  `CHAOSLAB_RETRY_JITTER_S` (1 s) at random, and retries once, with the same key, under
  its own name (`POST /orders [retry after 429]`), so the stats show the shed and
  unavailable rates; a retry that is turned away again is a failure (the shopper gave up);
- no answer within the user's timeout is a failure.

With `CHAOSLAB_LEDGER` set, every answer to `POST /orders` (retries and no-answers too)
is also appended to that client ledger (`chaos/ledger.py`), for `chaoslab verify --ledger`.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from typing import Any

import gevent
from locust.contrib.fasthttp import FastHttpSession, FastResponse

from chaos import ledger
from loadtests.checks import (
    Check,
    body_of,
    come_back_in_s,
    describe,
    order_answer,
    order_list,
    order_read,
    retry_after_s,
)
from loadtests.settings import UserSettings
from services.common.web.errors import FAILED_DEPENDENCY

# SKU-LIMITED (5 units) is left out on purpose: load would sell it out at once.
SKUS = tuple(f"SKU-{n:03d}" for n in range(1, 11))

SETTINGS = UserSettings.from_env()  # the users' settings, read once per locust process
# The client ledger of this process, or None (CHAOSLAB_LEDGER unset): nothing is written.
LEDGER = ledger.Writer(SETTINGS.ledger_path) if SETTINGS.ledger_path else None

Answered = Callable[[FastResponse], None]


def new_key() -> str:
    return f"locust-{uuid.uuid4()}"


def random_order(customer_id: str) -> dict[str, Any]:
    """1 to 3 distinct SKUs, 1 to 3 units each (far below the 500 000-cent decline)."""
    skus = random.sample(SKUS, k=random.randint(1, 3))
    return {"customer_id": customer_id, "items": [{"sku": sku, "quantity": random.randint(1, 3)} for sku in skus]}


def send(
    client: FastHttpSession,
    method: str,
    path: str,
    *,
    name: str,
    check: Check,
    answered: Answered | None = None,
    **kwargs: Any,
) -> FastResponse | None:
    """One request, judged by `check`, and at most one retry when told to come back later.
    `answered` sees every answer (the retry's too), before it is judged.

    Returns the final answer when it kept the contract, else None (already reported).
    """
    with client.request(method, path, name=name, catch_response=True, **kwargs) as resp:
        if answered:
            answered(resp)
        wait = retry_after_s(resp, SETTINGS.retry_after_max_s)
        problem = None if wait is not None else check(resp)
        _judge(resp, problem)
    if wait is None:
        return None if problem else resp
    gevent.sleep(come_back_in_s(wait, SETTINGS.retry_jitter_s))
    with client.request(
        method, path, name=f"{name} [retry after {resp.status_code}]", catch_response=True, **kwargs
    ) as retry:
        if answered:
            answered(retry)
        if retry_after_s(retry, SETTINGS.retry_after_max_s) is not None:
            problem = f"gave up: {describe(retry)} again after waiting as Retry-After said"
        else:
            problem = check(retry)
        _judge(retry, problem)
    return None if problem else retry


def _judge(resp, problem: str | None) -> None:
    if problem:
        resp.failure(problem)
    else:
        resp.success()


# --- the calls ------------------------------------------------------------------------------


def place_order(
    client: FastHttpSession, key: str, body: dict[str, Any], *, name: str = "POST /orders", check: Check = order_answer
) -> FastResponse | None:
    return send(
        client,
        "POST",
        "/orders",
        name=name,
        check=check,
        answered=_recorder(key),
        json=body,
        headers={"Idempotency-Key": key},
    )


def _recorder(key: str) -> Answered | None:
    """Appends each answer for `key` to the client ledger, when there is one."""
    writer = LEDGER
    if writer is None:
        return None

    def record(resp: FastResponse) -> None:
        headers = resp.headers
        replayed = headers is not None and headers.get("Idempotency-Replayed") == "true"
        meta = getattr(resp, "request_meta", None) or {}
        writer.record(
            ledger.Entry.from_answer(
                key,
                resp.status_code or 0,
                resp.content,
                replayed,
                latency_ms=meta.get("response_time"),
                retry_after=headers.get("Retry-After") if headers is not None else None,
                code=_error_code(resp),
                dependency=headers.get(FAILED_DEPENDENCY) if headers is not None else None,
            )
        )

    return record


def _error_code(resp: FastResponse) -> str | None:
    if resp.status_code in (0, 201):
        return None
    body = body_of(resp)
    error = body.get("error") if isinstance(body, dict) else None
    code = error.get("code") if isinstance(error, dict) else None
    return code if isinstance(code, str) else None


def get_order(client: FastHttpSession, order_id: str, *, status: str | None = None) -> FastResponse | None:
    return send(client, "GET", f"/orders/{order_id}", name="GET /orders/{id}", check=order_read(order_id, status))


def list_orders(client: FastHttpSession, limit: int = 10) -> FastResponse | None:
    return send(client, "GET", f"/orders?limit={limit}", name=f"GET /orders?limit={limit}", check=order_list)
