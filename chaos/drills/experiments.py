"""Chaos Toolkit experiments, one per incident, written from the incident catalogue.

Steady state: the order success rate (PromQL) and every breaker closed
(/status/breakers). Method: the faults set through `PUT /chaos/config` (or the
runbook's process commands), the alert awaited, the runbook's remediation run, the
recovery awaited. Rollbacks: `DELETE /chaos/config` on every service and the
remediation again, so nothing outlives a run. `chaoslab experiments --write`.

The probes wait up to the training profile's budgets (chaos/drills/budgets.py): the
default profile, and the longer one, so an experiment passes on a ci stack too.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from chaos.drills import budgets
from chaos.drills.catalog import INCIDENTS
from chaos.drills.model import Incident, Step
from chaos.layout import SERVICES

REPO = Path(__file__).resolve().parents[2]
DIRECTORY = REPO / "chaos" / "experiments"

CONFIGURATION = {
    "prometheus_url": {"type": "env", "key": "PROMETHEUS_URL", "default": "http://127.0.0.1:9090"},
    "gateway_url": {"type": "env", "key": "GATEWAY_URL", "default": "http://127.0.0.1:8000"},
    "alertmanager_url": {"type": "env", "key": "ALERTMANAGER_URL", "default": "http://127.0.0.1:9093"},
    "chaos_token": {"type": "env", "key": "CHAOS_TOKEN"},
    **{
        f"{s}_url": {"type": "env", "key": f"{s.upper()}_URL", "default": f"http://127.0.0.1:{8000 + i}"}
        for i, s in enumerate(SERVICES)
    },
}


def _probe(name: str, func: str, **arguments: Any) -> dict[str, Any]:
    return {
        "type": "probe",
        "name": name,
        "tolerance": True,
        "provider": {"type": "python", "module": "chaos.ctk", "func": func, "arguments": arguments},
    }


def _fault_call(service: str, method: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    provider = {
        "type": "http",
        "url": f"${{{service}_url}}/chaos/config",
        "method": method,
        "headers": {"X-Chaos-Token": "${chaos_token}", "Content-Type": "application/json"},
        "timeout": 10,
        "expected_status": 200,
    }
    if body is not None:
        provider["arguments"] = body
    return provider


def _commands(steps: tuple[Step, ...], what: str) -> list[dict[str, Any]]:
    actions = []
    for i, step in enumerate(steps, 1):
        if step.run:
            actions.append(
                {
                    "type": "action",
                    "name": f"{what} {i}: {step.run}",
                    "provider": {"type": "process", "path": "sh", "arguments": ["-c", step.run], "timeout": 180},
                }
            )
    return actions


def experiment(inc: Incident) -> dict[str, Any]:
    if inc.faults:
        inject = [
            {
                "type": "action",
                "name": f"set {fault}={value} on {service}",
                "provider": _fault_call(service, "PUT", {"fault": fault, "value": value, "ttl_s": 300}),
            }
            for service, fault, value in inc.faults
        ]
    else:
        inject = _commands(inc.inject, "inject")
    budget = budgets.of(inc, "training")
    detect = (
        _probe(f"{inc.alert} fires", "alert_fires", alert=inc.alert, timeout_s=budget.detect_s)
        if inc.detection == "prometheus"
        else _probe(
            f"{inc.alert} gone from Alertmanager (the dead man's switch)",
            "watchdog_missing",
            alert=inc.alert,
            timeout_s=budget.detect_s,
        )
    )
    remediate = _commands(inc.remediate, "remediate")
    if inc.detection == "dead-mans-switch":  # the switch armed again: Prometheus sends alerts
        remediate.append(
            _probe(f"{inc.alert} back in Alertmanager", "watchdog_armed", alert=inc.alert, timeout_s=budget.recover_s)
        )
    if inc.faults:  # the runbook's scripts, or PUT's own inverse when there are none
        remediate = remediate or [
            {"type": "action", "name": f"clear faults on {s}", "provider": _fault_call(s, "DELETE")}
            for s in {f[0] for f in inc.faults}
        ]
    return {
        "version": "1.0.0",
        "title": f"{inc.id}: {inc.title}",
        "description": f"{inc.what_happens} Generated from chaos/drills/catalog.py; see runbook.md#{inc.id}.",
        "tags": ["chaoslab", inc.id, inc.severity],
        "configuration": CONFIGURATION,
        "steady-state-hypothesis": {
            "title": "orders succeed and every breaker is closed",
            "probes": [
                _probe(
                    "order success rate at least 0.9",
                    "order_success_rate_at_least",
                    minimum=inc.steady_success,
                    timeout_s=60,
                ),
                _probe("every breaker closed", "breakers_closed", timeout_s=60),
            ],
        },
        "method": [
            *inject,
            detect,
            *remediate,
            _probe(
                "recovered within budget",
                "recovered",
                alert=inc.prometheus_alert,
                minimum=inc.steady_success,
                timeout_s=budget.recover_s,
            ),
        ],
        "rollbacks": [
            {"type": "action", "name": f"clear every fault of {s}", "provider": _fault_call(s, "DELETE")}
            for s in SERVICES
        ],
    }


def render_all() -> dict[str, str]:
    return {
        f"{inc.id}.json": json.dumps(experiment(inc), indent=2) + "\n"
        for inc in INCIDENTS
        if not any(s.action for s in inc.inject)
    }
