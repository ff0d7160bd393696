"""Read the Grafana dashboards' PromQL the way Grafana would send it to Prometheus.

`panel_queries(path)` gives every panel target's query with the templating variables
substituted (`$service` by the "All" regex `.*`, Grafana's interval variables by the
training profile's values), so a test can parse it with promtool or evaluate it against a
running Prometheus. `metric_names(expr)` lists the metric names a PromQL expression reads,
which lets the rule and dashboard tests hold them to the names the services export.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
DASHBOARDS = REPO / "grafana" / "dashboards"

# What each variable stands for when a test sends the query itself. `$service` is a
# multi-value variable with includeAll and allValue ".*", always used as job=~"$service".
VARIABLES = {
    "service": ".*",
    "__rate_interval": "1m",
    "__interval": "15s",
    "__range": "15m",
}
_VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)")


def dashboard_paths() -> list[Path]:
    return sorted(DASHBOARDS.glob("*.json"))


def load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    """Every panel, rows' nested panels included (rows themselves left out)."""
    found = []
    for panel in dashboard.get("panels", []):
        if panel.get("type") == "row":
            found.extend(panel.get("panels", []))
        else:
            found.append(panel)
    return found


def substitute(expr: str) -> str:
    def value(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        if name not in VARIABLES:
            raise KeyError(f"unknown templating variable ${name} in {expr!r}")
        return VARIABLES[name]

    return _VARIABLE.sub(value, expr)


def panel_queries(dashboard_path: Path | str) -> list[tuple[str, str]]:
    """(panel title, PromQL with variables substituted) for every target of every panel."""
    dashboard = load(Path(dashboard_path))
    return [
        (panel.get("title", ""), substitute(target["expr"]))
        for panel in panels(dashboard)
        for target in panel.get("targets", [])
        if target.get("expr")
    ]


def annotation_queries(dashboard_path: Path | str) -> list[tuple[str, str]]:
    """(annotation name, PromQL) of the dashboard's Prometheus annotations.

    Kept apart from panel queries: an annotation is empty whenever nothing happened.
    """
    dashboard = load(Path(dashboard_path))
    return [
        (a.get("name", ""), substitute(a["expr"]))
        for a in dashboard.get("annotations", {}).get("list", [])
        if a.get("expr")
    ]


# PromQL words that are not metric names.
_KEYWORDS = {
    "and",
    "or",
    "unless",
    "bool",
    "offset",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "inf",
    "nan",
    "atan2",
}
_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_MATCHERS = re.compile(r"\{[^{}]*\}")
_RANGES = re.compile(r"\[[^\[\]]*\]")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")
_IDENTIFIER = re.compile(r"(?<![\w.:])([A-Za-z_:][\w:]*)(\s*\()?")


def metric_names(expr: str) -> set[str]:
    """Metric names a PromQL expression selects (functions, keywords and labels left out)."""
    text = _STRINGS.sub('""', expr)
    text = re.sub(r"#[^\n]*", "", text)
    text = _MATCHERS.sub("", text)
    text = _RANGES.sub("", text)
    text = _GROUPING.sub("", text)
    names = set()
    for match in _IDENTIFIER.finditer(text):
        word, call = match.group(1), match.group(2)
        if call or word.lower() in _KEYWORDS:
            continue
        names.add(word)
    return names


# The metric names the services export, as listed in docs/contracts.md.
# Histograms are listed by their series names.
EXPORTED_METRICS = frozenset(
    {
        "http_requests_total",
        "service_auth_requests_total",
        "service_credential_generation",
        "http_request_duration_seconds_bucket",
        "http_request_duration_seconds_sum",
        "http_request_duration_seconds_count",
        "http_inflight_requests",
        "downstream_requests_total",
        "downstream_errors_total",
        "downstream_request_duration_seconds_bucket",
        "downstream_request_duration_seconds_sum",
        "downstream_request_duration_seconds_count",
        "breaker_state",
        "breaker_transitions_total",
        "breaker_calls_total",
        "bulkhead_rejections_total",
        "bulkhead_inflight",
        "load_shed_total",
        "load_shed_retry_after_seconds",
        "concurrency_limit",
        "concurrency_min_rtt_seconds",
        "retry_attempts_total",
        "retry_budget_exhausted_total",
        "replica_ejections_total",
        "orders_total",
        "idempotency_conflicts_total",
        "outbox_pending",
        "outbox_oldest_age_seconds",
        "outbox_delivered_total",
        "inbox_events_total",
        "outbox_delivery_failures_total",
        "outbox_dead_letters",
        "outbox_dead_lettered_total",
        "events_sent_directly_total",
        "orders_resumed_total",
        "db_up",
        "db_pool_size",
        "db_pool_in_use",
        "db_pool_waiting",
        "db_pool_timeouts_total",
        "chaos_active",
        "chaos_store_up",
        "chaos_changes_total",
        "rate_limited_total",
        "payments_processor_connections",
        "payments_processor_connections_in_use",
        "payments_processor_waiting",
        "payments_processor_wait_seconds_bucket",
        "payments_processor_wait_seconds_sum",
        "payments_processor_wait_seconds_count",
        "process_resident_memory_bytes",
        "process_cpu_seconds_total",
        "process_start_time_seconds",
        "service_starts_total",
    }
)
# Series Prometheus writes itself for every target, and its alert series.
PROMETHEUS_METRICS = frozenset(
    {
        "up",
        "scrape_duration_seconds",
        "scrape_samples_scraped",
        "scrape_series_added",
        "ALERTS",
        "ALERTS_FOR_STATE",
    }
)
