"""Set and clear faults on the test stack, through the services' own HTTP API."""

from __future__ import annotations

from typing import Any

import httpx

from chaos.layout import StackLayout
from tests.support.stack import wait_until


def put_fault(
    client: httpx.Client, layout: StackLayout, service: str, fault: str, value: Any, **scope: Any
) -> httpx.Response:
    resp = client.put(
        f"{layout.url(service)}/chaos/config",
        json={"fault": fault, "value": value, **scope},
        headers={"X-Chaos-Token": layout.chaos_token},
    )
    assert resp.status_code == 200, resp.text
    return resp


def clear_faults(client: httpx.Client, layout: StackLayout) -> None:
    for service in ("gateway", "orders", "payments", "inventory", "notifications"):
        resp = client.delete(f"{layout.url(service)}/chaos/config", headers={"X-Chaos-Token": layout.chaos_token})
        assert resp.status_code == 200, resp.text


def metric(client: httpx.Client, url: str, name: str, **labels: str) -> float:
    """Sum of a metric's samples (matching `labels`) on a service's /metrics."""
    total = 0.0
    for line in client.get(f"{url}/metrics").text.splitlines():
        if not line.startswith(name) or line.startswith("#"):
            continue
        head, _, value = line.rpartition(" ")
        metric_name = head.split("{")[0]
        if metric_name != name:
            continue
        if all(f'{k}="{v}"' in head for k, v in labels.items()):
            total += float(value)
    return total


def wait_breakers_closed(client: httpx.Client, layout: StackLayout, timeout_s: float = 30) -> None:
    """Drive a few orders until every breaker on the order path is closed again, so the
    next test starts from a healthy stack."""
    from tests.support.api import place_order

    def closed() -> bool:
        view = client.get(f"{layout.url('gateway')}/status/breakers").json()
        states = [b["state"] for b in view["breakers"]]
        states += [b["state"] for b in view["downstream_services"]["orders"].get("breakers", [])]
        if all(s == "closed" for s in states):
            return True
        place_order(client, layout.url("gateway"), "SKU-001", 1)
        return False

    wait_until(closed, timeout_s=timeout_s, interval_s=0.2, message="breakers closed")
