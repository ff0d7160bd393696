"""A drill's budgets follow from its stack's profile (chaos/drills/budgets.py): the
intervals Prometheus runs with, the alert's `for:` and windows as that profile loads
them, and the service-side settings that gate recovery."""

from __future__ import annotations

import pytest

from chaos import prometheus_config
from chaos.drills import budgets
from chaos.drills.catalog import BY_ID, INCIDENTS
from services.common.web.settings import profile_defaults


@pytest.mark.parametrize("incident", INCIDENTS, ids=lambda inc: inc.id)
def test_training_budgets_are_longer_than_ci_and_cover_the_alert(incident):
    training, ci = budgets.of(incident, "training"), budgets.of(incident, "ci")
    assert training.detect_s > ci.detect_s and training.recover_s > ci.recover_s
    for profile, got in (("training", training), ("ci", ci)):
        if incident.detection == "prometheus":
            [rule] = [r for r in prometheus_config.profile_rules(profile) if r.get("alert") == incident.alert]
            floor = prometheus_config.seconds(rule["for"]) + max(
                prometheus_config.range_windows_s(str(rule["expr"])) or [0]
            )
        else:
            floor = prometheus_config.alert_lifetime_s(profile)
        assert got.detect_s >= floor + prometheus_config.seconds(prometheus_config.SCRAPE_INTERVAL[profile])
        for gate in incident.recover_gates:
            assert got.recover_terms[gate] == profile_defaults(profile)[gate]


def test_payments_errors_budget_is_the_documented_sum():
    terms = budgets.of(BY_ID["payments-errors"], "training").detect_terms
    assert terms == {"chaos_refresh_s": 1.0, "scrape": 15, "alert window": 60, "for": 60, "2 x eval": 30}
    assert budgets.of(BY_ID["payments-errors"], "training").detect_s == 228  # ceil(1.25 x 166 + 20)
    ci = budgets.of(BY_ID["payments-errors"], "ci").detect_terms
    assert ci["for"] == 5 and ci["alert window"] == 10 and ci["scrape"] == 1


@pytest.mark.parametrize("profile", ["training", "ci"])
def test_the_page_budget_for_measured_traffic_grows_when_the_window_was_busier_before(profile):
    inc = BY_ID["database-down"]
    share = inc.page.bad_share
    steady = budgets.page_for_traffic(inc, profile, bad_share=share, rate=2.0, prior_rate=2.0)
    assert steady == budgets.of(inc, profile).page_s  # steady traffic: the catalogue's budget
    busier = budgets.page_for_traffic(inc, profile, bad_share=share, rate=2.0, prior_rate=5.0)
    assert steady < busier < steady + budgets.MARGIN_RATIO * budgets.page_long_window_s(inc, profile)
    with pytest.raises(ValueError):  # 0.5 % bad never pages an SLO of 99.5 %
        budgets.page_for_traffic(inc, profile, bad_share=0.005, rate=2.0, prior_rate=5.0)


@pytest.mark.parametrize("incident", ["monitoring-down", "multi-failure"])
def test_a_dead_prometheus_is_detected_through_the_dead_mans_switch(incident):
    inc = BY_ID[incident]
    assert inc.alert == "Watchdog" and inc.detection == "dead-mans-switch" and inc.prometheus_alert is None
    assert budgets.of(inc, "training").detect_terms["alert lifetime in Alertmanager"] == 60
    assert budgets.of(inc, "ci").detect_terms["alert lifetime in Alertmanager"] == 8


def test_ci_shrinks_for_but_keeps_a_zero_for():
    assert prometheus_config.shrink("1m", prometheus_config.CI_FOR_DIVISOR) == "5s"
    assert prometheus_config.shrink("0s", prometheus_config.CI_FOR_DIVISOR) == "0s"
