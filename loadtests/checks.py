"""What a correct answer from the gateway looks like, one check per kind of call.

A check takes an answer (anything with `status_code`, `headers` and `content`, such as a
locust response) and returns None when it keeps the contract, else what is wrong, in
words without ids so that locust's failure table groups them. No locust import here: the
checks are plain functions that tests call directly.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from typing import Any, Protocol


class Answer(Protocol):
    status_code: int
    content: bytes | None

    @property
    def headers(self) -> Any: ...


Check = Callable[[Answer], "str | None"]

COME_BACK_LATER = (429, 503)
# The final answers to POST /orders, and the order status each one carries.
ORDER_OUTCOMES = {201: "confirmed", 402: "payment_failed", 409: "out_of_stock"}


def body_of(resp: Answer) -> Any:
    try:
        return json.loads(resp.content or b"null")
    except ValueError:
        return None


def describe(resp: Answer) -> str:
    """`503 dependency_unavailable`, `500`, or the connection error: for failure messages."""
    if resp.status_code == 0:
        return f"no answer ({type(getattr(resp, 'error', None)).__name__})"
    body = body_of(resp)
    error = body.get("error") if isinstance(body, dict) else None
    code = error.get("code") if isinstance(error, dict) else None
    return f"{resp.status_code} {code}" if isinstance(code, str) else str(resp.status_code)


def retry_after_s(resp: Answer, max_s: float) -> float | None:
    """How long to wait before coming back (at most `max_s`), when the answer is a 429/503
    that says so."""
    if resp.status_code not in COME_BACK_LATER or resp.headers is None:
        return None
    raw = resp.headers.get("Retry-After")
    try:
        return min(max(float(raw), 0.0), max_s)
    except (TypeError, ValueError):
        return None  # 429/503 without a usable Retry-After breaks the contract: judged by check


def come_back_in_s(told_s: float, jitter_s: float, draw: Callable[[], float] = random.random) -> float:
    """How long a client turned away waits: what it was told, plus up to `jitter_s` more at
    random. `Retry-After` counts whole seconds, so the clients a burst turned away in the
    same instant are all told the same wait; without jitter they come back in the same
    instant, a burst again, and queue at the gateway (the SRE book: randomise backoff)."""
    return told_s + jitter_s * draw()


def order_answer(resp: Answer) -> str | None:
    """A final answer to POST /orders: 201/402/409 with the order, its status matching."""
    if resp.status_code not in ORDER_OUTCOMES:
        return f"unexpected {describe(resp)}"
    body = body_of(resp)
    if not isinstance(body, dict) or "error" in body:
        return f"unexpected {describe(resp)}"
    if not body.get("order_id"):
        return f"{resp.status_code} without an order"
    if body.get("status") != ORDER_OUTCOMES[resp.status_code]:
        return f"{resp.status_code} with order status {body.get('status')!r}"
    return None


def replay_of(first: Answer) -> Check:
    """A repeat with the same key and body: the first answer again, marked replayed."""
    first_body = body_of(first)

    def check(resp: Answer) -> str | None:
        if problem := order_answer(resp):
            return problem
        if resp.headers.get("Idempotency-Replayed") != "true":
            return "repeat with the same key not marked Idempotency-Replayed"
        if resp.status_code != first.status_code or body_of(resp) != first_body:
            return "repeat with the same key answered differently"
        return None

    return check


class SameAnswer:
    """The answers to many requests with one key: every final answer must be the same
    order (status and body), and at most one may be a fresh, not replayed, answer.

    Each answer is compared with the first final one when it arrives; under gevent the
    comparison cannot be interleaved, so "each equals the first" means "all are equal".
    """

    def __init__(self) -> None:
        self.first: tuple[int, Any] | None = None
        self.fresh = 0

    def check(self, resp: Answer) -> str | None:
        if problem := order_answer(resp):
            return problem
        if resp.headers.get("Idempotency-Replayed") != "true":
            self.fresh += 1
            if self.fresh > 1:
                return "one key created more than one answer (two not replayed)"
        answer = (resp.status_code, body_of(resp))
        if self.first is None:
            self.first = answer
            return None
        if answer[1].get("order_id") != self.first[1].get("order_id"):
            return "one key, two different order_ids"
        if answer != self.first:
            return "one key, divergent answers"
        return None


def order_read(order_id: str, status: str | None) -> Check:
    def check(resp: Answer) -> str | None:
        if resp.status_code != 200:
            return f"unexpected {describe(resp)}"
        body = body_of(resp)
        if not isinstance(body, dict) or body.get("order_id") != order_id:
            return "read another order than asked"
        if status is not None and body.get("status") != status:
            return f"placed as {status!r}, read back as {body.get('status')!r}"
        return None

    return check


def order_list(resp: Answer) -> str | None:
    if resp.status_code != 200:
        return f"unexpected {describe(resp)}"
    body = body_of(resp)
    if not isinstance(body, dict) or not isinstance(body.get("orders"), list):
        return "list without orders"
    return None


# --- what a failure means for a drill ---------------------------------------------------
#
# Every message above, and api.send's "gave up: ..." (turned away with Retry-After twice),
# falls in one of two classes; chaos/drills/load.py reads locust's failure table with
# `classify`. A contract violation fails a drill. The stack turning a client away while a
# fault is on (no answer in time, a 502/503/504, or come-back-later twice) is the
# incident's expected effect: counted and reported. A message not recognised here is a
# violation, so a new check fails drills until it is given a class here on purpose.

EXPECTED = "expected"
VIOLATION = "violation"

GAVE_UP = "gave up: "  # loadtests/api.py: a 429/503 with Retry-After, again after waiting
UNEXPECTED = "unexpected "  # f"unexpected {describe(resp)}"
NO_ANSWER = "no answer ("  # describe() of status 0: a timeout, a refused or dropped connection
# Final answers that say "cannot answer now": a fault's effect, not a broken promise.
UNAVAILABLE_STATUSES = (502, 503, 504)


def classify(message: str) -> str:
    """EXPECTED or VIOLATION for one failure message of these checks.

    Violations: a 500 (or any 4xx, or a 429/503 contract broken), one key with two orders
    (SameAnswer), a repeat answered differently or not marked replayed (replay_of), an
    order read back with another status (order_read), a final answer without its order.
    """
    if message.startswith(GAVE_UP):
        return EXPECTED
    if message.startswith(UNEXPECTED):
        what = message[len(UNEXPECTED) :]
        if what.startswith(NO_ANSWER):
            return EXPECTED
        status = what.split(" ", 1)[0]
        if status.isdigit() and int(status) in UNAVAILABLE_STATUSES:
            return EXPECTED
    return VIOLATION
