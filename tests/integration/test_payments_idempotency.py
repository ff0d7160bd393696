"""Payments answers a replayed charge from the stored charge, without the card processor.

The processor's capacity is a few connections per replica (services/payments/processor.py);
every authorisation is one observation of `payments_processor_wait_seconds`. A replay
(the same Idempotency-Key) must not spend any of it, and concurrent first requests with
one key must still make exactly one charge.
"""

from __future__ import annotations

import asyncio
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

import services.payments
from services.common.data.db import Database
from services.payments import charges
from services.payments.settings import Settings
from tests.support.api import SERVICE_HEADERS, charges_for, new_key
from tests.support.chaos import metric
from tests.support.stack import execute_sql

pytestmark = pytest.mark.stack


@pytest.fixture(autouse=True)
def forget_the_charges(stack):
    """These charges belong to orders that do not exist (`order-<uuid>`), which
    `chaoslab verify` rightly reports: this module's own test data, taken away after
    each test so the tests after it start from a stack that verifies clean."""
    yield
    execute_sql(stack, "DELETE FROM payments.charges WHERE order_id LIKE 'order-%'")


def _charge(client: httpx.Client, stack, key: str, order_id: str, amount_cents: int) -> httpx.Response:
    return client.post(
        f"{stack.url('payments')}/charges",
        json={"order_id": order_id, "customer_id": "c-idem", "amount_cents": amount_cents},
        headers={**SERVICE_HEADERS, "Idempotency-Key": key},
    )


def _authorisations(client: httpx.Client, stack) -> float:
    """Charges the processor has taken on (each waits for a connection once)."""
    return metric(client, stack.url("payments"), "payments_processor_wait_seconds_count")


@pytest.mark.parametrize("amount_cents, status", [(1234, 201), (600_000, 402)], ids=["succeeded", "declined"])
def test_a_replayed_charge_is_answered_without_the_processor(stack, client, amount_cents, status):
    key, order_id = new_key(), f"order-{uuid.uuid4()}"
    before = _authorisations(client, stack)
    first = _charge(client, stack, key, order_id, amount_cents)
    assert first.status_code == status, first.text
    authorised = _authorisations(client, stack)
    assert authorised == before + 1  # a new key is authorised, once

    replays = [_charge(client, stack, key, order_id, amount_cents) for _ in range(5)]
    assert [(r.status_code, r.json()) for r in replays] == [(status, first.json())] * 5
    # The same key for another amount is refused from the stored charge as well.
    reused = _charge(client, stack, key, order_id, amount_cents + 1)
    assert reused.status_code == 409 and reused.json()["error"]["code"] == "idempotency_key_reused"
    assert _authorisations(client, stack) == authorised
    assert len(charges_for(client, stack, order_id)) == 1


def test_a_charge_refused_in_advance_by_a_void_spends_no_processor_time(stack, client):
    key, order_id = new_key(), f"order-{uuid.uuid4()}"
    voided = client.post(f"{stack.url('payments')}/charges/void", json={"order_id": order_id, "idempotency_key": key})
    assert voided.status_code == 200 and voided.json()["status"] == "voided"
    before = _authorisations(client, stack)
    late = _charge(client, stack, key, order_id, 1234)
    assert late.status_code == 409 and late.json()["status"] == "voided"
    assert _authorisations(client, stack) == before


def test_concurrent_first_requests_with_one_key_make_one_charge(stack):
    key, order_id = new_key(), f"order-{uuid.uuid4()}"
    with httpx.Client(timeout=30) as client:
        before = _authorisations(client, stack)
    with ThreadPoolExecutor(8) as pool:

        def charge(_: int) -> httpx.Response:
            with httpx.Client(timeout=30) as c:
                return _charge(c, stack, key, order_id, 2500)

        answers = list(pool.map(charge, range(8)))
    assert {a.status_code for a in answers} == {201}
    assert len({a.text for a in answers}) == 1
    with httpx.Client(timeout=30) as client:
        [made] = charges_for(client, stack, order_id)
        assert (made["status"], made["amount_cents"]) == ("succeeded", 2500)
        # One replica: its concurrent duplicates wait for the first and replay it.
        assert _authorisations(client, stack) == before + 1


def test_two_first_charges_racing_on_the_database_make_one_charge(stack):
    """Across replicas nothing in process serialises a key: the insert's conflict
    handling does. Two first charges on two connections, at once: one row, one answer."""
    settings = Settings(chaoslab_profile="ci", database_url=stack.database_url)
    key, order_id = new_key(), f"order-{uuid.uuid4()}"

    async def scenario() -> list[dict]:
        db = Database.for_service(settings, Path(services.payments.__file__).parent)
        await db.start(wait_s=30)
        try:

            async def first() -> dict:
                async with db.connection() as conn:
                    return await charges.charge(
                        conn,
                        key=key,
                        order_id=order_id,
                        customer_id="c-race",
                        amount_cents=777,
                        limit_cents=settings.charge_limit_cents,
                        still_wanted=lambda: True,
                    )

            return list(await asyncio.gather(*(first() for _ in range(4))))
        finally:
            await db.close()

    answers = asyncio.run(scenario())
    assert all(a == answers[0] for a in answers) and answers[0]["status"] == "succeeded"
    with httpx.Client(timeout=30) as client:
        assert len(charges_for(client, stack, order_id)) == 1
