"""`chaoslab breakers`, `chaoslab alerts`, `chaoslab query`: what the runbook's
diagnosis steps look at, read from this stack whatever its ports."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Annotated

import typer
from rich.table import Table

from chaos.cli_common import RunDir, Target, console, fail, stack_of


def _get(url: str) -> dict:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return json.load(resp)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise fail(f"{url} does not answer: {exc}") from exc


def breakers(run_dir: RunDir, target: Target) -> None:
    """Every circuit breaker on the order path (the gateway's view gathers orders')."""
    layout = stack_of(run_dir, target)
    view = _get(layout.url("gateway") + "/status/breakers")
    rows = [("gateway", b) for b in view["breakers"]]
    orders = view.get("downstream_services", {}).get("orders", {})
    if "error" in orders:
        console.print(f"[yellow]orders' breakers unknown: {orders['error']['message']}[/]")
    rows += [("orders", b) for b in orders.get("breakers", [])]
    table = Table(title="circuit breakers")
    for column in ("caller", "breaker", "state", "failure %", "slow %", "calls", "half-open in", "replica ejected"):
        table.add_column(column)
    colour = {"closed": "green", "open": "red", "half_open": "yellow"}
    for caller, b in rows:
        table.add_row(
            caller,
            b["name"],
            f"[{colour.get(b['state'], 'white')}]{b['state']}[/]",
            f"{b['failure_rate']:.0f}",
            f"{b['slow_rate']:.0f}",
            str(b["calls"]),
            f"{b['seconds_until_half_open']:.1f}s",
            "yes" if b.get("ejected") else "no",
        )
    console.print(table)


def alerts(run_dir: RunDir, target: Target) -> None:
    """Alerts firing in Prometheus now, and the latest ones Alertmanager delivered."""
    layout = stack_of(run_dir, target)
    firing = _get(layout.url("prometheus") + "/api/v1/alerts")["data"]["alerts"]
    table = Table(title="alerts in Prometheus")
    for column in ("alert", "state", "severity", "summary", "runbook"):
        table.add_column(column)
    for a in firing:
        table.add_row(
            a["labels"]["alertname"],
            a["state"],
            a["labels"].get("severity", ""),
            a["annotations"].get("summary", ""),
            a["annotations"].get("runbook_url", ""),
        )
    console.print(table if firing else "No alert is pending or firing in Prometheus.")
    delivered = _get(layout.url("notifications") + "/alerts?limit=10")["alerts"]
    if delivered:
        console.print(
            "Latest delivered by Alertmanager: " + ", ".join(f"{a['alertname']} ({a['status']})" for a in delivered)
        )


def query(
    run_dir: RunDir, expr: Annotated[str, typer.Argument(help="PromQL, e.g. order_success_rate")], target: Target
) -> None:
    """Evaluate a PromQL expression against the stack's Prometheus."""
    layout = stack_of(run_dir, target)
    data = _get(layout.url("prometheus") + "/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
    result = data["data"]["result"]
    if not result:
        console.print(f"{expr}: no data")
    for series in result:
        labels = ",".join(f'{k}="{v}"' for k, v in series["metric"].items())
        console.print(f"{{{labels}}} {series['value'][1]}")


def register(app: typer.Typer) -> None:
    for command in (breakers, alerts, query):
        app.command()(command)
