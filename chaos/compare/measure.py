"""The figures of one set, from what its clients saw and what its database holds, and
which set did worse than the one before it. Plain functions: tests feed them ledgers.

Every figure is about orders, and an order is a client key (a retry with the same key
is the same order to the client, whatever the stack made of it):

- confirmed: orders first asked during the fault or the recovery whose client was told
  `201 confirmed`;
- success rate: of the orders first asked during the fault, the share confirmed (a
  retry may have done it); and the same per 10 s window over the whole run;
- latency: p50, p95 and p99 of the orders first asked during the fault that were
  confirmed: from the start of an order's first request to the answer that confirmed
  it, retries and their waits included, as its client timed it (a fast refusal is no
  fast order: refusals show in the success rate);
- retry amplification: calls that reached payments (its POSTs: charges, and the voids
  that compensate failed ones) during the fault, per order first asked then (1.0: one
  call per order);
- duplicate orders: orders beyond the first for one key; double charges: successful
  charges beyond the first for one key, whether for one order or for its duplicates;
  events lost: confirmed orders whose event never reached notifications (all three
  from the database, once the stack has settled, so over the whole run; a set that
  takes more orders takes more repeats, so they are compared per order of the run);
- time to recover: from the fault's end until every 5 s window's success is back within
  5 % of the warm-up's and stays so (None: not within the recovery phase).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from chaos import ledger
from chaos.ledger_figures import order_windows, percentile

WINDOW_S = 10.0  # the success rate's windows
RECOVERY_BUCKET_S = 5.0  # the recovery's finer windows
RECOVERED_SHARE = 0.95  # back when a window's success is at least this share of the warm-up's
TAIL_S = 5.0  # orders first asked this close to the end had no time to finish: not judged


@dataclass(frozen=True)
class Phases:
    """When one set's load and fault began and ended (Unix time, seconds)."""

    start: float
    fault: float
    cleared: float
    end: float

    @property
    def fault_s(self) -> float:
        return self.cleared - self.fault


@dataclass
class Figures:
    """One set's measures (NaN or None where there was nothing to measure)."""

    keys: int = 0  # every order of the run, warm-up included (the counts' denominator)
    orders: int = 0
    confirmed: int = 0
    success_rate: float = math.nan
    worst_window: float = math.nan
    baseline_success: float = math.nan
    p50_ms: float = math.nan
    p95_ms: float = math.nan
    p99_ms: float = math.nan
    payments_calls: float = math.nan
    amplification: float = math.nan
    duplicate_orders: int = 0
    double_charges: int = 0
    events_lost: int = 0
    recovery_s: float | None = None
    # (seconds from the fault's start, success or None when no order began then, orders)
    windows: list[tuple[float, float | None, int]] = field(default_factory=list)

    def value(self, key: str) -> float | None:
        return getattr(self, key)


def from_ledger(entries: Sequence[ledger.Entry], phases: Phases) -> Figures:
    """Every figure the client ledger gives (the database's and payments' come later)."""
    figures = Figures()
    measured = _first_answers(entries, phases.fault, phases.end)
    figures.keys = len({e.key for e in entries})
    figures.orders = len(measured)
    done = {e.key for e in entries if _confirmed(e)}
    figures.confirmed = len(measured & done)
    during = order_windows(entries, phases.fault, phases.cleared, phases.fault_s) if phases.fault_s > 0 else []
    figures.success_rate = during[0].success if during else math.nan
    warm = order_windows(entries, phases.start, phases.fault, phases.fault - phases.start)
    figures.baseline_success = warm[0].success if warm and phases.fault > phases.start else math.nan
    origin = phases.start + ((phases.fault - phases.start) % WINDOW_S)  # windows fall on the fault's start
    windows = order_windows(entries, origin, phases.end - TAIL_S, WINDOW_S)
    figures.windows = [
        (round(w.start - phases.fault, 3), None if not w.orders else round(w.success, 4), w.orders) for w in windows
    ]
    inside = [w for w in windows if phases.fault <= w.start and w.start + WINDOW_S <= phases.cleared]
    in_fault = [w.success for w in inside if w.orders]
    figures.worst_window = min(in_fault) if in_fault else math.nan
    timed = order_latencies_ms(entries, phases.fault, phases.cleared)
    figures.p50_ms, figures.p95_ms, figures.p99_ms = (percentile(timed, p) for p in (0.5, 0.95, 0.99))
    figures.recovery_s = recovery_s(entries, phases, figures.baseline_success)
    return figures


def order_latencies_ms(entries: Sequence[ledger.Entry], start: float, end: float) -> list[float]:
    """For each order first asked between `start` and `end` and confirmed: milliseconds
    from the start of its first request (its answer's time less its latency) to the first
    answer that confirmed it."""
    first: dict[str, ledger.Entry] = {}
    done: dict[str, float] = {}
    for e in entries:
        first.setdefault(e.key, e)
        if _confirmed(e):
            done.setdefault(e.key, e.t)
    timed = []
    for key, confirmed_at in done.items():
        asked = first[key]
        if start <= asked.t < end:
            began = asked.t - (asked.latency_ms or 0.0) / 1000
            timed.append(round((confirmed_at - began) * 1000, 2))
    return timed


def _confirmed(entry: ledger.Entry) -> bool:
    return entry.status == 201 and entry.order_status == "confirmed"


def _first_answers(entries: Sequence[ledger.Entry], start: float, end: float) -> set[str]:
    first: dict[str, float] = {}
    for e in entries:
        first.setdefault(e.key, e.t)
    return {key for key, t in first.items() if start <= t < end}


def recovery_s(entries: Sequence[ledger.Entry], phases: Phases, baseline: float) -> float | None:
    """Seconds from the fault's end until every 5 s window's success (by each order's
    first answer) is at least 95 % of the warm-up's, to the end; 0 when it never fell,
    None when it is not back by the end (the last seconds, too young to judge, left out)."""
    wanted = RECOVERED_SHARE * (1.0 if math.isnan(baseline) else baseline)
    buckets = [b for b in order_windows(entries, phases.cleared, phases.end - TAIL_S, RECOVERY_BUCKET_S) if b.orders]
    if not buckets:
        return None
    back_at: float | None = None
    for bucket in buckets:
        if bucket.success < wanted:
            back_at = None
        elif back_at is None:
            back_at = bucket.start
    if back_at is None:
        return None
    return round(back_at - phases.cleared, 1)


def amplification(payments_calls: float, orders: int) -> float:
    """Calls that reached payments per order (NaN without orders)."""
    return payments_calls / orders if orders else math.nan


# --- what each measure means, and when a set did worse than the one before -------------------------


@dataclass(frozen=True)
class Measure:
    key: str
    title: str
    unit: str  # "%" for shares kept as 0-1
    better: Literal["higher", "lower"]
    margin: float  # differences within max(margin, relative × previous) are noise
    relative: float
    explain: str
    per_order: bool = False  # a count over the whole run: compared per order of the run

    def compared(self, figures: Figures) -> float | None:
        """The value `worse` compares: per order of the run for a count of harm."""
        value = figures.value(self.key)
        if not self.per_order or value is None:
            return value
        return value / figures.keys if figures.keys else math.nan

    def show(self, value: float | None) -> str:
        if value is None:
            return "never" if self.key == "recovery_s" else "-"
        if isinstance(value, float) and math.isnan(value):
            return "-"
        if self.unit == "%":
            return f"{value:.1%}"
        if self.unit == "×":
            return f"{value:.2f}×"
        if self.unit in ("ms", "s"):
            return f"{value:,.0f} {self.unit}" if value >= 10 else f"{value:.1f} {self.unit}"
        return f"{value:,.0f}"


MEASURES: tuple[Measure, ...] = (
    Measure("confirmed", "orders confirmed", "", "higher", 1, 0.05,
            "orders first asked during the fault or the recovery whose client was told 201 confirmed"),
    Measure("success_rate", "success rate during the fault", "%", "higher", 0.02, 0.0,
            "of the orders first asked during the fault, the share that ended confirmed"),
    Measure("worst_window", "worst 10 s window during the fault", "%", "higher", 0.05, 0.0,
            "the lowest success rate of a 10 s window inside the fault"),
    Measure("p50_ms", "p50 latency", "ms", "lower", 20, 0.2,
            "median time to a confirmed order (first request to confirming answer, retries included), "
            "orders first asked during the fault"),
    Measure("p95_ms", "p95 latency", "ms", "lower", 20, 0.2, "95th percentile, same orders"),
    Measure("p99_ms", "p99 latency", "ms", "lower", 20, 0.2, "99th percentile, same orders"),
    Measure("amplification", "retry amplification", "×", "lower", 0.05, 0.0,
            "calls reaching payments (charges and voids) per order, during the fault"),
    Measure("duplicate_orders", "duplicate orders", "", "lower", 0, 0.25,
            "orders beyond the first for one client key", per_order=True),
    Measure("double_charges", "double charges", "", "lower", 0, 0.25,
            "successful charges beyond the first for one client key", per_order=True),
    Measure("events_lost", "events lost", "", "lower", 0, 0.25,
            "confirmed orders whose event never reached notifications", per_order=True),
    Measure("recovery_s", "time to recover", "s", "lower", 5, 0.25,
            "from the fault's end until the success rate is back (within 5 % of the warm-up's) and stays"),
)  # fmt: skip
BY_KEY = {m.key: m for m in MEASURES}


def _number(value: Any) -> float | None:
    """A comparable number: None for no figure (NaN); recovery's None (never) is infinite."""
    if value is None:
        return math.inf
    value = float(value)
    return None if math.isnan(value) else value


def worse(measure: Measure, previous: float | None, current: float | None) -> bool:
    """Whether `current` is worse than `previous` beyond the noise margin."""
    before, now = _number(previous), _number(current)
    if before is None or now is None or before == now:
        return False
    if math.isinf(now) or math.isinf(before):
        return math.isinf(now) if measure.better == "lower" else math.isinf(before)
    margin = max(measure.margin, measure.relative * abs(before))
    return now > before + margin if measure.better == "lower" else now < before - margin


def better(measure: Measure, previous: float | None, current: float | None) -> bool:
    """Whether `current` is better than `previous` beyond the noise margin."""
    return worse(measure, current, previous)


def changes(names: Sequence[str], figures: Sequence[Figures]) -> list[dict[str, Any]]:
    """Each set against the one before it, measure by measure: what got worse and what
    got better beyond the noise; `line` says it in words ("B worse than A on ...")."""
    found = []
    for i in range(1, len(names)):
        before, now = figures[i - 1], figures[i]
        for measure in MEASURES:
            was, became = measure.compared(before), measure.compared(now)
            for verdict, test in (("worse", worse), ("better", better)):
                if test(measure, was, became):
                    line = (
                        f"{names[i]} {verdict} than {names[i - 1]} on {measure.title}: "
                        f"{measure.show(now.value(measure.key))} against {measure.show(before.value(measure.key))}"
                    )
                    if measure.per_order:
                        line += f" ({_share(became)} of its orders against {_share(was)})"
                    found.append(
                        {
                            "set": names[i],
                            "than": names[i - 1],
                            "measure": measure.key,
                            "verdict": verdict,
                            "line": line,
                        }
                    )
    return found


def _share(value: float | None) -> str:
    return "-" if value is None or math.isnan(value) else f"{value:.1%}"
