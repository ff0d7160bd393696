"""Idempotency under concurrency, and crashes of real processes under a stream of orders."""
from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import httpx

from tests.support.api import charges_for, new_key, order_body, place_order, place_until_final
from tests.support.stack import assert_verify_clean, kill9, wait_restarted


def test_fifty_concurrent_identical_requests_make_one_order_and_one_charge(stack, gateway):
    key = new_key()
    body = order_body("SKU-005", 2)
    barrier = threading.Barrier(50)

    def send(_):
        with httpx.Client(timeout=30) as c:
            barrier.wait()
            return place_order(c, gateway, key=key, body=body)

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


class OrderStream:
    """Clients placing orders until stopped, each retrying its own key on failure."""

    def __init__(self, gateway: str, workers: int = 6) -> None:
        self.gateway, self.workers = gateway, workers
        self.stop = threading.Event()
        self.results: list[tuple[str, int]] = []
        self.unfinished: list[str] = []
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(workers)]

    def __enter__(self):
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for t in self._threads:
            t.join(timeout=60)

    def _run(self) -> None:
        with httpx.Client(timeout=15) as client:
            while not self.stop.is_set():
                key = new_key()
                try:
                    status = place_order(client, self.gateway, "SKU-006", 1, key=key).status_code
                except httpx.HTTPError:
                    status = 0
                with self._lock:
                    self.results.append((key, status))
                    if status not in (201, 402, 409):
                        self.unfinished.append(key)

    def count(self) -> int:
        with self._lock:
            return len(self.results)


def _wait_for_orders(stream: OrderStream, more: int, timeout_s: float = 30) -> None:
    from tests.support.stack import wait_until

    target = stream.count() + more
    wait_until(lambda: stream.count() >= target, timeout_s=timeout_s, message=f"{more} more orders")


def test_kill_notifications_mid_stream_loses_and_doubles_no_event(stack, gateway):
    with OrderStream(gateway) as stream:
        _wait_for_orders(stream, 30)
        old = kill9(stack, "notifications")
        _wait_for_orders(stream, 30)  # orders keep succeeding while notifications is gone
        wait_restarted(stack, "notifications", old)
        _wait_for_orders(stream, 30)
    confirmed = sum(1 for _, status in stream.results if status == 201)
    assert confirmed >= 80, stream.results[-10:]
    assert_verify_clean(stack)  # every event delivered, none twice


def test_kill_orders_mid_stream_then_sweeper_finishes_every_order(stack, gateway):
    with OrderStream(gateway, workers=8) as stream:
        _wait_for_orders(stream, 40)
        old = kill9(stack, "orders")
        wait_restarted(stack, "orders", old)
        _wait_for_orders(stream, 40)
    # Clients whose request died with the process retry with the same key, as told by
    # Retry-After: each gets a final answer, and still exactly one order.
    with httpx.Client(timeout=30) as client:
        for key in stream.unfinished:
            resp = place_until_final(client, gateway, key, body=order_body("SKU-006", 1))
            assert resp.status_code in (201, 402), (key, resp.status_code, resp.text)
            assert len(charges_for(client, stack, resp.json()["order_id"])) <= 1
    assert_verify_clean(stack)  # nothing left pending once the sweeper has passed
