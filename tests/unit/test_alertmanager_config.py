"""Alertmanager's routing (chaos/alertmanager_config.py): severities to receivers, grouping
by SLO and incident, and the SLO pages' inhibitions. amtool checks the configuration and
routes label sets through it without a server; tests/integration/test_alert_routing.py
runs a real Alertmanager for the inhibitions."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from chaos import alertmanager_config
from chaos.drills.catalog import INCIDENTS
from chaos.layout import StackLayout
from chaos.slo import spec

REPO = Path(__file__).resolve().parents[2]
COMPOSE = REPO / "prometheus" / "alertmanager.yml"


def alert_labels(incident_id: str) -> list[dict[str, str]]:
    """The labels of the incident's alerts in prometheus/rules/alerts.yml."""
    groups = yaml.safe_load((REPO / "prometheus" / "rules" / "alerts.yml").read_text())["groups"]
    return [
        {"alertname": r["alert"], **r["labels"]}
        for g in groups
        for r in g["rules"]
        if r.get("labels", {}).get("incident") == incident_id
    ]


def cases() -> list[tuple[dict[str, str], str]]:
    """(an alert's labels, the receiver it must reach)."""
    out: list[tuple[dict[str, str], str]] = [({"alertname": "Watchdog", "severity": "none"}, "watchdog")]
    for slo in spec.slos():
        out += [({"alertname": slo.alert(t), "severity": t.severity, "slo": slo.name}, t.notify) for t in spec.TIERS]
    for inc in INCIDENTS:
        for labels in alert_labels(inc.id):
            # An incident customers feel pages through its SLO; one they cannot feel pages
            # on its own when critical.
            want = "page" if labels["severity"] == "critical" and not inc.slos else "ticket"
            out.append((labels, want))
    return out


@pytest.fixture(scope="module")
def amtool() -> str:
    path = shutil.which("amtool")
    if path is None:
        pytest.skip("amtool is not on PATH (Debian package `prometheus-alertmanager`): routing not checked")
    return path


def test_amtool_accepts_the_configuration(amtool):
    result = subprocess.run([amtool, "check-config", str(COMPOSE)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("labels,receiver", cases(), ids=lambda v: v.get("alertname") if isinstance(v, dict) else v)
def test_each_alert_reaches_its_receiver(amtool, labels, receiver):
    pairs = [f"{k}={v}" for k, v in labels.items()]
    result = subprocess.run(
        [amtool, "config", "routes", "test", f"--config.file={COMPOSE}", *pairs],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.stdout.strip() == receiver, result.stdout + result.stderr


def test_monitoring_down_and_crashloop_page_on_their_own():
    """No SLO sees them (customers do not feel them yet): their critical alerts page. So
    does a leaked service credential in use (SecretRotation): no order fails, yet."""
    paging = {labels["alertname"] for labels, receiver in cases() if receiver == "page" and "incident" in labels}
    assert paging == {"MonitoringDown", "Crashloop", "SecretRotation"}


def test_page_and_ticket_both_deliver_to_notifications():
    config = yaml.safe_load(COMPOSE.read_text())
    receivers = {r["name"]: r for r in config["receivers"]}
    assert set(receivers) == {"page", "ticket", "watchdog"}
    for name in ("page", "ticket"):
        assert receivers[name]["webhook_configs"] == [
            {
                "url": "http://notifications:8004/alerts",
                "send_resolved": True,
                # The service credential: notifications' POST /alerts is internal.
                "http_config": {"authorization": {"type": "Bearer", "credentials_file": "/alertmanager/service-token"}},
            }
        ]
    assert set(receivers["watchdog"]) == {"name"}  # notifies nobody
    assert config["route"]["group_by"] == ["slo", "incident"]


def test_a_page_attaches_the_alerts_of_the_incidents_spending_its_slo():
    inhibit = yaml.safe_load(COMPOSE.read_text())["inhibit_rules"]
    for slo in spec.slos():
        source = [f'alertname="{slo.alert(spec.PAGE)}"']
        targets = [rule["target_matchers"] for rule in inhibit if rule["source_matchers"] == source]
        spending = sorted(inc.id for inc in INCIDENTS if slo.name in inc.slos)
        [incidents] = [t for t in targets if t[0].startswith("incident=~")]
        assert sorted(incidents[0].removeprefix('incident=~"').removesuffix('"').split("|")) == spending
        assert [f'alertname="{slo.alert(spec.TICKET)}"'] in targets  # the slow burn's ticket too


@pytest.mark.parametrize("profile,wait", [("training", "10s"), ("ci", "1s")])
def test_the_native_stack_writes_the_same_routing_on_its_own_ports(tmp_path, profile, wait):
    layout = StackLayout.new(tmp_path, profile=profile, chaos_token="t", pick_free_ports=False)
    native = yaml.safe_load(alertmanager_config.write(layout).read_text())
    compose = yaml.safe_load(COMPOSE.read_text())
    assert native["route"]["routes"] == compose["route"]["routes"]
    assert native["inhibit_rules"] == compose["inhibit_rules"]
    assert native["route"]["group_wait"] == wait
    [hook] = {r["name"]: r for r in native["receivers"]}["page"]["webhook_configs"]
    assert hook["url"] == f"{layout.url('notifications')}/alerts"
