"""Off means off, on a real stack run without idempotency keys and without the outbox
(`PATTERNS` of `chaoslab compare`'s set E): a retried order is taken twice, a retried
charge is charged twice, and an order's event goes to notifications once, straight
from orders, so with notifications down it is lost and no outbox row keeps it."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator

import asyncpg
import httpx
import pytest

from chaos import supervision
from chaos.layout import StackLayout
from tests.support.api import charges_for, events_for, new_key, order_body, place_order
from tests.support.chaos import metric
from tests.support.stack import start_stack, stop_stack, wait_until

pytestmark = pytest.mark.stack

WITHOUT_IDEMPOTENCY_AND_OUTBOX = "retries,timeouts,breakers,bulkheads,shedding"


@pytest.fixture(scope="module")
def bare() -> Iterator[StackLayout]:
    layout = start_stack(env={"PATTERNS": WITHOUT_IDEMPOTENCY_AND_OUTBOX})
    try:
        yield layout
    finally:
        stop_stack(layout)


def _sql(layout: StackLayout, query: str, *args: object) -> list[tuple]:
    async def run() -> list[tuple]:
        conn = await asyncpg.connect(layout.database_url, timeout=10)
        try:
            return [tuple(r) for r in await conn.fetch(query, *args)]
        finally:
            await conn.close()

    return asyncio.run(run())


def test_the_services_run_the_patterns_they_were_given(bare, client):
    view = client.get(f"{bare.url('gateway')}/status/breakers").json()
    assert {tuple(b["patterns"]) for b in view["breakers"]} == {("retries", "timeouts", "breakers", "bulkheads")}
    assert not _sql(bare, "SELECT 1 FROM orders.outbox_events")


def test_the_same_key_twice_places_two_orders_and_charges_twice(bare, client):
    key, body = new_key(), order_body("SKU-002", 1, customer="c-twice")
    first = place_order(client, bare.url("gateway"), key=key, body=body)
    again = place_order(client, bare.url("gateway"), key=key, body=body)
    assert first.status_code == again.status_code == 201, (first.text, again.text)
    assert "Idempotency-Replayed" not in again.headers
    assert first.json()["order_id"] != again.json()["order_id"]
    rows = _sql(bare, "SELECT order_id::text, status FROM orders.orders WHERE idempotency_key = $1", key)
    assert sorted(rows) == sorted((r.json()["order_id"], "confirmed") for r in (first, again))
    for answer in (first, again):  # each order its own charge: the customer paid twice
        [charge] = charges_for(client, bare, answer.json()["order_id"])
        assert charge["status"] == "succeeded"


def test_a_retried_charge_is_charged_again(bare, client):
    key, order_id = new_key(), f"order-{uuid.uuid4()}"
    body = {"order_id": order_id, "customer_id": "c-twice", "amount_cents": 1234}
    answers = [
        client.post(f"{bare.url('payments')}/charges", json=body, headers={"Idempotency-Key": key}) for _ in range(2)
    ]
    assert [a.status_code for a in answers] == [201, 201]
    assert [c["status"] for c in charges_for(client, bare, order_id)] == ["succeeded", "succeeded"]
    _sql(bare, "DELETE FROM payments.charges WHERE order_id = $1", order_id)  # no order: the test's own data


def test_an_event_goes_straight_to_notifications_and_is_lost_while_it_is_down(bare, client):
    gateway, notifications = bare.url("gateway"), bare.url("notifications")
    sent = place_order(client, gateway, "SKU-003", 1)
    assert sent.status_code == 201, sent.text
    # Delivered before the answer: orders sent it itself, with no relay in between.
    [event] = events_for(client, bare, sent.json()["order_id"])
    assert event["type"] == "order.confirmed"

    lost_before = metric(client, bare.url("orders"), "events_sent_directly_total", outcome="lost")
    sup = supervision.Supervisor(bare)
    sup.stop("notifications")
    try:
        lost = place_order(client, gateway, "SKU-003", 1)
        assert lost.status_code == 201, lost.text  # the order itself is not held up
    finally:
        sup.start("notifications")
    wait_until(lambda: _healthy(client, notifications), timeout_s=30, message="notifications back")
    order_id = lost.json()["order_id"]
    assert metric(client, bare.url("orders"), "events_sent_directly_total", outcome="lost") == lost_before + 1
    # Nothing keeps it for later: no outbox row, no relay, so it never arrives. (An event
    # that was to come would have come by now: the one above came before its answer.)
    assert not _sql(bare, "SELECT 1 FROM orders.outbox_events WHERE order_id = $1", order_id)
    assert events_for(client, bare, order_id) == []
    [(announced,)] = _sql(
        bare,
        """SELECT count(*) FROM orders.orders o
           WHERE o.status = 'confirmed' AND o.order_id = $1::uuid
             AND NOT EXISTS (SELECT 1 FROM notifications.inbox i WHERE i.order_id = o.order_id::text)""",
        order_id,
    )
    assert announced == 1  # what `chaoslab compare` counts as an event lost


def _healthy(client: httpx.Client, url: str) -> bool:
    try:
        return client.get(f"{url}/health").status_code == 200
    except httpx.HTTPError:
        return False
