"""Talk to the stack in the domain's words: place_order, get_order, stock_of, charges_for."""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

import httpx

from chaos.layout import StackLayout

# The service credential of the test stacks (tests/support/stack.py), as a caller of an
# internal endpoint (inventory, payments, notifications, orders) shows it.
SERVICE_TOKEN = "test-service-token"
SERVICE_HEADERS = {"Authorization": f"Bearer {SERVICE_TOKEN}", "X-Service-Name": "tests"}


def new_key() -> str:
    return f"test-{uuid.uuid4()}"


def order_body(sku: str = "SKU-001", quantity: int = 1, customer: str = "c-1") -> dict[str, Any]:
    return {"customer_id": customer, "items": [{"sku": sku, "quantity": quantity}]}


def place_order(
    client: httpx.Client,
    gateway: str,
    sku: str = "SKU-001",
    quantity: int = 1,
    *,
    key: str | None = None,
    body: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    return client.post(
        f"{gateway}/orders",
        json=body or order_body(sku, quantity),
        headers={"Idempotency-Key": key or new_key(), **(headers or {})},
    )


def stock_of(client: httpx.Client, layout: StackLayout, sku: str) -> dict[str, Any]:
    resp = client.get(f"{layout.url('inventory')}/inventory/{sku}", headers=SERVICE_HEADERS)
    resp.raise_for_status()
    return resp.json()


def charges_for(client: httpx.Client, layout: StackLayout, order_id: str) -> list[dict[str, Any]]:
    resp = client.get(f"{layout.url('payments')}/charges", params={"order_id": order_id}, headers=SERVICE_HEADERS)
    resp.raise_for_status()
    return resp.json()["charges"]


def events_for(client: httpx.Client, layout: StackLayout, order_id: str) -> list[dict[str, Any]]:
    resp = client.get(f"{layout.url('notifications')}/events", params={"order_id": order_id}, headers=SERVICE_HEADERS)
    resp.raise_for_status()
    return resp.json()["events"]


def place_until_final(
    client: httpx.Client, gateway: str, key: str, *, body: dict[str, Any], timeout_s: float = 30
) -> httpx.Response:
    """Retry one order with its key, waiting as `Retry-After` says, until an answer
    that is not 429/5xx (or the deadline)."""
    deadline = time.monotonic() + timeout_s
    while True:
        resp = place_order(client, gateway, key=key, body=body)
        if (resp.status_code < 500 and resp.status_code != 429) or time.monotonic() > deadline:
            return resp
        time.sleep(min(float(resp.headers.get("Retry-After", "1")), max(0.0, deadline - time.monotonic())))


class OrderStream:
    """Clients placing orders until stopped; each result is (key, HTTP status, 0 when the
    request failed), and the keys without a final answer are kept for a retry."""

    def __init__(self, gateway: str, workers: int = 6, sku: str = "SKU-006") -> None:
        self.gateway, self.workers, self.sku = gateway, workers, sku
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
                    status = place_order(client, self.gateway, self.sku, 1, key=key).status_code
                except httpx.HTTPError:
                    status = 0
                with self._lock:
                    self.results.append((key, status))
                    if status not in (201, 402, 409):
                        self.unfinished.append(key)
                if status not in (201, 402, 409):
                    self.stop.wait(0.25)  # a client backs off after a failure rather than spinning

    def count(self) -> int:
        with self._lock:
            return len(self.results)

    def latest(self, n: int) -> list[int]:
        with self._lock:
            return [status for _, status in self.results[-n:]]

    def wait_for(self, more: int, timeout_s: float = 30) -> None:
        from tests.support.stack import wait_until

        target = self.count() + more
        wait_until(lambda: self.count() >= target, timeout_s=timeout_s, message=f"{more} more orders")
