"""A drill from the customers' side (chaos/drills/symptoms.py): the SLO page against the
incident's alert, the error budget the drill spent, and how the report and `chaoslab
alerts` show them."""

from __future__ import annotations

import json

import pytest
from rich.console import Console

from chaos.cli_observe import groups_table
from chaos.drills import report, symptoms
from chaos.drills.engine import DrillResult
from chaos.slo import spec


class FixedPrometheus:
    """Answers every instant query with one value, and keeps the queries it was asked."""

    def __init__(self, value: float | None) -> None:
        self.answer, self.asked = value, []

    def value(self, expr: str, at: float | None = None) -> float | None:
        self.asked.append((expr, at))
        return self.answer


@pytest.mark.parametrize(
    "page_s,alert_s,want",
    [(None, 8.0, "no page"), (50.0, None, "page only"), (9.0, 8.0, "with"), (5.0, 8.0, "before"), (60.0, 8.0, "after")],
)
def test_the_page_comes_before_with_or_after_the_alert(page_s, alert_s, want):
    assert symptoms.order(page_s, alert_s, together_s=2.0) == want


def test_a_page_already_firing_at_the_inject_is_not_the_drills():
    watch = symptoms.PageWatch.of(("orders-availability", "orders-latency"))
    assert set(watch.pages) == {"OrdersAvailabilityFastBurn", "OrdersLatencyFastBurn"}
    watch.armed({"OrdersLatencyFastBurn", "PaymentsErrors"})
    watch.see({"OrdersLatencyFastBurn"}, 3.0)
    assert watch.first() is None
    watch.see({"OrdersAvailabilityFastBurn", "OrdersLatencyFastBurn"}, 40.0)
    watch.see({"OrdersAvailabilityFastBurn"}, 45.0)  # the first time counts
    assert watch.first() == ("OrdersAvailabilityFastBurn", 40.0)


def test_the_budget_spent_is_the_burn_over_the_drill_as_a_share_of_the_period():
    prom = FixedPrometheus(0.5)
    slo = spec.by_name("orders-availability")
    cost = symptoms.spent(prom, slo, start=1000.0, end=1120.0, period_s=432000)  # the ci period: 5 days
    # Half the order requests bad is 100 x the 0.5 % budget; 120 s of it, of 5 days.
    assert cost == {
        "seconds": 120.0,
        "bad_share": 0.5,
        "burn_rate": 100.0,
        "budget_spent": pytest.approx(0.02778, 1e-3),
    }
    [(expr, at)] = prom.asked
    assert at == 1120.0 and "[120s]" in expr and 'status=~"5..|429|402"' in expr


def test_no_event_in_the_window_spends_nothing():
    slo = spec.by_name("orders-latency")
    assert symptoms.spent(FixedPrometheus(float("nan")), slo, 0.0, 60.0, 432000)["budget_spent"] == 0
    assert symptoms.spent(FixedPrometheus(None), slo, 0.0, 60.0, 432000)["budget_spent"] == 0


def drill_result(**fields) -> DrillResult:
    result = DrillResult("payments-errors", "Payments fails most calls", "PaymentsErrors", ok=True)
    result.time_to_detect_s, result.detect_budget_s = 8.2, 44
    for key, value in fields.items():
        setattr(result, key, value)
    return result


def test_the_report_says_when_customers_were_paged_and_what_it_cost(tmp_path):
    r = drill_result(
        page_alert="OrdersAvailabilityFastBurn",
        time_to_page_s=61.2,
        page_budget_s=139,
        page_vs_alert="after",
        budget_spent={
            "orders-availability": {"seconds": 95.0, "bad_share": 0.63, "burn_rate": 126.0, "budget_spent": 0.0277},
            "orders-latency": {"seconds": 95.0, "bad_share": 0.0, "burn_rate": 0.0, "budget_spent": 0.0},
        },
    )
    assert report.page_line(r) == "OrdersAvailabilityFastBurn after 61.2 s (budget 139 s), after PaymentsErrors (8.2 s)"
    assert report.spent_line(r).startswith("orders-availability 2.77% (bad 63.0%, 126x for 95 s)")
    assert report.spent_line(r, short=True) == "availability 2.77%, latency 0.00%"
    report.write([r], tmp_path, 120.0)
    page = (tmp_path / "index.html").read_text()
    assert "SLO page / budget (s)" in page and "61.2 / 139" in page and "availability 2.77%" in page
    assert "customers: OrdersAvailabilityFastBurn after 61.2 s" in (tmp_path / "junit.xml").read_text()
    saved = json.loads((tmp_path / "report.json").read_text())["drills"][0]
    assert saved["page_vs_alert"] == "after" and saved["budget_spent"]["orders-availability"]["burn_rate"] == 126


def test_a_drill_that_had_to_page_and_did_not_says_so():
    assert report.page_line(drill_result(page_budget_s=139, page_vs_alert="no page")) == (
        "no SLO page within its 139 s budget"
    )
    assert report.page_line(drill_result(page_vs_alert="no page")) == "no SLO page"


def test_chaoslab_alerts_shows_a_cause_attached_to_the_page_that_inhibits_it():
    groups = [
        {
            "labels": {"slo": "orders-availability"},
            "receiver": {"name": "page"},
            "alerts": [
                {
                    "fingerprint": "aa",
                    "labels": {"alertname": "OrdersAvailabilityFastBurn", "severity": "critical"},
                    "status": {"state": "active", "inhibitedBy": []},
                }
            ],
        },
        {
            "labels": {"incident": "payments-errors"},
            "receiver": {"name": "ticket"},
            "alerts": [
                {
                    "fingerprint": "bb",
                    "labels": {"alertname": "PaymentsErrors", "severity": "critical"},
                    "status": {"state": "suppressed", "inhibitedBy": ["aa"]},
                }
            ],
        },
    ]
    console = Console(width=200, record=True)
    console.print(groups_table(groups))
    lines = console.export_text().splitlines()
    [cause] = [line for line in lines if "PaymentsErrors" in line]
    assert (
        "ticket" in cause and "incident=payments-errors" in cause and "attached to OrdersAvailabilityFastBurn" in cause
    )
    [page] = [line for line in lines if "OrdersAvailabilityFastBurn" in line and "attached" not in line]
    assert "page" in page and "active" in page
    assert groups_table([]) == "Alertmanager holds no alert."
