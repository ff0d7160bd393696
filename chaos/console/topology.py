"""The stack as boxes and edges: each program's health, replicas and uptime, each call
path's breaker state. Plain functions over what `chaoslab status` and the services'
`/status/breakers` answer, so that the page and the CLI show the same thing."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from chaos.layout import INFRA, SERVICES
from chaos.runner import ProgramStatus

# (caller, callee, label): the order path, and the outbox relay inside orders.
EDGES = (
    ("gateway", "orders", "orders"),
    ("orders", "inventory", "reserve"),
    ("orders", "payments", "charge"),
    ("orders", "notifications", "relay"),
)
# Worst first: an edge shows the worst state among its replicas' breakers.
STATE_ORDER = ("open", "half_open", "closed", "off")


@dataclass(frozen=True)
class Box:
    name: str
    health: str  # ok, degraded (a replica failing), down, unknown (not probed)
    replicas: int
    running: int
    uptime_s: float

    def as_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()


def boxes(rows: list[ProgramStatus]) -> list[Box]:
    """One box per service (its replicas gathered) and per piece of infrastructure."""
    found = []
    for name in (*SERVICES, *INFRA):
        mine = [r for r in rows if r.name == name or (name in SERVICES and r.name.startswith(name + "-"))]
        if not mine:
            continue
        running = [r for r in mine if r.state == "RUNNING"]
        checked = [r.healthy for r in running]
        if not running:
            health = "down"
        elif all(h is True for h in checked):
            health = "ok"
        elif not any(h is True for h in checked):
            health = "down" if False in checked else "unknown"
        else:
            health = "degraded"
        uptime = min((r.uptime_s for r in running), default=0.0)
        found.append(Box(name, health, len(mine), len(running), round(uptime, 1)))
    return found


def edge_states(views: dict[str, dict[str, Any] | None]) -> list[dict[str, Any]]:
    """Each edge's breaker state from its caller's `/status/breakers` (None: the caller
    did not answer, so the state is unknown)."""
    edges: list[dict[str, Any]] = []
    for caller, callee, label in EDGES:
        view = views.get(caller)
        if view is None:
            edges.append({"from": caller, "to": callee, "label": label, "state": "unknown", "breakers": []})
            continue
        mine = [b for b in view.get("breakers", []) if b.get("downstream") == callee]
        states = [b.get("state", "off") for b in mine]
        state = next((s for s in STATE_ORDER if s in states), "off")
        summary = [
            {k: b.get(k) for k in ("name", "state", "failure_rate", "calls", "seconds_until_half_open")} for b in mine
        ]
        edges.append({"from": caller, "to": callee, "label": label, "state": state, "breakers": summary})
    return edges
