"""Idempotency under concurrency, and crashes of real processes under a stream of orders."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx

from tests.support.api import OrderStream, charges_for, new_key, order_body, place_order, place_until_final
from tests.support.stack import assert_verify_clean, kill9, wait_restarted


def test_fifty_concurrent_identical_requests_make_one_order_and_one_charge(stack, gateway):
    key = new_key()
    body = order_body("SKU-005", 2)
    barrier = threading.Barrier(50)

    def send(_):
        # The gateway's adaptive door may shed part of the burst (429 + Retry-After), as it
        # should once it has learnt a limit below 50: a client retries with the same key.
        with httpx.Client(timeout=30) as c:
            barrier.wait()
            deadline = time.monotonic() + 30
            while (resp := place_order(c, gateway, key=key, body=body)).status_code == 429:
                assert "Retry-After" in resp.headers and time.monotonic() < deadline, resp.text
                time.sleep(float(resp.headers["Retry-After"]))
            return resp

    with ThreadPoolExecutor(50) as pool:
        responses = list(pool.map(send, range(50)))

    assert {r.status_code for r in responses} == {201}, [r.text for r in responses if r.status_code != 201]
    bodies = {r.text for r in responses}
    assert len(bodies) == 1, bodies
    order_id = responses[0].json()["order_id"]
    assert sum(r.headers.get("Idempotency-Replayed") == "true" for r in responses) == 49
    with httpx.Client() as c:
        assert [ch["status"] for ch in charges_for(c, stack, order_id)] == ["succeeded"]
        listed = c.get(f"{gateway}/orders", params={"limit": 500}).json()["orders"]
    assert [o["order_id"] for o in listed].count(order_id) == 1
    assert_verify_clean(stack)


def test_kill_notifications_mid_stream_loses_and_doubles_no_event(stack, gateway):
    with OrderStream(gateway) as stream:
        stream.wait_for(30)
        old = kill9(stack, "notifications")
        stream.wait_for(30)  # orders keep succeeding while notifications is gone
        wait_restarted(stack, "notifications", old)
        stream.wait_for(30)
    confirmed = sum(1 for _, status in stream.results if status == 201)
    assert confirmed >= 80, stream.results[-10:]
    assert_verify_clean(stack)  # every event delivered, none twice


def test_kill_orders_mid_stream_then_sweeper_finishes_every_order(stack, gateway):
    with OrderStream(gateway, workers=8) as stream:
        stream.wait_for(40)
        old = kill9(stack, "orders")
        wait_restarted(stack, "orders", old)
        stream.wait_for(40)
    # Clients whose request died with the process retry with the same key, as told by
    # Retry-After: each gets a final answer, and still exactly one order.
    with httpx.Client(timeout=30) as client:
        for key in stream.unfinished:
            resp = place_until_final(client, gateway, key, body=order_body("SKU-006", 1))
            assert resp.status_code in (201, 402), (key, resp.status_code, resp.text)
            assert len(charges_for(client, stack, resp.json()["order_id"])) <= 1
    assert_verify_clean(stack)  # nothing left pending once the sweeper has passed
