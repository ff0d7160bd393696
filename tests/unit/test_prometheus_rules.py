"""The alert and recording rules: promtool accepts them, their unit tests pass, and every
wave-1 incident of docs/incidents.md has exactly one alert that names it and links its
runbook section. The alerts of no incident are the SLOs' burn-rate alerts (labelled with
their SLO, prometheus/rules/slo.yml) and Watchdog, the dead man's switch."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from chaos.drills.catalog import BY_ID
from chaos.slo import spec
from tests.support import docs
from tests.support.dashboards import EXPORTED_METRICS, PROMETHEUS_METRICS, metric_names

REPO = Path(__file__).resolve().parents[2]
RULES = REPO / "prometheus" / "rules"
RULE_FILES = sorted(RULES.glob("*.yml"))
# prometheus/tests/ci/ tests the rules as the ci profile loads them (prometheus/compose/ci-rules/).
TEST_FILES = sorted((REPO / "prometheus" / "tests").glob("*.yml")) + sorted(
    (REPO / "prometheus" / "tests" / "ci").glob("*.yml")
)
SEVERITIES = {"critical", "warning"}
REQUIRED_ANNOTATIONS = ("summary", "description", "runbook_url")
# level:metric:operations (https://prometheus.io/docs/practices/rules/)
RECORD_NAME = re.compile(r"^[a-z_]+:[a-z0-9_]+:[a-z0-9_]+$")
CONTRACT_RECORDS = {"order_success_rate"}  # a name fixed by docs/contracts.md
# Always fires; its absence from Alertmanager detects a dead Prometheus (monitoring-down).
DEAD_MANS_SWITCH = "Watchdog"


def wave_1_incidents() -> list[str]:
    """The wave-1 ids of docs/incidents.md (an error, not a skip, when it is missing)."""
    return docs.incident_ids(1)


def camel(incident: str) -> str:
    return "".join(part.capitalize() for part in incident.split("-"))


def rules_of(path: Path) -> list[dict[str, Any]]:
    return [rule for group in yaml.safe_load(path.read_text())["groups"] for rule in group["rules"]]


def alerts() -> list[dict[str, Any]]:
    return [r for path in RULE_FILES for r in rules_of(path) if "alert" in r]


def records() -> list[dict[str, Any]]:
    return [r for path in RULE_FILES for r in rules_of(path) if "record" in r]


def unit_tests() -> list[dict[str, Any]]:
    return [test for path in TEST_FILES for test in yaml.safe_load(path.read_text())["tests"]]


@pytest.fixture(scope="module")
def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.skip("promtool is not on PATH (Debian package `prometheus`): rules not checked")
    return path


def run(promtool: str, *args: str) -> None:
    result = subprocess.run([promtool, *args], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, f"promtool {' '.join(args)} failed:\n{result.stdout}{result.stderr}"


def test_rule_and_test_files_exist():
    assert {p.name for p in RULE_FILES} >= {"alerts.yml", "recording.yml", "slo.yml"}
    assert TEST_FILES


@pytest.mark.parametrize("path", RULE_FILES, ids=lambda p: p.name)
def test_promtool_check_rules(promtool, path):
    run(promtool, "check", "rules", str(path))


@pytest.mark.parametrize("path", TEST_FILES, ids=lambda p: p.name)
def test_promtool_test_rules(promtool, path):
    run(promtool, "test", "rules", str(path))


def test_incident_catalogue_is_read():
    assert len(wave_1_incidents()) == len(set(wave_1_incidents())) >= 20


@pytest.mark.parametrize("incident", wave_1_incidents())
def test_each_incident_has_its_named_alert(incident):
    """One alert is named after the incident; a few more may carry its label as context
    (OutboxDeadLetters for outbox-backlog), and all of them link its runbook section."""
    matching = [a for a in alerts() if a.get("labels", {}).get("incident") == incident]
    named = [a for a in matching if a["alert"] == camel(incident)]
    own = BY_ID[incident].alert
    if not matching and own and own != camel(incident):
        # Detected only by the symptom another incident's alert names (migration-failure:
        # payments down): that alert must exist.
        assert own in {a["alert"] for a in alerts()}, f"{incident}: its alert {own} is in no rule file"
        return
    assert len(named) == 1, f"{incident}: no alert {camel(incident)} labelled incident={incident}"
    for alert in matching:
        assert alert["annotations"]["runbook_url"] == f"runbook.md#{incident}", alert["alert"]


def test_every_alert_belongs_to_an_incident_or_an_slo():
    incidents = set(wave_1_incidents())
    slos = {s.name for s in spec.slos()}
    strays = [
        a["alert"]
        for a in alerts()
        if a.get("labels", {}).get("incident") not in incidents
        and a.get("labels", {}).get("slo") not in slos
        and a["alert"] != DEAD_MANS_SWITCH
    ]
    assert not strays, f"alerts naming no wave-1 incident and no SLO: {strays}"
    names = [a["alert"] for a in alerts()]
    assert len(names) == len(set(names))


def test_watchdog_is_a_dead_mans_switch_that_pages_nobody():
    [watchdog] = [a for a in alerts() if a["alert"] == DEAD_MANS_SWITCH]
    assert str(watchdog["expr"]).strip() == "vector(1)" and watchdog["for"] == "0s"
    assert "incident" not in watchdog["labels"]
    assert watchdog["labels"]["severity"] == "none"
    # It reaches Alertmanager (every alert does) but its route notifies nobody.
    route = yaml.safe_load((REPO / "prometheus" / "alertmanager.yml").read_text())
    [own] = [r for r in route["route"].get("routes", []) if r.get("matchers") == [f'alertname="{DEAD_MANS_SWITCH}"']]
    [receiver] = [r for r in route["receivers"] if r["name"] == own["receiver"]]
    assert set(receiver) == {"name"}, f"{DEAD_MANS_SWITCH}'s receiver must notify nobody: {receiver}"


@pytest.mark.parametrize("alert", alerts(), ids=lambda a: a["alert"])
def test_alert_is_complete(alert):
    severities = {"none"} if alert["alert"] == DEAD_MANS_SWITCH else SEVERITIES
    assert alert.get("labels", {}).get("severity") in severities
    for key in REQUIRED_ANNOTATIONS:
        assert str(alert.get("annotations", {}).get(key, "")).strip(), f"{alert['alert']} lacks {key}"
    assert "for" in alert, f"{alert['alert']} has no for: (the CI profile rewrites it)"


def test_recording_rules_follow_the_naming_convention():
    names = [r["record"] for r in records()]
    assert "order_success_rate" in names
    bad = [n for n in names if n not in CONTRACT_RECORDS and not RECORD_NAME.match(n)]
    assert not bad, f"not level:metric:operations: {bad}"


def test_order_success_rate_is_confirmed_over_all_final_orders():
    [rule] = [r for r in records() if r["record"] == "order_success_rate"]
    expr = " ".join(rule["expr"].split())
    assert expr == ('sum(rate(orders_total{status="confirmed"}[1m])) / sum(rate(orders_total[1m]))')


@pytest.mark.parametrize("rule", alerts() + records(), ids=lambda r: r.get("alert") or r["record"])
def test_expressions_read_only_exported_metrics(rule):
    known = EXPORTED_METRICS | PROMETHEUS_METRICS | {r["record"] for r in records()}
    unknown = metric_names(rule["expr"]) - known
    assert not unknown, f"{rule.get('alert') or rule['record']} reads metrics nobody exports: {unknown}"


@pytest.mark.parametrize("alert", alerts(), ids=lambda a: a["alert"])
def test_each_alert_has_a_firing_and_a_silent_unit_test(alert):
    name = alert["alert"]
    cases = [case for test in unit_tests() for case in test.get("alert_rule_test", []) if case["alertname"] == name]
    firing = [c for c in cases if c.get("exp_alerts")]
    silent = [c for c in cases if c.get("exp_alerts") == []]
    assert firing, f"{name}: no test where the incident's series make it fire"
    if name == DEAD_MANS_SWITCH:  # never silent by design: its silence is Alertmanager's view
        assert not silent, f"{name} must fire whatever the series"
    else:
        assert silent, f"{name}: no test where a healthy series keeps it silent"
    for case in firing:
        for expected in case["exp_alerts"]:
            assert expected.get("exp_labels", {}).get("incident") == alert["labels"].get("incident")
            assert expected.get("exp_annotations", {}).get("summary"), f"{name}: summary not checked"


def test_order_success_rate_has_a_unit_test():
    exprs = [case["expr"] for test in unit_tests() for case in test.get("promql_expr_test", [])]
    assert "order_success_rate" in exprs
