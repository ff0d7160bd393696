"""Probes for the Chaos Toolkit experiments in chaos/experiments/ (python provider).

Each reads the stack through the experiment's configuration (`prometheus_url`,
`gateway_url`) and answers a plain bool, judged by the probe's tolerance. Chaos
Toolkit 1.19 exits 0 even when a probe inside the method misses its tolerance: judge a
run by its journal (`status`, `deviated`, each probe's `tolerance_met`).
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from typing import Any

from chaos.drills.prom import Prometheus, PrometheusUnavailable
from chaos.drills.watchdog import DeadMansSwitch


def _prometheus(configuration: dict[str, Any]) -> Prometheus:
    return Prometheus(configuration["prometheus_url"])


def _poll(check, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if check():
                return True
        except PrometheusUnavailable:
            pass
        if time.monotonic() > deadline:
            return False
        time.sleep(0.5)


def order_success_rate_at_least(
    minimum: float, timeout_s: float = 30, configuration: dict[str, Any] | None = None
) -> bool:
    """The order success rate (a recording rule) reaches `minimum` within `timeout_s`."""
    prom = _prometheus(configuration or {})
    return _poll(lambda: (prom.value("order_success_rate") or 0) >= minimum, timeout_s)


def breakers_closed(timeout_s: float = 30, configuration: dict[str, Any] | None = None) -> bool:
    """Every breaker on the order path (the gateway's gathered view) is closed."""
    url = (configuration or {})["gateway_url"] + "/status/breakers"

    def closed() -> bool:
        try:
            with urllib.request.urlopen(url, timeout=3) as resp:
                view = json.load(resp)
        except (urllib.error.URLError, OSError, ValueError):
            return False
        breakers = view["breakers"] + view.get("downstream_services", {}).get("orders", {}).get("breakers", [])
        return all(b["state"] == "closed" for b in breakers)

    return _poll(closed, timeout_s)


def alert_fires(alert: str, timeout_s: float = 90, configuration: dict[str, Any] | None = None) -> bool:
    """The named alert is firing in Prometheus within `timeout_s` (the detection)."""
    prom = _prometheus(configuration or {})
    return _poll(lambda: alert in prom.firing(), timeout_s)


def watchdog_missing(alert: str, timeout_s: float = 90, configuration: dict[str, Any] | None = None) -> bool:
    """The dead man's switch: Alertmanager stops listing `alert` (Watchdog) within `timeout_s`."""
    switch = DeadMansSwitch((configuration or {})["alertmanager_url"], alert)
    return _poll(lambda: switch.armed() is False, timeout_s)


def watchdog_armed(alert: str, timeout_s: float = 90, configuration: dict[str, Any] | None = None) -> bool:
    """Alertmanager lists `alert` (Watchdog) again within `timeout_s`: Prometheus sends alerts."""
    switch = DeadMansSwitch((configuration or {})["alertmanager_url"], alert)
    return _poll(lambda: switch.armed() is True, timeout_s)


def recovered(
    alert: str | None, minimum: float, timeout_s: float = 90, configuration: dict[str, Any] | None = None
) -> bool:
    """The alert is resolved and the success rate is back to `minimum`."""
    prom = _prometheus(configuration or {})

    def over() -> bool:
        if not prom.up() or (alert and alert in prom.firing()):
            return False
        return (prom.value("order_success_rate") or 0) >= minimum

    return _poll(over, timeout_s)
