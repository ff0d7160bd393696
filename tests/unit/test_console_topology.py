"""The console's topology from `chaoslab status` rows and the callers' /status/breakers."""

from __future__ import annotations

from chaos.console.faults import who_is
from chaos.console.topology import boxes, edge_states
from chaos.runner import ProgramStatus


def row(name: str, state: str = "RUNNING", healthy: bool | None = True, uptime: float = 30) -> ProgramStatus:
    return ProgramStatus(name, state, 1, uptime, healthy, "")


def test_a_service_gathers_its_replicas_and_shows_the_youngest_uptime() -> None:
    found = {b.name: b for b in boxes([row("payments", uptime=300), row("payments-1", uptime=12), row("orders")])}
    payments = found["payments"]
    assert (payments.name, payments.replicas, payments.running, payments.uptime_s) == ("payments", 2, 2, 12)
    assert payments.health == "ok"


def test_health_reads_down_degraded_or_unknown() -> None:
    found = {
        b.name: b.health
        for b in boxes(
            [
                row("gateway", state="STOPPED", healthy=None),
                row("orders"),
                row("orders-1", healthy=False),
                row("payments", healthy=False),
                row("redis", healthy=None),
            ]
        )
    }
    assert found == {"gateway": "down", "orders": "degraded", "payments": "down", "redis": "unknown"}


def test_an_edge_shows_its_worst_replica_breaker_and_unknown_when_the_caller_is_silent() -> None:
    orders_view = {
        "breakers": [
            {"name": "payments", "downstream": "payments", "state": "closed"},
            {"name": "payments-1", "downstream": "payments", "state": "half_open"},
            {"name": "inventory", "downstream": "inventory", "state": "open"},
        ]
    }
    states = {(e["from"], e["to"]): e["state"] for e in edge_states({"gateway": None, "orders": orders_view})}
    assert states == {
        ("gateway", "orders"): "unknown",
        ("orders", "inventory"): "open",
        ("orders", "payments"): "half_open",
        ("orders", "notifications"): "off",
    }


def test_the_audit_names_a_console_user_without_what_they_typed_around_it() -> None:
    assert who_is("alice", "127.0.0.1") == "console:alice@127.0.0.1"
    assert who_is("  ", "10.0.0.2") == "console:anonymous@10.0.0.2"
    assert who_is("eve\nkey=x<script>", "127.0.0.1") == "console:evekeyxscript@127.0.0.1"
