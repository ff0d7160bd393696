"""A drill seen from the customers' side: the SLO pages that fire during it, when they
came against the incident's own alert, and the error budget it spent (docs/slo.md).

An incident's own alert names the cause (PaymentsErrors); an SLO page names the symptom
customers feel (OrdersAvailabilityFastBurn). The drill watches the pages of the SLOs the
incident spends from the inject on, says whether the page came before the cause alert,
with it (within two evaluations, one per rule group) or after it, and prices the drill in
error budget: the share of a whole period's budget that its bad share of order requests,
from the inject to the recovery, spends at that rate (chaos/slo/budget.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from chaos.drills.prom import Prometheus
from chaos.slo import budget, rules, spec


@dataclass
class PageWatch:
    """When each page of the incident's SLOs first fired, in seconds since the inject.
    A page already firing at the inject belongs to an earlier trouble and is not timed."""

    pages: dict[str, str]  # alert name -> SLO name
    before: set[str] = field(default_factory=set)
    fired_s: dict[str, float] = field(default_factory=dict)

    @classmethod
    def of(cls, slos: tuple[str, ...]) -> PageWatch:
        return cls({spec.by_name(name).alert(spec.PAGE): name for name in slos})

    def armed(self, firing: set[str]) -> None:
        """At the inject: the pages firing now are not the drill's."""
        self.before = firing & set(self.pages)

    def see(self, firing: set[str], since_inject_s: float) -> None:
        for alert in self.pages:
            if alert in firing and alert not in self.before and alert not in self.fired_s:
                self.fired_s[alert] = round(since_inject_s, 1)

    def first(self) -> tuple[str, float] | None:
        """The page that fired first and when, if any did."""
        return min(self.fired_s.items(), key=lambda item: item[1], default=None)


def order(page_s: float | None, alert_s: float | None, together_s: float) -> str:
    """Whether the page came `before`, `with` (within `together_s`) or `after` the
    incident's own alert; `no page` when none fired, `page only` without the alert."""
    if page_s is None:
        return "no page"
    if alert_s is None:
        return "page only"
    if abs(page_s - alert_s) <= together_s:
        return "with"
    return "before" if page_s < alert_s else "after"


def spent(prom: Prometheus, slo: spec.Slo, start: float, end: float, period_s: float) -> dict[str, float]:
    """What the drill from `start` to `end` (Unix seconds) cost `slo`: the bad share of
    its events, the burn rate, and the share of a whole period's budget spent."""
    duration_s = max(end - start, 1.0)
    bad = prom.value(rules.error_ratio(slo, f"{round(duration_s)}s"), at=end)
    if bad is None or bad != bad:  # no event in the window (NaN): nothing was spent
        bad = 0.0
    return {
        "seconds": round(duration_s, 1),
        "bad_share": round(bad, 4),
        "burn_rate": round(budget.burn_rate(bad, slo.budget), 2),
        "budget_spent": round(budget.spent(bad, slo.budget, duration_s, period_s), 5),
    }
