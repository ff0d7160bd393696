"""The SLOs of prometheus/slos.yml, and the two burn-rate alerts every SLO gets.

An SLO is a ratio of good events to all events (its SLI) that must stay at or above its
objective over its window; `1 - objective` is the error budget, the share of events that
may go bad in that window. The definitions follow Sloth's spec: a query for the rate of
bad events and one for the rate of all events, with `{{window}}` where the range goes.

Each SLO is alerted on twice, the multiwindow, multi-burn-rate way of the SRE workbook
(chapter 5, "Alerting on SLOs"). A burn rate is how fast the budget goes: 1 spends it in
exactly the window, 14.4 spends 2 % of a 30-day budget in one hour. An alert fires while
the error ratio exceeds `burn rate x budget` over a long window (so a blip cannot fire it)
and over a short one (so it stops soon after the fix):

- fast burn, a page: 14.4 x over 1 h and 5 m (2 % of the budget in an hour);
- slow burn, a ticket: 6 x over 6 h and 30 m (5 % of the budget in six hours).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import yaml

from chaos import prometheus_config

REPO = Path(__file__).resolve().parents[2]
DEFINITIONS = REPO / "prometheus" / "slos.yml"
WINDOW = "{{window}}"  # where an SLI query takes its range window
_NAME = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")


@dataclass(frozen=True)
class Tier:
    """One multiwindow burn-rate alert: it fires while the error ratio over both windows
    exceeds `burn_rate` times the error budget, and has for `for_` (the ci profile shrinks
    the windows and `for_` like every other rule's)."""

    name: str  # "fast" or "slow", in the alert's name
    notify: str  # the Alertmanager receiver: "page" or "ticket"
    severity: str  # the alert's severity label, which routes it there
    burn_rate: float
    long: str
    short: str
    for_: str
    spends: str  # how much budget it has spent once it fires, in words


TIERS = (
    Tier("fast", "page", "critical", 14.4, "1h", "5m", "1m", "2 % of the budget in 1 h"),
    Tier("slow", "ticket", "warning", 6.0, "6h", "30m", "1m", "5 % of the budget in 6 h"),
)
PAGE, TICKET = TIERS


@dataclass(frozen=True)
class Slo:
    name: str
    objective: float  # percent of good events, e.g. 99.5
    window: str  # the error budget's period, e.g. "30d"
    description: str
    error_query: str  # the rate of bad events, with WINDOW for its range
    total_query: str  # the rate of all events, with WINDOW for its range

    @property
    def budget(self) -> float:
        """The error budget: the share of events that may be bad (0.005 for 99.5 %)."""
        return round(1 - self.objective / 100, 9)

    def threshold(self, tier: Tier) -> float:
        """The error ratio above which `tier` fires: its burn rate times the budget."""
        return round(tier.burn_rate * self.budget, 9)

    def alert(self, tier: Tier) -> str:
        """orders-availability, fast -> OrdersAvailabilityFastBurn."""
        return "".join(part.capitalize() for part in self.name.split("-")) + f"{tier.name.capitalize()}Burn"

    def query(self, which: str, window: str) -> str:
        """The SLI's `error` or `total` query over `window` (a Prometheus duration)."""
        text = self.error_query if which == "error" else self.total_query
        return " ".join(text.split()).replace(WINDOW, window)


def burn_windows() -> list[str]:
    """The burn-rate alerts' windows, shortest first."""
    return sorted({w for tier in TIERS for w in (tier.short, tier.long)}, key=prometheus_config.seconds)


def windows(slo: Slo) -> list[str]:
    """The range windows an SLO's error ratio is recorded over, shortest first: the
    burn-rate alerts' and the SLO's own period (for the budget remaining)."""
    return sorted({*burn_windows(), slo.window}, key=prometheus_config.seconds)


def parse(text: str) -> tuple[Slo, ...]:
    """The SLOs of a definitions file; a ValueError names what is wrong."""
    data = yaml.safe_load(text) or {}
    out = []
    for raw in data.get("slos", []):
        name = str(raw.get("name", ""))
        if not _NAME.match(name):
            raise ValueError(f"SLO name {name!r}: lower-case words joined by '-'")
        objective = float(raw["objective"])
        if not 0 < objective < 100:
            raise ValueError(f"{name}: objective {objective} is not a percentage between 0 and 100")
        prometheus_config.seconds(str(raw["window"]))  # raises on a bad duration
        sli = raw["sli"]
        for key in ("error_query", "total_query"):
            if WINDOW not in str(sli.get(key, "")):
                raise ValueError(f"{name}: sli.{key} must take its range window from {WINDOW}")
        out.append(
            Slo(
                name=name,
                objective=objective,
                window=str(raw["window"]),
                description=" ".join(str(raw.get("description", "")).split()),
                error_query=str(sli["error_query"]),
                total_query=str(sli["total_query"]),
            )
        )
    names = [s.name for s in out]
    if not out or len(names) != len(set(names)):
        raise ValueError(f"SLO names must be unique and there must be at least one: {names}")
    return tuple(out)


@cache
def slos() -> tuple[Slo, ...]:
    """The repository's SLOs (prometheus/slos.yml)."""
    return parse(DEFINITIONS.read_text())


def by_name(name: str) -> Slo:
    for slo in slos():
        if slo.name == name:
            return slo
    raise KeyError(f"no SLO {name!r} in {DEFINITIONS.relative_to(REPO)}")
