"""The order flow of docs/architecture.md through all five real services, and every error path."""

from __future__ import annotations

import pytest

from tests.support.api import charges_for, events_for, new_key, order_body, place_order, stock_of
from tests.support.stack import assert_verify_clean, wait_until


def test_happy_path_confirms_charges_commits_and_notifies(stack, gateway, client):
    before = stock_of(client, stack, "SKU-002")
    resp = place_order(client, gateway, "SKU-002", 3, headers={"X-Correlation-ID": "cid-happy-1"})

    assert resp.status_code == 201, resp.text
    order = resp.json()
    assert order["status"] == "confirmed"
    assert order["items"] == [{"sku": "SKU-002", "quantity": 3, "unit_price_cents": 499}]
    assert order["total_cents"] == 3 * 499
    assert order["correlation_id"] == "cid-happy-1"
    assert resp.headers["X-Correlation-ID"] == "cid-happy-1"
    assert "Idempotency-Replayed" not in resp.headers

    fetched = client.get(f"{gateway}/orders/{order['order_id']}")
    assert fetched.status_code == 200 and fetched.json() == order

    charges = charges_for(client, stack, order["order_id"])
    assert [(c["status"], c["amount_cents"]) for c in charges] == [("succeeded", 1497)]
    after = stock_of(client, stack, "SKU-002")
    assert after["available"] == before["available"] - 3
    assert after["committed"] == before["committed"] + 3

    events = wait_until(
        lambda: events_for(client, stack, order["order_id"]), timeout_s=10, message="order event delivered"
    )
    assert [(e["type"], e["correlation_id"]) for e in events] == [("order.confirmed", "cid-happy-1")]


def test_gateway_creates_a_correlation_id_when_missing(gateway, client):
    resp = place_order(client, gateway)
    assert resp.status_code == 201
    assert resp.headers["X-Correlation-ID"]
    assert resp.json()["correlation_id"] == resp.headers["X-Correlation-ID"]


def test_repeat_with_same_key_replays_the_first_answer(stack, gateway, client):
    key = new_key()
    first = place_order(client, gateway, "SKU-003", 1, key=key)
    again = place_order(client, gateway, "SKU-003", 1, key=key)

    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["Idempotency-Replayed"] == "true"
    assert len(charges_for(client, stack, first.json()["order_id"])) == 1


def test_same_key_with_another_body_is_refused(gateway, client):
    key = new_key()
    assert place_order(client, gateway, "SKU-003", 1, key=key).status_code == 201
    resp = place_order(client, gateway, "SKU-003", 2, key=key)
    assert resp.status_code == 409
    assert resp.json()["error"]["code"] == "idempotency_key_reused"
    assert "different body" in resp.json()["error"]["message"]


def test_out_of_stock_takes_nothing(stack, gateway, client):
    before = stock_of(client, stack, "SKU-LIMITED")
    resp = place_order(client, gateway, "SKU-LIMITED", before["available"] + 1)
    assert resp.status_code == 409
    assert resp.json()["status"] == "out_of_stock"
    assert stock_of(client, stack, "SKU-LIMITED") == before
    assert charges_for(client, stack, resp.json()["order_id"]) == []


def test_declined_payment_releases_the_reservation(stack, gateway, client):
    before = stock_of(client, stack, "SKU-010")
    resp = place_order(client, gateway, "SKU-010", 60)  # 60 x 99.99 is over the charge limit

    assert resp.status_code == 402
    order = resp.json()
    assert order["status"] == "payment_failed"
    assert stock_of(client, stack, "SKU-010") == before
    assert [c["status"] for c in charges_for(client, stack, order["order_id"])] == ["declined"]


def test_unknown_sku_is_a_clear_422(gateway, client):
    resp = place_order(client, gateway, "SKU-NOPE", 1)
    assert resp.status_code == 422
    assert resp.json()["error"] == {"code": "unknown_sku", "message": "unknown SKU: SKU-NOPE"}


BAD_BODIES = {
    "missing customer": {"items": [{"sku": "SKU-001", "quantity": 1}]},
    "missing items": {"customer_id": "c-1"},
    "empty items": {"customer_id": "c-1", "items": []},
    "zero quantity": order_body(quantity=0),
    "negative quantity": order_body(quantity=-2),
    "huge quantity": order_body(quantity=1001),
    "quantity as string": {"customer_id": "c-1", "items": [{"sku": "SKU-001", "quantity": "2"}]},
    "quantity as float": {"customer_id": "c-1", "items": [{"sku": "SKU-001", "quantity": 1.5}]},
    "items not a list": {"customer_id": "c-1", "items": "SKU-001"},
    "client sends a price": {"customer_id": "c-1", "items": [{"sku": "SKU-001", "quantity": 1, "unit_price_cents": 1}]},
    "sku with spaces": order_body(sku="SKU 001"),
    "body is a list": [1, 2],
}


@pytest.mark.parametrize("body", BAD_BODIES.values(), ids=BAD_BODIES.keys())
def test_bad_bodies_get_a_clear_422(gateway, client, body):
    resp = client.post(f"{gateway}/orders", json=body, headers={"Idempotency-Key": new_key()})
    assert resp.status_code == 422, resp.text
    error = resp.json()["error"]
    assert error["code"] == "invalid_request" and error["message"]


def test_body_that_is_not_json(gateway, client):
    resp = client.post(
        f"{gateway}/orders",
        content=b"{not json",
        headers={"Idempotency-Key": new_key(), "Content-Type": "application/json"},
    )
    assert resp.status_code == 422
    assert "not valid JSON" in resp.json()["error"]["message"]


@pytest.mark.parametrize(
    "key, code",
    [
        (None, "idempotency_key_missing"),
        ("x" * 129, "idempotency_key_invalid"),
        ("has space", "idempotency_key_invalid"),
    ],
)
def test_idempotency_key_is_required_and_checked(gateway, client, key, code):
    headers = {} if key is None else {"Idempotency-Key": key}
    resp = client.post(f"{gateway}/orders", json=order_body(), headers=headers)
    assert resp.status_code == 422
    assert resp.json()["error"]["code"] == code


def test_oversized_body_is_refused_with_413(gateway, client):
    body = order_body()
    body["customer_id"] = "c" * 100_000
    resp = client.post(f"{gateway}/orders", json=body, headers={"Idempotency-Key": new_key()})
    assert resp.status_code == 413
    assert resp.json()["error"]["code"] == "body_too_large"


def test_oversized_chunked_body_is_refused_with_413(gateway, client):
    def chunks():
        yield b'{"customer_id": "'
        for _ in range(100):
            yield b"c" * 1024
        yield b'", "items": []}'

    resp = client.post(
        f"{gateway}/orders",
        content=chunks(),
        headers={"Idempotency-Key": new_key(), "Content-Type": "application/json"},
    )
    assert resp.status_code == 413


def test_reads_and_their_errors(gateway, client):
    assert client.get(f"{gateway}/orders/not-a-uuid").status_code == 404
    missing = client.get(f"{gateway}/orders/00000000-0000-0000-0000-000000000000")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    assert client.get(f"{gateway}/orders", params={"limit": 0}).status_code == 422
    place_order(client, gateway, "SKU-004", 1)
    listed = client.get(f"{gateway}/orders", params={"limit": 5, "status": "confirmed"})
    assert listed.status_code == 200
    assert listed.json()["orders"] and all(o["status"] == "confirmed" for o in listed.json()["orders"])


def test_every_service_reports_health_and_metrics(stack, client):
    for service in ("gateway", "orders", "payments", "inventory", "notifications"):
        health = client.get(f"{stack.url(service)}/health")
        assert health.status_code == 200 and health.json() == {"status": "ok"}, service
        metrics = client.get(f"{stack.url(service)}/metrics")
        assert "http_requests_total" in metrics.text, service


def test_invariants_hold_after_the_flow(stack):
    assert_verify_clean(stack)
