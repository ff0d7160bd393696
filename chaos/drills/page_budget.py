"""The budget an incident's SLO page is held to, in the traffic the drill really had.

The catalogue's budget (chaos/drills/budgets.py) assumes steady traffic. When the page's
long window held more order requests a second before the inject than flow since (a busy
drill just before, in ci's back-to-back run, or clients backing off on Retry-After), the
same bad share takes longer to pass the threshold. The drill measures both rates in
Prometheus (the SLI's own queries) and holds the page to the longer of the two budgets.
"""

from __future__ import annotations

from chaos import prometheus_config
from chaos.drills import budgets
from chaos.drills.model import Incident
from chaos.drills.prom import Prometheus, PrometheusUnavailable
from chaos.slo import spec as slo_spec

# How many scrapes after the inject the rates since are measured: a rate needs two
# samples, and the first seconds hold the fault's propagation more than the fault.
SCRAPES_BEFORE_MEASURING = 4


class PageBudget:
    def __init__(self, prom: Prometheus, incident: Incident, profile: str, catalogue_s: float) -> None:
        assert incident.page is not None
        self.prom, self.incident, self.profile = prom, incident, profile
        self.slo = slo_spec.by_name(incident.page.slo)
        self.catalogue_s = catalogue_s
        self.long_window_s = budgets.page_long_window_s(incident, profile)
        self.measure_after_s = SCRAPES_BEFORE_MEASURING * prometheus_config.seconds(
            prometheus_config.SCRAPE_INTERVAL[profile]
        )
        self.prior_rate: float | None = None
        self.budget_s = catalogue_s
        self.note = ""

    @property
    def bound_s(self) -> float:
        """No budget can pass this: the long window's fill term is under the window itself."""
        return self.catalogue_s + budgets.MARGIN_RATIO * self.long_window_s

    def _rate(self, which: str, window_s: float) -> float | None:
        """The SLI's `total` or `error` events a second over the last `window_s`."""
        try:
            return self.prom.value(self.slo.query(which, f"{max(1, int(window_s))}s"))
        except PrometheusUnavailable:
            return None

    def before_inject(self) -> None:
        """What the long window holds as the fault goes in."""
        self.prior_rate = self._rate("total", self.long_window_s)

    def at(self, took_s: float) -> float:
        """The budget in force `took_s` after the inject: the catalogue's, or longer when
        the traffic measured since pages later against the window before."""
        if self.prior_rate is None or took_s < self.measure_after_s:
            return self.budget_s
        rate = self._rate("total", took_s)
        if not rate:
            return self.budget_s
        bad_share = (self._rate("error", took_s) or 0.0) / rate
        try:
            measured = budgets.page_for_traffic(
                self.incident, self.profile, bad_share=bad_share, rate=rate, prior_rate=self.prior_rate
            )
        except ValueError:  # the traffic measured never pages: the catalogue's budget holds
            return self.budget_s
        self.budget_s = max(self.catalogue_s, measured)
        self.note = (
            f"budget {measured:.0f} s for the traffic measured: {self.prior_rate:.1f} order requests/s in the "
            f"{self.long_window_s:.0f} s window before the inject, {rate:.1f}/s since, {bad_share:.0%} bad"
            if measured > self.catalogue_s
            else ""
        )
        return self.budget_s
