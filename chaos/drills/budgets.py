"""A drill's detect and recover budgets, derived from what its stack's profile configures.

A budget is the longest a healthy stack can take, given its own configuration, plus a
stated margin; a drill that needs longer has found something. Every term is read where
it is defined, for the profile the stack runs:

- Prometheus (chaos/prometheus_config.py): the scrape interval `scrape` and evaluation
  interval `eval` (the same value: 15 s in training, 1 s in ci), the rules as that
  profile loads them (`profile_rules`: prometheus/rules/ as written in training, shrunk
  by `ci_rules` in ci), so the alert's `for:` and range windows are the ones in force,
  and the alert lifetime in Alertmanager, `4 x max(eval, resend delay)`.
- The services (the profile table, services/common/web/settings.py `profile_defaults`):
  `chaos_refresh_s`, how soon a service sees a fault set in (or cleared from) Redis, and
  the settings an incident names as `recover_gates` in chaos/drills/catalog.py (the
  breaker's `breaker_wait_open_s`, the sweeper's `sweeper_interval_s`, ...).

Windows. `W_fire` is the longest range window in the alert's expression or in the
recording rules it reads: a sustained fault has filled it by then. `W_clear` is the
alert's longest window plus the longest window of the recording rules it reads (a
recorded `[1m]` rate under a `max_over_time(...[2m])` holds the fault for both after
the fix). `W_rate` is the same for `order_success_rate`, and `W_when` for the incident's
`recovered_when` query.

An alert detected in Prometheus (`detection="prometheus"`):

    detect  = chaos_refresh_s + scrape + W_fire + for + 2 x eval
    recover = chaos_refresh_s + gates + scrape + max(W_clear, W_rate, W_when) + 2 x eval

(one scrape to see the change; two evaluations: the recording group's, then the alert
group's; the alert resolves as soon as its expression is false, while `for` only delays
firing.) Detected by the dead man's switch (`detection="dead-mans-switch"`: Watchdog no
longer listed by Alertmanager once Prometheus is gone):

    detect  = 4 x max(eval, resend delay) + eval
    recover = chaos_refresh_s + gates + scrape + max(W_rate, W_when) + 2 x eval

(the last resend before Prometheus died is at most one evaluation old; once restarted,
Prometheus sends Watchdog at its first evaluation.) Alertmanager's group_wait and
group_interval delay notifications only: the drill reads the alert's state from
Prometheus (or, for the switch, Alertmanager's list), so they are no term. Margin, on
both:

    budget = ceil(1.25 x sum + 20 s) + the incident's detect_extra_s / recover_extra_s

25 % for a loaded 2-core machine (evaluations and scrapes run late), 20 s for what no
configuration states: a process starting again, locust's requests reaching the
window, the drill's own polling. With the training profile, PaymentsErrors gets
ceil(1.25 x (1 + 15 + 60 + 60 + 30) + 20) = 228 s to detect; in ci, 44 s.

The recover formula starts once the fix is in: the drill adds the time its remediation
took, measured (containers starting in compose, a restore).

An incident with an SLO page (`page` in the catalogue) must fire that page too: the SLO's
fast-burn alert, which fires once the error ratio over its long window `W_long` (and its
short one) passes `threshold` = 14.4 x the error budget. With a share `bad` of order
requests going bad from the inject on, the ratio over `W_long` grows as
`bad x elapsed / W_long` (chaos/slo/budget.py), so:

    page    = chaos_refresh_s + scrape + W_long x threshold / bad + for + 2 x eval
    recover = ... as above, with the page's short window `W_short` among the windows

(the page stops once its short window no longer holds the incident). With the margin,
payments-errors (half its orders bad at least) gets ceil(1.25 x (1 + 15 + 3600 x 0.072 /
0.5 + 60 + 30) + 20) = 801 s to page in training, and 139 s in ci.

That growth assumes steady traffic. A drill measures its own: when the long window held
more requests a second before the inject than flow since (a busy drill just before, in
ci's back-to-back run; clients backing off on Retry-After), the same bad share pages
later, and `page_for_traffic` gives the budget for the measured rates (the fill term of
`budget.fire_after_s` with `prior_rate`). The drill holds the page to the longer of the
two, and fails it still when the measured traffic never pages at all.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from functools import cache

from chaos import prometheus_config
from chaos.drills.model import Incident
from chaos.slo import budget, rules, spec
from services.common.web.settings import profile_defaults

MARGIN_RATIO = 1.25
MARGIN_S = 20.0
SUCCESS_RATE = "order_success_rate"


@dataclass(frozen=True)
class Budgets:
    detect_s: float
    recover_s: float
    # The terms of each sum, before the margin (name -> seconds), for the report.
    detect_terms: dict[str, float] = field(default_factory=dict)
    recover_terms: dict[str, float] = field(default_factory=dict)
    # The SLO page's detect budget and its terms, for an incident with a page.
    page_s: float | None = None
    page_terms: dict[str, float] = field(default_factory=dict)


@cache
def _rules(profile: str) -> tuple[dict[str, str], dict[str, dict]]:
    """(record name -> expression, alert name -> rule) as the profile loads them."""
    rules = prometheus_config.profile_rules(profile)
    records = {r["record"]: str(r["expr"]) for r in rules if "record" in r}
    alerts = {r["alert"]: r for r in rules if "alert" in r}
    return records, alerts


def _read_windows(expr: str, profile: str) -> list[float]:
    """The range windows of the recording rules `expr` reads."""
    records, _ = _rules(profile)
    return [
        window
        for name, record in records.items()
        if re.search(rf"(?<![\w:]){re.escape(name)}(?![\w:])", expr)
        for window in prometheus_config.range_windows_s(record)
    ]


def _windows(expr: str, profile: str) -> tuple[float, float]:
    """(longest window of `expr` itself, longest window of the recording rules it reads)."""
    own = max(prometheus_config.range_windows_s(expr), default=0.0)
    return own, max(_read_windows(expr, profile), default=0.0)


def _clear_s(expr: str, profile: str) -> float:
    own, read = _windows(expr, profile)
    return own + read


def _finish(terms: dict[str, float], extra_s: float) -> float:
    return math.ceil(MARGIN_RATIO * sum(terms.values()) + MARGIN_S) + extra_s


def of(incident: Incident, profile: str) -> Budgets:
    """The detect and recover budgets of `incident` on a stack of `profile`."""
    records, alerts = _rules(profile)
    settings = profile_defaults(profile)
    scrape, evaluation = _intervals(profile)
    common = {"chaos_refresh_s": float(settings["chaos_refresh_s"])}
    gates = {gate: float(settings[gate]) for gate in incident.recover_gates}
    rate_s = _clear_s(records[SUCCESS_RATE], profile)
    when_s = _clear_s(incident.recovered_when, profile) if incident.recovered_when else 0.0
    if incident.alert not in alerts:
        raise ValueError(f"{incident.id}: alert {incident.alert!r} is not a rule of prometheus/rules/")
    if incident.detection == "dead-mans-switch":
        detect = {"alert lifetime in Alertmanager": prometheus_config.alert_lifetime_s(profile), "eval": evaluation}
        cleared = {"success rate": rate_s, "recovered_when": when_s}
    else:
        rule = alerts[incident.alert]
        fire = max(_windows(str(rule["expr"]), profile))
        detect = {
            **common,
            "scrape": scrape,
            "alert window": fire,
            "for": prometheus_config.seconds(rule.get("for", "0s")),
            "2 x eval": 2 * evaluation,
        }
        cleared = {"alert": _clear_s(str(rule["expr"]), profile), "success rate": rate_s, "recovered_when": when_s}
    page: dict[str, float] = {}
    if incident.page is not None:
        page, cleared["page"] = _page(incident, profile, bad_share=incident.page.bad_share)
    windows = {f"windows ({', '.join(cleared)})": max(cleared.values())}
    recover = {**common, **gates, "scrape": scrape, **windows, "2 x eval": 2 * evaluation}
    return Budgets(
        detect_s=_finish(detect, incident.detect_extra_s),
        recover_s=_finish(recover, incident.recover_extra_s),
        detect_terms=detect,
        recover_terms=recover,
        page_s=_finish(page, 0) if page else None,
        page_terms=page,
    )


def _intervals(profile: str) -> tuple[float, float]:
    """(scrape, evaluation) intervals: config() sets both from SCRAPE_INTERVAL."""
    scrape = prometheus_config.seconds(prometheus_config.SCRAPE_INTERVAL[profile])
    return scrape, scrape


def _page(
    incident: Incident, profile: str, *, bad_share: float, rate: float = 1.0, prior_rate: float | None = None
) -> tuple[dict[str, float], float]:
    """The terms of the SLO page's detect budget, and the page's short window: how soon
    the fault shows in a scrape, then the long window filling up with `bad_share` of the
    requests bad (`rate` and `prior_rate` as in `budget.fire_after_s`)."""
    slo, rule, long_s, short_s = _page_rule(incident, profile)
    scrape, evaluation = _intervals(profile)
    fill = budget.fire_after_s(slo.threshold(spec.PAGE), long_s, bad_share, rate=rate, prior_rate=prior_rate)
    terms = {
        "chaos_refresh_s": float(profile_defaults(profile)["chaos_refresh_s"]),
        "scrape": scrape,
        "page long window x threshold / bad share": fill,
        "for": prometheus_config.seconds(rule["for"]),
        "2 x eval": 2 * evaluation,
    }
    return terms, short_s


def _page_rule(incident: Incident, profile: str) -> tuple[spec.Slo, dict, float, float]:
    """The incident's SLO, its page's rule, and the page's long and short windows as the
    profile loads its rules."""
    assert incident.page is not None
    slo = spec.by_name(incident.page.slo)
    _, alerts = _rules(profile)
    rule = alerts[slo.alert(spec.PAGE)]
    read = _read_windows(str(rule["expr"]), profile)
    return slo, rule, max(read), min(read)


def page_long_window_s(incident: Incident, profile: str) -> float:
    return _page_rule(incident, profile)[2]


def page_for_traffic(incident: Incident, profile: str, *, bad_share: float, rate: float, prior_rate: float) -> float:
    """The page's detect budget for the traffic a drill measured: `prior_rate` order
    requests a second over the long window before the inject, `rate` since, `bad_share`
    of those bad. Raises ValueError when that traffic never pages."""
    terms, _ = _page(incident, profile, bad_share=bad_share, rate=rate, prior_rate=prior_rate)
    return _finish(terms, 0)


def period_s(slo: spec.Slo, profile: str) -> float:
    """An SLO's period (its error budget's window) as the profile loads its rules: the
    definition's in training, shrunk like every range window in ci."""
    name = rules.ratio_record(slo.window)
    [rule] = [
        r
        for r in prometheus_config.profile_rules(profile)
        if r.get("record") == name and r.get("labels", {}).get("slo") == slo.name
    ]
    return max(prometheus_config.range_windows_s(str(rule["expr"])))
