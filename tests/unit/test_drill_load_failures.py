"""locust's failures, as a drill judges them: every message of loadtests/checks.py has a
class (contract violation, or the incident's expected effect), and the failure table
locust writes with `--csv` is read back by message and count.

No locust import: it would let gevent monkey-patch the test session.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from chaos.drills.load import read_failures
from loadtests import checks
from loadtests.checks import EXPECTED, VIOLATION, classify


@dataclass
class Answer:
    status_code: int
    body: object = None
    headers: dict[str, str] = field(default_factory=dict)
    error: Exception | None = None

    @property
    def content(self) -> bytes | None:
        return None if self.body is None else json.dumps(self.body).encode()


ORDER = {"order_id": "o-1", "status": "confirmed"}


def error(status: int, code: str) -> Answer:
    return Answer(status, {"error": {"code": code, "message": "..."}})


def storm_second_fresh() -> str | None:
    same = checks.SameAnswer()
    same.check(Answer(201, ORDER))
    return same.check(Answer(201, ORDER))


def storm_two_orders() -> str | None:
    same = checks.SameAnswer()
    same.check(Answer(201, ORDER))
    return same.check(Answer(201, {"order_id": "o-2", "status": "confirmed"}, {"Idempotency-Replayed": "true"}))


def storm_divergent() -> str | None:
    same = checks.SameAnswer()
    same.check(Answer(201, ORDER))
    return same.check(Answer(201, {**ORDER, "total_cents": 1}, {"Idempotency-Replayed": "true"}))


VIOLATIONS = {
    "a 500": lambda: checks.order_answer(error(500, "internal_error")),
    "a 500 without a body": lambda: checks.order_answer(Answer(500)),
    "a reused key refused": lambda: checks.order_answer(error(409, "idempotency_key_reused")),
    "a 429 without Retry-After": lambda: checks.order_answer(error(429, "rate_limited")),
    "a final answer without its order": lambda: checks.order_answer(Answer(201, {"status": "confirmed"})),
    "a final answer with another status": lambda: checks.order_answer(
        Answer(201, {"order_id": "o-1", "status": "pending"})
    ),
    "a repeat not marked replayed": lambda: checks.replay_of(Answer(201, ORDER))(Answer(201, ORDER)),
    "a repeat answered differently": lambda: checks.replay_of(Answer(201, ORDER))(
        Answer(402, {"order_id": "o-1", "status": "payment_failed"}, {"Idempotency-Replayed": "true"})
    ),
    "one key, two fresh answers": storm_second_fresh,
    "one key, two orders": storm_two_orders,
    "one key, divergent answers": storm_divergent,
    "an order read back with another status": lambda: checks.order_read("o-1", "confirmed")(
        Answer(200, {"order_id": "o-1", "status": "pending"})
    ),
    "another order read": lambda: checks.order_read("o-1", None)(Answer(200, {"order_id": "o-2"})),
    "a placed order not found": lambda: checks.order_read("o-1", None)(error(404, "order_not_found")),
    "a list without orders": lambda: checks.order_list(Answer(200, {})),
    "a message nobody classified": lambda: "something new went wrong",
}

EXPECTED_EFFECTS = {
    "no answer in time": lambda: checks.order_answer(Answer(0, error=TimeoutError())),
    "a 503 with no Retry-After": lambda: checks.order_answer(error(503, "database_unavailable")),
    "a 504 past the deadline": lambda: checks.order_read("o-1", None)(error(504, "deadline_exceeded")),
    "a 502 in the list": lambda: checks.order_list(Answer(502)),
    # loadtests/api.py's words for a client turned away twice (429/503 with Retry-After)
    "gave up": lambda: f"gave up: {checks.describe(error(503, 'breaker_open'))} again after waiting",
}


@pytest.mark.parametrize("case", VIOLATIONS)
def test_contract_violations_fail_a_drill(case):
    message = VIOLATIONS[case]()
    assert message, f"{case}: the check passed it"
    assert classify(message) == VIOLATION, message


@pytest.mark.parametrize("case", EXPECTED_EFFECTS)
def test_the_stack_turning_clients_away_is_expected(case):
    message = EXPECTED_EFFECTS[case]()
    assert message, f"{case}: the check passed it"
    assert classify(message) == EXPECTED, message


def test_the_failure_table_is_read_by_message_and_class(tmp_path: Path):
    prefix = tmp_path / "drill-locust-0"
    with open(f"{prefix}_failures.csv", "w", newline="") as f:
        out = csv.writer(f)
        out.writerow(["Method", "Name", "Error", "Occurrences"])
        # locust writes repr(CatchResponseError(message)); quotes in the message change its quoting
        for message, count in (
            ("gave up: 503 breaker_open again after waiting as Retry-After said", 7),
            ("placed as 'confirmed', read back as 'pending'", 2),
            ("one key, two different order_ids", 1),
        ):
            out.writerow(
                [
                    "POST",
                    "POST /orders",
                    repr(RuntimeError(message)).replace("RuntimeError", "CatchResponseError"),
                    count,
                ]
            )
        out.writerow(
            [
                "GET",
                "GET /orders/{id}",
                repr(RuntimeError("placed as 'confirmed', read back as 'pending'")).replace(
                    "RuntimeError", "CatchResponseError"
                ),
                1,
            ]
        )
    found = read_failures(prefix)
    assert dict(found.expected) == {"gave up: 503 breaker_open again after waiting as Retry-After said": 7}
    assert dict(found.violations) == {
        "placed as 'confirmed', read back as 'pending'": 3,
        "one key, two different order_ids": 1,
    }
    assert found.unread == []


def test_a_missing_failure_table_is_named(tmp_path: Path):
    found = read_failures(tmp_path / "never-ran")
    assert found.unread == [str(tmp_path / "never-ran_failures.csv")]
