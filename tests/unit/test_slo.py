"""The SLOs (prometheus/slos.yml): their definitions, the rules generated from them, the
ci profile's windows, the error-budget arithmetic, and what the incident catalogue says
about them (chaos/slo/, chaos/drills/budgets.py)."""

from __future__ import annotations

import re

import pytest

from chaos import prometheus_config
from chaos.cli_observe import generated
from chaos.drills import budgets
from chaos.drills.catalog import BY_ID, INCIDENTS
from chaos.slo import budget, rules, spec
from services.common.web.metrics import LATENCY_BUCKETS

# The customer-facing incidents that must be detected by an SLO page as well.
CUSTOMER_FACING = ("payments-errors", "payments-down", "database-down", "gateway-overload", "cascading-failure")
GOOD_SLI = """
slos:
  - name: orders-availability
    objective: 99.5
    window: 30d
    sli:
      error_query: sum(rate(bad[{{window}}]))
      total_query: sum(rate(all[{{window}}]))
"""


def test_every_file_generated_from_the_slos_is_up_to_date():
    stale = [str(path) for path, text in generated().items() if not path.exists() or path.read_text() != text]
    assert not stale, f"run `chaoslab slo --write`: {stale}"


def test_the_rules_are_generated_from_the_definitions():
    assert rules.PATH.read_text() == rules.render()


def test_the_order_path_has_an_availability_and_a_latency_slo_at_the_gateway():
    names = {s.name: s for s in spec.slos()}
    assert set(names) == {"orders-availability", "orders-latency"}
    for slo in names.values():
        assert slo.window == "30d"
        for which in ("error", "total"):
            assert 'job="gateway"' in slo.query(which, "5m") and "[5m]" in slo.query(which, "5m")
    assert names["orders-availability"].budget == pytest.approx(0.005)
    assert names["orders-latency"].budget == pytest.approx(0.01)


def test_availability_counts_5xx_429_and_402_as_bad_and_every_post_as_an_event():
    slo = spec.by_name("orders-availability")
    assert 'status=~"5..|429|402"' in slo.query("error", "1h")
    # Shed and refused requests never reach the router (route="unmatched"): no route matcher.
    assert "route" not in slo.query("total", "1h") and 'method="POST"' in slo.query("total", "1h")


def test_latency_counts_admitted_orders_over_a_bucket_the_gateway_exports():
    slo = spec.by_name("orders-latency")
    [le] = re.findall(r'le="([^"]+)"', slo.query("error", "1h"))
    assert float(le) in LATENCY_BUCKETS
    assert 'route="/orders"' in slo.query("total", "1h")  # admitted: the router saw it


@pytest.mark.parametrize(
    "broken",
    [
        GOOD_SLI.replace("{{window}}", "5m", 1),  # an SLI query with its window written in
        GOOD_SLI.replace("99.5", "100"),
        GOOD_SLI.replace("orders-availability", "Orders Availability"),
        GOOD_SLI.replace("30d", "a month"),
        GOOD_SLI + GOOD_SLI.removeprefix("\nslos:\n"),  # the same name twice
        "slos: []",
    ],
)
def test_bad_definitions_are_refused(broken):
    with pytest.raises(ValueError):
        spec.parse(broken)


def test_a_good_definition_parses():
    [slo] = spec.parse(GOOD_SLI)
    assert slo.query("error", "1h") == "sum(rate(bad[1h]))"
    assert slo.alert(spec.PAGE) == "OrdersAvailabilityFastBurn"


def test_the_two_tiers_are_the_sre_workbooks():
    fast, slow = spec.TIERS
    assert (fast.burn_rate, fast.long, fast.short, fast.notify, fast.severity) == (14.4, "1h", "5m", "page", "critical")
    assert (slow.burn_rate, slow.long, slow.short, slow.notify, slow.severity) == (6, "6h", "30m", "ticket", "warning")
    # 14.4 x for 1 h spends 2 % of a 30-day budget; 6 x for 6 h, 5 %.
    month = prometheus_config.seconds("30d")
    assert budget.spent(fast.burn_rate * 0.005, 0.005, 3600, month) == pytest.approx(0.02)
    assert budget.spent(slow.burn_rate * 0.005, 0.005, 6 * 3600, month) == pytest.approx(0.05)


def test_every_slo_gets_a_page_and_a_ticket_reading_both_windows():
    alerts = {r["alert"]: r for g in rules.groups() for r in g["rules"] if "alert" in r}
    for slo in spec.slos():
        for tier in spec.TIERS:
            rule = alerts[slo.alert(tier)]
            expr = str(rule["expr"])
            for window in (tier.long, tier.short):
                assert (
                    f'{rules.ratio_record(window)}{{slo="{slo.name}"}} > ({tier.burn_rate:g} * {slo.budget:g})' in expr
                )
            assert rule["labels"] == {"severity": tier.severity, "slo": slo.name}
            assert rule["annotations"]["runbook_url"] == f"docs/slo.md#{slo.name}"


@pytest.mark.parametrize("profile,scale", [("training", 1), ("ci", 6)])
def test_the_ci_profile_shrinks_the_slo_windows_like_every_other(profile, scale):
    loaded = [r for r in prometheus_config.profile_rules(profile) if r.get("labels", {}).get("slo")]
    for slo in spec.slos():
        for window in spec.windows(slo):
            [rule] = [
                r for r in loaded if r.get("record") == rules.ratio_record(window) and r["labels"]["slo"] == slo.name
            ]
            assert set(prometheus_config.range_windows_s(str(rule["expr"]))) == {
                prometheus_config.seconds(window) / scale
            }
        assert budgets.period_s(slo, profile) == prometheus_config.seconds(slo.window) / scale
    fors = {r["for"] for r in loaded if "alert" in r}
    assert fors == ({"1m"} if profile == "training" else {"5s"})


def test_fire_after_is_the_long_window_filling_up():
    assert budget.fire_after_s(0.072, 3600, 1.0) == pytest.approx(259.2)  # the workbook's 4.3 minutes
    assert budget.fire_after_s(0.072, 600, 0.5) == pytest.approx(86.4)
    with pytest.raises(ValueError):
        budget.fire_after_s(0.072, 3600, 0.05)  # 5 % bad never reaches 14.4 x a 0.5 % budget


def test_a_busier_window_before_the_fault_makes_the_same_share_page_later():
    # The ci database-down drill: a window that held 5 order requests a second, then 2.2
    # a second (clients backing off on Retry-After), half of them bad.
    took = budget.fire_after_s(0.072, 600, 0.5, rate=2.2, prior_rate=5.0)
    assert took > budget.fire_after_s(0.072, 600, 0.5)
    assert 0.5 * 2.2 * took / (5.0 * (600 - took) + 2.2 * took) == pytest.approx(0.072)
    # A quieter window before pages sooner; an equal one is the steady case.
    assert budget.fire_after_s(0.072, 600, 0.5, rate=2.2, prior_rate=1.0) < 86.4
    assert budget.fire_after_s(0.072, 600, 0.5, rate=2.2, prior_rate=2.2) == pytest.approx(86.4)
    with pytest.raises(ValueError):
        budget.fire_after_s(0.072, 600, 0.5, rate=0.0, prior_rate=5.0)


def test_each_incident_names_real_slos_and_the_customer_facing_ones_must_page():
    names = {s.name for s in spec.slos()}
    for inc in INCIDENTS:
        assert set(inc.slos) <= names, inc.id
        assert len(inc.slos) == len(set(inc.slos)), inc.id
        if inc.page is not None:
            assert inc.page.slo in inc.slos, f"{inc.id} pages on an SLO it does not spend"
            assert inc.page.bad_share > spec.by_name(inc.page.slo).threshold(spec.PAGE), inc.id
    for incident in CUSTOMER_FACING:
        page = BY_ID[incident].page
        assert page is not None and page.slo == "orders-availability", incident


def test_an_incident_without_customer_impact_spends_no_budget():
    for incident in ("outbox-backlog", "outbox-stuck", "redis-down", "monitoring-down", "crashloop", "memory-leak"):
        assert BY_ID[incident].slos == () and BY_ID[incident].page is None


def test_the_page_budget_is_the_documented_sum():
    training = budgets.of(BY_ID["payments-errors"], "training")
    assert training.page_terms == {
        "chaos_refresh_s": 1.0,
        "scrape": 15,
        "page long window x threshold / bad share": pytest.approx(518.4),  # 3600 x 0.072 / 0.5
        "for": 60,
        "2 x eval": 30,
    }
    assert training.page_s == 801  # ceil(1.25 x 624.4 + 20)
    ci = budgets.of(BY_ID["payments-errors"], "ci")
    assert ci.page_s == 139 and ci.page_terms["page long window x threshold / bad share"] == pytest.approx(86.4)
    # The page stops once its short window (5 m, 50 s in ci) no longer holds the incident.
    assert training.recover_terms["windows (alert, success rate, recovered_when, page)"] == 300
    assert ci.recover_terms["windows (alert, success rate, recovered_when, page)"] == 50


def test_an_incident_without_a_page_has_no_page_budget():
    assert budgets.of(BY_ID["outbox-backlog"], "ci").page_s is None
