"""Grafana dashboards: the structure Grafana needs to load them, and PromQL that parses.

No Grafana runs here, so the checks are what Grafana would trip on (uid, title, panels with
a data source, targets with expr and refId, grid positions that do not overlap), and every
query goes through promtool's parser as a recording rule. A live test evaluates the same
queries (tests/support/dashboards.py: panel_queries) against a running Prometheus.
"""

from __future__ import annotations

import itertools
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.support.dashboards import (
    EXPORTED_METRICS,
    PROMETHEUS_METRICS,
    annotation_queries,
    dashboard_paths,
    load,
    metric_names,
    panel_queries,
    panels,
)

REPO = Path(__file__).resolve().parents[2]
DATASOURCES = REPO / "grafana" / "provisioning" / "datasources" / "prometheus.yml"
RULE_FILES = sorted((REPO / "prometheus" / "rules").glob("*.yml"))  # recording.yml, slo.yml (generated)
PANEL_TYPES = {"timeseries", "stat", "table"}
FAMILIES = {"overview", "payments", "capacity", "data", "process", "slo"}
PATHS = dashboard_paths()
QUERIES = [(path, title, expr) for path in PATHS for title, expr in panel_queries(path)]
QUERIES += [(path, f"annotation {name}", expr) for path in PATHS for name, expr in annotation_queries(path)]


def provisioned_datasource() -> dict:
    [source] = [s for s in yaml.safe_load(DATASOURCES.read_text())["datasources"] if s["type"] == "prometheus"]
    return {"type": "prometheus", "uid": source["uid"]}


def recorded_names() -> set[str]:
    groups = [g for path in RULE_FILES for g in yaml.safe_load(path.read_text())["groups"]]
    return {rule["record"] for group in groups for rule in group["rules"] if "record" in rule}


def test_one_dashboard_per_family():
    assert {p.stem for p in PATHS} >= FAMILIES


def test_uids_are_unique():
    uids = [load(p).get("uid") for p in PATHS]
    assert all(uids) and len(uids) == len(set(uids)), uids


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.name)
def test_dashboard_settings(path):
    board = load(path)
    assert board.get("title")
    assert "chaoslab" in board.get("tags", [])
    assert board.get("schemaVersion") == 39
    assert board.get("time") == {"from": "now-15m", "to": "now"}
    assert board.get("refresh") == "5s"
    [service] = [v for v in board["templating"]["list"] if v["name"] == "service"]
    assert service["type"] == "query" and service["includeAll"] is True
    assert "label_values(up, job)" in str(service["query"])
    assert service["datasource"] == provisioned_datasource()


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.name)
def test_panels_have_what_grafana_needs(path):
    board = load(path)
    source = provisioned_datasource()
    found = panels(board)
    assert found, f"{path.name} has no panel"
    ids = [p.get("id") for p in board["panels"]]
    assert len(ids) == len(set(ids)), f"{path.name}: duplicate panel ids"
    for panel in found:
        title = panel.get("title")
        assert title, f"{path.name}: a panel without a title"
        assert panel.get("type") in PANEL_TYPES, f"{title}: type {panel.get('type')}"
        assert panel.get("datasource") == source, f"{title}: data source {panel.get('datasource')}"
        targets = panel.get("targets")
        assert targets, f"{title}: no targets"
        for target in targets:
            assert target.get("expr", "").strip(), f"{title}: a target without expr"
            assert target.get("refId"), f"{title}: a target without refId"
        ref_ids = [t["refId"] for t in targets]
        assert len(ref_ids) == len(set(ref_ids)), f"{title}: duplicate refId"


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.name)
def test_grid_positions_fit_and_do_not_overlap(path):
    placed = []
    for panel in load(path)["panels"]:
        grid = panel.get("gridPos", {})
        title = panel.get("title")
        for key in ("h", "w", "x", "y"):
            assert isinstance(grid.get(key), int) and grid[key] >= 0, f"{title}: gridPos.{key}"
        assert grid["w"] >= 1 and grid["h"] >= 1 and grid["x"] + grid["w"] <= 24, f"{title}: {grid}"
        placed.append((title, grid))
    for (a, ga), (b, gb) in itertools.combinations(placed, 2):
        apart = (
            ga["x"] + ga["w"] <= gb["x"]
            or gb["x"] + gb["w"] <= ga["x"]
            or ga["y"] + ga["h"] <= gb["y"]
            or gb["y"] + gb["h"] <= ga["y"]
        )
        assert apart, f"{path.name}: panels {a!r} {ga} and {b!r} {gb} overlap"


def test_overview_shows_the_issue_list():
    overview = next(p for p in PATHS if p.stem == "overview")
    exprs = " ".join(expr for _, expr in panel_queries(overview))
    for needed in (
        "order_success_rate",
        "orders_total",
        "p50",
        "p95",
        "p99",
        "breaker_state",
        "bulkhead_rejections_total",
        "load_shed_total",
        "retry_attempts_total",
        "idempotency_conflicts_total",
        "outbox_pending",
        "outbox_oldest_age_seconds",
        "chaos_active",
    ):
        assert needed in exprs, f"the overview shows no {needed}"
    assert ("Chaos changes", "changes(chaos_changes_total[1m]) > 0") in annotation_queries(overview)


def test_slo_dashboard_shows_budget_burn_rates_and_what_spent_them():
    board = next(p for p in PATHS if p.stem == "slo")
    exprs = " ".join(expr for _, expr in panel_queries(board))
    assert "slo:error_budget_remaining:ratio" in exprs
    for window in ("5m", "30m", "1h", "6h"):  # every burn-rate alert's windows
        for slo in ("orders-availability", "orders-latency"):
            assert f'slo:sli_error:ratio_rate{window}{{slo="{slo}"}}' in exprs
    annotations = dict(annotation_queries(board))
    assert annotations["Chaos changes"] == "changes(chaos_changes_total[1m]) > 0"  # the chaos audit trail
    assert annotations["Incident alerts"] == 'ALERTS{alertstate="firing",incident!=""}'  # drills and incidents
    assert annotations["SLO alerts"] == 'ALERTS{alertstate="firing",slo!=""}'


@pytest.mark.parametrize("path,title,expr", QUERIES, ids=lambda v: v.name if isinstance(v, Path) else None)
def test_queries_read_exported_metrics(path, title, expr):
    unknown = metric_names(expr) - EXPORTED_METRICS - PROMETHEUS_METRICS - recorded_names()
    assert not unknown, f"{path.name} / {title}: {expr} reads metrics nobody exports: {unknown}"


@pytest.fixture(scope="module")
def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.skip("promtool is not on PATH (Debian package `prometheus`): queries not parsed")
    return path


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.name)
def test_queries_parse(promtool, path, tmp_path):
    """Each query, variables substituted, as a recording rule that promtool must accept."""
    queries = [(t, e) for p, t, e in QUERIES if p == path]
    failures = []
    for index, (title, expr) in enumerate(queries):
        rules = tmp_path / f"query_{index}.yml"
        rules.write_text(
            yaml.safe_dump(
                {"groups": [{"name": "dashboard", "rules": [{"record": f"dashboard:query:{index}", "expr": expr}]}]}
            )
        )
        result = subprocess.run([promtool, "check", "rules", str(rules)], capture_output=True, text=True, timeout=60)
        if result.returncode != 0:
            failures.append(f"{title!r}: {expr}\n{result.stdout}{result.stderr}")
    assert not failures, f"{path.name}: queries promtool cannot parse:\n" + "\n".join(failures)
