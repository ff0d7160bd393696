"""Replicas in compose: `chaoslab scale --target compose` runs three payments and two
inventory containers behind their names; orders spreads its calls over every replica,
Prometheus scrapes each one, and orders keep flowing while one replica is killed.

Runs after test_compose_stack.py (file order), on the same stack; it goes back to one
container per service at the end.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator

import httpx
import pytest

from chaos.compose import ComposeStack
from tests.e2e.compose.conftest import Engine
from tests.support.api import OrderStream
from tests.support.stack import wait_until

# Starting containers is the slow part: on a busy 2-core machine a replica takes a minute.
pytestmark = pytest.mark.timeout(420)

SCALE = {"payments": 3, "inventory": 2}
# The call each replica answers for an order: a charge, a reservation.
CALLED = {"payments": "/charges", "inventory": "/reservations"}


def prometheus_vector(stack: ComposeStack, query: str) -> dict[str, float]:
    """An instant vector by instance."""
    with httpx.Client(timeout=10) as client:
        body = client.get(f"{stack.url('prometheus')}/api/v1/query", params={"query": query}).json()
    assert body["status"] == "success", body
    return {r["metric"].get("instance", ""): float(r["value"][1]) for r in body["data"]["result"]}


def calls_by_replica(stack: ComposeStack, service: str) -> dict[str, float]:
    """POSTs each replica of `service` answered, as Prometheus scraped them."""
    return prometheus_vector(
        stack,
        f'sum by (instance) (http_requests_total{{job="{service}",method="POST",route="{CALLED[service]}"}})',
    )


@pytest.fixture(scope="module")
def scaled(engine: Engine, stack: ComposeStack) -> Iterator[ComposeStack]:
    try:
        for service, count in SCALE.items():
            result = engine.chaoslab("scale", service, str(count), timeout_s=180)
            assert result.returncode == 0, result.stdout + result.stderr
        yield stack
    finally:
        for service in SCALE:
            engine.chaoslab("scale", service, "1", timeout_s=180)


def test_scale_runs_healthy_replicas_named_as_natively(engine: Engine, scaled: ComposeStack):
    rows = json.loads(engine.chaoslab("status", "--json").stdout)
    names = {row["name"] for row in rows}
    assert {"payments", "payments-1", "payments-2", "inventory", "inventory-1"} <= names, names
    assert "payments-3" not in names and "inventory-2" not in names

    refused = engine.chaoslab("scale", "gateway", "2")
    assert refused.returncode == 1 and "cannot scale 'gateway'" in refused.stderr, refused.stderr
    assert "Traceback" not in refused.stderr


@pytest.mark.alone  # a kill under load: recovery timing
def test_every_replica_is_scraped_and_takes_calls_and_orders_survive_a_killed_one(engine: Engine, scaled: ComposeStack):
    stack = scaled
    for service, count in SCALE.items():
        wait_until(
            lambda s=service, n=count: len(prometheus_vector(stack, f'up{{job="{s}"}} == 1')) == n,
            timeout_s=30,
            interval_s=0.5,
            message=f"Prometheus scraping {count} {service} replicas",
        )
    with OrderStream(stack.url("gateway"), workers=6, sku="SKU-004") as stream:
        # Callers re-resolve the names every 10 s: each new replica soon gets its share.
        for service, count in SCALE.items():
            before = calls_by_replica(stack, service)
            wait_until(
                lambda s=service, b=before, n=count: (
                    sum(1 for i, v in calls_by_replica(stack, s).items() if v > b.get(i, 0)) == n
                ),
                timeout_s=60,
                interval_s=1,
                message=f"every one of {count} {service} replicas answering calls",
            )
        assert set(stream.latest(20)) == {201}, stream.latest(20)

        killed = engine.chaoslab("kill", "payments-2")
        assert killed.returncode == 0, killed.stderr
        after_kill = stream.count()
        # Orders retries a failed charge on another replica (within its retry budget) and
        # ejects the dead one: a burst of clean refusals at most, then every order confirmed.
        wait_until(
            lambda: stream.count() > after_kill + 20 and set(stream.latest(20)) == {201},
            timeout_s=60,
            interval_s=0.5,
            message="every order confirmed again with a payments replica killed",
        )
        answers = Counter(status for _key, status in stream.results[after_kill:])
        print(f"\nanswers after killing payments-2: {dict(answers)}")
        assert set(answers) <= {201, 402, 503}, answers  # never a 500 or a dropped connection
    scaled.wait_healthy(timeout_s=120)  # the restart policy brought payments-2 back
