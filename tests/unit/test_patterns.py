"""The PATTERNS switches, each one off on its own: the setting, and what each switch
builds (or does not) outside the call policy (tests/unit/test_policy.py has the policy's)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest
from prometheus_client import REGISTRY
from pydantic import ValidationError

from services.common.data.outbox import DirectDelivery, Event, event_id_of
from services.common.resilience.adaptive import GradientLimit
from services.common.resilience.backpressure import StaticLimit
from services.common.resilience.latency_target import LatencyTargetLimit
from services.common.resilience.patterns import PATTERNS, UnknownPattern, describe_patterns, parse_patterns
from services.common.web.app import admission_limit
from services.common.web.errors import DownstreamUnreachable
from services.common.web.http import Downstream, Reply, downstream
from services.common.web.middleware import request_deadline
from services.gateway.settings import Settings as GatewaySettings
from services.orders.settings import Settings as OrdersSettings
from services.orders.store import OrderRow, final_events


@pytest.fixture(autouse=True)
def no_patterns_from_the_shell(monkeypatch):
    for name in ("PATTERNS", "RESILIENCE", "RESILIENCE_OFF_FOR", "CHAOSLAB_PROFILE", "ADMISSION", "MAX_INFLIGHT"):
        monkeypatch.delenv(name, raising=False)


def test_patterns_parse_all_none_and_lists_in_any_order():
    assert parse_patterns("all") == frozenset(PATTERNS)
    assert parse_patterns("none") == frozenset()
    assert parse_patterns(" Outbox , retries+timeouts ") == {"outbox", "retries", "timeouts"}
    assert describe_patterns(parse_patterns("outbox,retries")) == "retries,outbox"
    assert describe_patterns(frozenset(PATTERNS)) == "all" and describe_patterns(frozenset()) == "none"


@pytest.mark.parametrize("text", ["", " , ", "retries,circuit-breakers", "all,none"])
def test_an_unknown_or_empty_pattern_list_is_refused_naming_the_patterns(text):
    with pytest.raises(UnknownPattern, match="retries, timeouts, breakers, bulkheads, shedding, idempotency, outbox"):
        parse_patterns(text)


def test_the_setting_is_read_at_start_all_by_default(monkeypatch):
    assert OrdersSettings().patterns == "all" and OrdersSettings().pattern_on("outbox")
    monkeypatch.setenv("PATTERNS", "timeouts, retries")
    settings = OrdersSettings()
    assert settings.patterns == "retries,timeouts"
    assert settings.patterns_on == {"retries", "timeouts"} and not settings.pattern_on("idempotency")
    monkeypatch.setenv("PATTERNS", "retries,caching")
    with pytest.raises(ValidationError, match=r"unknown pattern.*caching"):
        OrdersSettings()


@pytest.mark.parametrize(
    ("admission", "kind"), [("static", StaticLimit), ("adaptive", GradientLimit), ("latency", LatencyTargetLimit)]
)
def test_shedding_off_leaves_the_door_without_a_limit(monkeypatch, admission, kind):
    monkeypatch.setenv("ADMISSION", admission)
    assert isinstance(admission_limit(GatewaySettings()), kind)
    monkeypatch.setenv("PATTERNS", "retries,timeouts,breakers,bulkheads,idempotency,outbox")
    assert admission_limit(GatewaySettings()) is None


class Recorded:
    """A transport that answers 200 and keeps what it was asked."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    async def send(self, downstream, method, url, *, body, headers, timeout_s) -> Reply:
        self.sent.append({"headers": headers, "timeout_s": timeout_s})
        return Reply(200, {}, b"{}")

    async def close(self) -> None:
        pass


def _call(target: Downstream) -> None:
    async def call() -> None:
        request_deadline.set(datetime.now(UTC).timestamp() + 30)  # the caller's own deadline
        await target.request("POST", "/charges", json={}, retryable=True, budget_s=2.0)

    asyncio.run(call())


def test_timeouts_off_pass_no_deadline_on_and_send_without_a_timeout(monkeypatch):
    transport = Recorded()
    _call(downstream(OrdersSettings(), "payments", "http://127.0.0.1:1", transport))
    assert "X-Request-Deadline" in transport.sent[0]["headers"]
    assert transport.sent[0]["timeout_s"] == pytest.approx(2.0, abs=0.5)  # the budget, what is left of it

    monkeypatch.setenv("PATTERNS", "retries,breakers,bulkheads,shedding,idempotency,outbox")
    transport = Recorded()
    _call(downstream(OrdersSettings(), "payments", "http://127.0.0.1:1", transport))
    assert "X-Request-Deadline" not in transport.sent[0]["headers"]
    assert transport.sent[0]["timeout_s"] is None


ORDER = OrderRow(
    order_id="0d7d8f3e-0000-4000-8000-000000000001",
    idempotency_key="key-1",
    request_hash="h",
    customer_id="c-1",
    requested_items=[{"sku": "SKU-001", "quantity": 1}],
    items=None,
    total_cents=None,
    status="pending",
    response_status=None,
    response_body=None,
    correlation_id="cid-1",
    lease_token="t",
    created_at=datetime(2024, 1, 1, tzinfo=UTC),
)


def test_a_finished_order_announces_its_status_and_a_void_when_the_charge_is_unknown():
    [event] = final_events(ORDER, status="confirmed", total_cents=1200, void_charge=False)
    assert (event.type, event.destination, event.correlation_id) == ("order.confirmed", "notifications", "cid-1")
    assert event.payload == {
        "order_id": ORDER.order_id,
        "status": "confirmed",
        "customer_id": "c-1",
        "total_cents": 1200,
    }
    announced, void = final_events(ORDER, status="payment_failed", total_cents=1200, void_charge=True)
    assert announced.type == "order.payment_failed"
    assert (void.type, void.destination) == ("charge.void", "payments")
    assert void.payload == {"order_id": ORDER.order_id, "idempotency_key": "key-1"}


def _sent(destination: str, outcome: str) -> float:
    return (
        REGISTRY.get_sample_value("events_sent_directly_total", {"destination": destination, "outcome": outcome}) or 0
    )


def test_outbox_off_sends_each_destinations_events_once_and_loses_what_fails():
    calls: dict[str, list[list[dict[str, Any]]]] = {"notifications": [], "payments": []}

    async def notifications_down(events: list[dict[str, Any]]) -> None:
        calls["notifications"].append(events)
        raise DownstreamUnreachable("notifications", "connection refused")

    async def payments(events: list[dict[str, Any]]) -> None:
        calls["payments"].append(events)

    at = datetime(2024, 1, 2, tzinfo=UTC)
    direct = DirectDelivery({"notifications": notifications_down, "payments": payments}, clock=lambda: at)
    before = {k: _sent(*k) for k in [("notifications", "lost"), ("payments", "delivered")]}
    events = final_events(ORDER, status="payment_failed", total_cents=1200, void_charge=True)
    assert asyncio.run(direct.send(events)) == 1  # never raises: the order is committed already
    assert len(calls["notifications"]) == 1 and len(calls["payments"]) == 1  # once each, no retry
    [delivered] = calls["payments"][0]
    assert delivered == {
        "event_id": event_id_of(ORDER.order_id, "charge.void"),
        "type": "charge.void",
        "order_id": ORDER.order_id,
        "correlation_id": "cid-1",
        "payload": {"order_id": ORDER.order_id, "idempotency_key": "key-1"},
        "created_at": at.isoformat(),
    }
    assert _sent("notifications", "lost") == before[("notifications", "lost")] + 1
    assert _sent("payments", "delivered") == before[("payments", "delivered")] + 1


def test_an_event_has_the_same_id_in_the_outbox_and_without_it():
    event = Event(type="order.confirmed", order_id="o-1", correlation_id=None, payload={})
    assert event.delivered_as(datetime.now(UTC))["event_id"] == event_id_of("o-1", "order.confirmed")
