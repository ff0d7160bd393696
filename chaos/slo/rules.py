"""prometheus/rules/slo.yml, generated from the SLO definitions (`chaoslab slo --write`; a
unit test fails when it is stale).

One group per SLO, recording rules first, then its two burn-rate alerts: a group
evaluates its rules in order, so the alerts read the ratios recorded in the same
evaluation. For every window of the SLO (the tiers' and its period):

    slo:sli_error:ratio_rate<window>{slo="<name>"}   bad events over all events

(0 rather than no sample while nothing has gone bad yet), plus its objective and budget
as constant series, and the budget left:

    slo:error_budget_remaining:ratio = 1 - ratio over the period x covered / budget

`covered` (`slo:window_covered:ratio`) is the share of the period Prometheus holds data
for: a stack younger than its period (a lab stack lives for hours, a 30-day period does
not fit in the native stack's two days of retention) has spent its budget only on the
time it ran, and the traffic it saw stands for the rest. Once the data covers the whole
period, this is the usual `1 - ratio / budget`. It counts Prometheus' own scrapes over
the period against those of the shortest burn-rate window scaled up to the period, so
it needs no scrape interval and holds in the ci profile too, where both windows shrink
alike. The names follow Prometheus' `level:metric:operations` convention, as Sloth's do.
"""

from __future__ import annotations

from typing import Any

import yaml

from chaos import prometheus_config
from chaos.slo.spec import REPO, TIERS, Slo, Tier, burn_windows, slos, windows

PATH = REPO / "prometheus" / "rules" / "slo.yml"
HEADER = """\
# Generated from prometheus/slos.yml by `chaoslab slo --write` (chaos/slo/rules.py): do not
# edit. Recording rules and the multiwindow, multi-burn-rate alerts of every SLO (the SRE
# workbook's fast page and slow ticket); docs/slo.md explains them. The ci profile shrinks
# the windows and `for:` like those of every other rule (chaos/prometheus_config.py).
"""


def ratio_record(window: str) -> str:
    return f"slo:sli_error:ratio_rate{window}"


def error_ratio(slo: Slo, window: str) -> str:
    """Bad events over all events in `window`; 0 (not empty) while no bad event exists."""
    error, total = slo.query("error", window), slo.query("total", window)
    return f"(\n    {error}\n  or\n    0 * {total}\n)\n/\n{total}\n"


def covered(slo: Slo) -> str:
    """The share of the SLO's period that Prometheus holds data for, at most 1."""
    short = burn_windows()[0]
    scale = prometheus_config.seconds(slo.window) / prometheus_config.seconds(short)
    up = 'up{job="prometheus"}'
    return (
        f"clamp_max(\n  max(count_over_time({up}[{slo.window}]))\n"
        f"  / ({scale:g} * max(count_over_time({up}[{short}]))),\n  1\n)\n"
    )


def burn_alert(slo: Slo, tier: Tier) -> dict[str, Any]:
    selector = f'{{slo="{slo.name}"}}'
    threshold = f"({tier.burn_rate:g} * {slo.budget:g})"
    days = prometheus_config.seconds(slo.window) / tier.burn_rate / 86400
    return {
        "alert": slo.alert(tier),
        "expr": (
            f"{ratio_record(tier.long)}{selector} > {threshold}\n"
            f"and\n{ratio_record(tier.short)}{selector} > {threshold}\n"
        ),
        "for": tier.for_,
        "labels": {"severity": tier.severity, "slo": slo.name},
        "annotations": {
            "summary": f"{slo.name} burns its error budget {tier.burn_rate:g} times too fast",
            "description": (
                f"{{{{ $value | humanizePercentage }}}} of the events of {slo.name} were bad over the last "
                f"{tier.long}, and still over the last {tier.short}: over {tier.burn_rate:g} times its "
                f"{slo.budget:.1%} error budget, {tier.spends}. At this rate the {slo.window} budget is gone in "
                f"{days:.1f} days. The incident's own alerts are attached to this {tier.notify} "
                "(`chaoslab alerts`)."
            ),
            "runbook_url": f"docs/slo.md#{slo.name}",
        },
    }


def group(slo: Slo) -> dict[str, Any]:
    labels = {"slo": slo.name}
    rules: list[dict[str, Any]] = [
        {"record": ratio_record(w), "expr": error_ratio(slo, w), "labels": labels} for w in windows(slo)
    ]
    rules += [
        {"record": "slo:objective:ratio", "expr": f"vector({slo.objective / 100:g})", "labels": labels},
        {"record": "slo:error_budget:ratio", "expr": f"vector({slo.budget:g})", "labels": labels},
        {"record": "slo:window_covered:ratio", "expr": covered(slo), "labels": labels},
        {
            "record": "slo:error_budget_remaining:ratio",
            "expr": (
                f'1 - {ratio_record(slo.window)}{{slo="{slo.name}"}} * on (slo) '
                f'slo:window_covered:ratio{{slo="{slo.name}"}} / {slo.budget:g}'
            ),
            "labels": labels,
        },
    ]
    rules += [burn_alert(slo, tier) for tier in TIERS]
    return {"name": f"chaoslab-slo-{slo.name}", "rules": rules}


class _Dumper(yaml.SafeDumper):
    """Multi-line strings (the expressions) as literal blocks, as a person writes them;
    no YAML anchors for the labels the rules share."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _text(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _text)


def groups(definitions: tuple[Slo, ...] | None = None) -> list[dict[str, Any]]:
    """The rule groups of `definitions` (the repository's SLOs by default)."""
    return [group(slo) for slo in definitions or slos()]


def render(definitions: tuple[Slo, ...] | None = None) -> str:
    return HEADER + yaml.dump({"groups": groups(definitions)}, Dumper=_Dumper, sort_keys=False, width=1000)
