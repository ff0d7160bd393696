"""Text that PostgreSQL cannot store (the NUL character) is bad input, answered 422 by
every service, never a 500: in JSON bodies, in query strings and in paths."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import httpx
import pytest

from chaos.layout import SERVICES

NUL = "a\u0000b"


def assert_refused_as_bad_input(answer: httpx.Response) -> None:
    assert answer.status_code in (404, 422), f"{answer.request.method} {answer.request.url}: {answer.text}"
    assert answer.json()["error"]["code"] in ("invalid_request", "not_found"), answer.text


@pytest.mark.stack
def test_json_bodies_with_nul_are_refused(stack, client):
    notifications = stack.url("notifications")
    event = {
        "event_id": str(uuid.uuid4()),
        "type": "order.confirmed",
        "order_id": "o-1",
        "payload": {"note": NUL},
        "created_at": datetime.now(UTC).isoformat(),
    }
    assert_refused_as_bad_input(client.post(f"{notifications}/events", json={"events": [event]}))
    assert_refused_as_bad_input(client.post(f"{notifications}/events", json={"events": [{**event, "type": NUL}]}))
    alert = {"status": "firing", "labels": {"alertname": NUL}, "annotations": {}}
    assert_refused_as_bad_input(client.post(f"{notifications}/alerts", json={"alerts": [alert]}))
    alert = {"status": "firing", "labels": {"alertname": "X"}, "annotations": {"summary": NUL}}
    assert_refused_as_bad_input(client.post(f"{notifications}/alerts", json={"alerts": [alert]}))


@pytest.mark.stack
def test_every_text_parameter_of_every_service_refuses_nul(stack, client):
    """Walk each service's OpenAPI: every string path or query parameter gets a NUL."""
    tried = 0
    for service in SERVICES:
        base = stack.url(service)
        spec = client.get(f"{base}/openapi.json").json()
        for path, operations in spec["paths"].items():
            for method, operation in operations.items():
                if method != "get":
                    continue  # the bodies of writes are covered above and by their own tests
                params = operation.get("parameters", [])
                for param in params:
                    if param.get("schema", {}).get("type") != "string" and "anyOf" not in param.get("schema", {}):
                        continue
                    url = path
                    query = {}
                    for other in params:
                        value = NUL if other is param else "x"
                        if other["in"] == "path":
                            url = url.replace("{" + other["name"] + "}", value.replace("\u0000", "%00"))
                        elif other is param:
                            query[other["name"]] = value
                    answer = client.get(base + url, params=query)
                    assert answer.status_code != 500, f"{service} GET {url} {query!r}: {answer.text}"
                    tried += 1
    assert tried >= 5  # the walk reached the services' text parameters
