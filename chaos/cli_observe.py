"""`chaoslab breakers`, `chaoslab alerts`, `chaoslab query`, `chaoslab slo`: what the
runbook's diagnosis steps look at, read from this stack whatever its ports; and
`chaoslab slo --write|--check`, the files generated from the SLO definitions."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from chaos import alertmanager_config, prometheus_config
from chaos.cli_common import RunDir, Target, console, fail, stack_of
from chaos.compose import ComposeError, ComposeStack
from chaos.slo import rules as slo_rules
from chaos.slo import spec as slo_spec

REPO = Path(__file__).resolve().parent.parent


def _get(url: str, headers: dict[str, str] | None = None) -> Any:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=5) as resp:
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
    """Alerts firing in Prometheus now, Alertmanager's notification groups (page or ticket,
    with the alerts attached to an SLO page), and the latest ones it delivered."""
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
    try:
        with urllib.request.urlopen(layout.url("alertmanager") + "/api/v2/alerts/groups", timeout=5) as resp:
            console.print(groups_table(json.load(resp)))
    except (urllib.error.URLError, OSError, ValueError) as exc:
        console.print(f"[yellow]Alertmanager does not answer ({exc}): no groups to show.[/]")
    delivered = _notifications_alerts(layout)
    if delivered:
        console.print(
            "Latest delivered by Alertmanager: "
            + ", ".join(f"{a['alertname']} ({a['status']}, {a.get('receiver') or '?'})" for a in delivered)
        )


def _notifications_alerts(layout) -> list[dict]:
    """The latest alerts notifications received; in compose it publishes no port (it may
    run replicas), so it is asked inside its container."""
    if isinstance(layout, ComposeStack):
        try:
            return layout.service_json("notifications", "/alerts?limit=10")["alerts"]  # type: ignore[index]
        except ComposeError as exc:
            raise fail(f"notifications does not answer: {exc}") from exc
    return _get(layout.url("notifications") + "/alerts?limit=10", layout.service_headers())["alerts"]


def groups_table(groups: list[dict]) -> Table | str:
    """Alertmanager's groups (GET /api/v2/alerts/groups): one row per alert, under its
    receiver and group; an inhibited alert is shown attached to the alert inhibiting it."""
    names = {a["fingerprint"]: a["labels"].get("alertname", "?") for g in groups for a in g["alerts"]}
    table = Table(title="Alertmanager's groups (one notification each)")
    for column in ("receiver", "group", "alert", "severity", "state"):
        table.add_column(column)
    for g in sorted(groups, key=lambda g: (g["receiver"]["name"], sorted(g["labels"].items()))):
        label = ", ".join(f"{k}={v}" for k, v in sorted(g["labels"].items())) or "-"
        for a in g["alerts"]:
            status = a.get("status", {})
            by = [names.get(fp, fp) for fp in status.get("inhibitedBy") or []]
            state = f"attached to {', '.join(by)}" if by else status.get("state", "")
            table.add_row(
                g["receiver"]["name"], label, a["labels"].get("alertname", "?"), a["labels"].get("severity", ""), state
            )
    return table if table.row_count else "Alertmanager holds no alert."


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


def generated() -> dict[Path, str]:
    """Every file generated from the SLO definitions (prometheus/slos.yml) and the incident
    catalogue's SLOs, with its text: the SLO rules, the compose stack's Alertmanager and
    Prometheus files (its ci rules, read from the rules on disk, included)."""
    return {
        slo_rules.PATH: slo_rules.render(),
        alertmanager_config.COMPOSE_PATH: alertmanager_config.compose_text(),
        **prometheus_config.compose_files(),
    }


def slo(
    run_dir: RunDir,
    target: Target,
    write: Annotated[bool, typer.Option("--write", help="Rewrite the files generated from the SLOs.")] = False,
    check: Annotated[bool, typer.Option("--check", help="Fail when a file generated from the SLOs is stale.")] = False,
) -> None:
    """Each SLO of prometheus/slos.yml on this stack: error budget left, burn rate per
    window, its alerts (or --write / --check the rules and configs generated from it)."""
    if write:
        console.print("Wrote " + ", ".join(str(p.relative_to(REPO)) for p in _write_generated()))
        return
    if check:
        stale = [p for p, text in generated().items() if not p.exists() or p.read_text() != text]
        if stale:
            raise fail(f"out of date: {', '.join(str(p.relative_to(REPO)) for p in stale)}; run `chaoslab slo --write`")
        console.print("The SLO rules and the Alertmanager and compose files match prometheus/slos.yml.")
        return
    layout = stack_of(run_dir, target)
    prometheus = layout.url("prometheus")
    alerts_now = _get(prometheus + "/api/v1/alerts")["data"]["alerts"]
    firing = {a["labels"]["alertname"] for a in alerts_now if a["state"] == "firing"}
    table = Table(title=f"SLOs ({layout.profile} profile): burn rate per window, 1 = on budget")
    windows = slo_spec.burn_windows()
    for column in ("SLO", "objective", "budget left", *windows, "alerts firing"):
        table.add_column(column)
    for s in slo_spec.slos():
        selector = f'{{slo="{s.name}"}}'
        left = _scalar(prometheus, f"slo:error_budget_remaining:ratio{selector}")
        burns = [_scalar(prometheus, f"{slo_rules.ratio_record(w)}{selector}") for w in windows]
        on = [name for name in (s.alert(tier) for tier in slo_spec.TIERS) if name in firing]
        table.add_row(
            s.name,
            f"{s.objective:g} % over {s.window}",
            "-" if left is None else f"{left:.1%}",
            *("-" if b is None else f"{b / s.budget:.2f}" for b in burns),
            ", ".join(on) or "none",
        )
    console.print(table)


def _write_generated() -> list[Path]:
    slo_rules.PATH.write_text(slo_rules.render())  # first: the compose copies are made from it
    files = generated()
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return list(files)


def _scalar(prometheus: str, expr: str) -> float | None:
    result = _get(prometheus + "/api/v1/query?" + urllib.parse.urlencode({"query": expr}))["data"]["result"]
    return float(result[0]["value"][1]) if result else None


def register(app: typer.Typer) -> None:
    for command in (breakers, alerts, query, slo):
        app.command()(command)
