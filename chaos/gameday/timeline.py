"""A game's timeline: the faults, the alerts and every responder action, in time order.

Built from the game's result (chaos/gameday/master.py): the picks' inject, detection and
end, the alert transitions seen in Prometheus, the `chaos:audit` stream, the responders'
ack/diagnose/resolve and the `chaoslab` commands they ran.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Event:
    t: float
    source: str  # game, alert, audit, action, command
    text: str


def _action_text(a: dict) -> str:
    if a["action"] == "diagnose":
        return f"diagnose {a['service']}" + (f" {a['fault']}" if a.get("fault") else "")
    return a["action"]


def events(result: dict) -> list[Event]:
    found = []
    for p in result.get("picks", []):
        for key, what in (("injected_at", "injected"), ("detected_at", "detected"), ("over_at", "over")):
            if p.get(key) is not None:
                found.append(Event(p[key], "game", f"{p['incident']} {what}"))
    found += [Event(a["t"], "alert", f"{a['alert']} {a['state']}") for a in result.get("alerts", [])]
    found += [
        Event(float(e.get("at", 0)), "audit", f"{e.get('action', '')} {e.get('key', '')} {e.get('value', '')}".strip())
        for e in result.get("audit", [])
    ]
    found += [Event(a["t"], "action", f"{a['who']}: {_action_text(a)}") for a in result.get("actions", [])]
    found += [Event(c["t"], "command", f"{c['who']}: {c['command']}") for c in result.get("commands", [])]
    return sorted(found, key=lambda e: e.t)
