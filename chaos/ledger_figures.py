"""Figures from a client ledger (chaos/ledger.py): what the load generator saw.

Plain functions on ledger entries, shared by `chaoslab compare` (chaos/compare/) and the
overload benchmark (bench/overload.py): orders by the window of their first answer and
how many ended confirmed, nearest-rank percentiles, answers by status and error code.
An order is a key: a retry with the same key is the same order, whatever it was answered.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from chaos import ledger


def percentile(values: Sequence[float], p: float) -> float:
    """The `p` quantile (0-1) by nearest rank; NaN when there are no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(p * len(ordered)) - 1))]


def between(entries: Iterable[ledger.Entry], start: float, end: float) -> list[ledger.Entry]:
    return [e for e in entries if start <= e.t < end]


def confirmed(entry: ledger.Entry) -> bool:
    return entry.status == 201 and entry.order_status == "confirmed"


@dataclass
class Window:
    start: float
    orders: int  # keys first answered in the window
    confirmed: int  # of those, the ones that ended confirmed (a retry may have done it)

    @property
    def success(self) -> float:
        return self.confirmed / self.orders if self.orders else math.nan


def order_windows(entries: Sequence[ledger.Entry], start: float, end: float, width_s: float) -> list[Window]:
    """Orders (keys) by the window of their first answer, and how many ended confirmed;
    only whole windows between `start` and `end`."""
    first: dict[str, float] = {}
    done: set[str] = set()
    for e in entries:
        first.setdefault(e.key, e.t)
        if confirmed(e):
            done.add(e.key)
    count = int((end - start) // width_s)
    windows = [Window(start + i * width_s, 0, 0) for i in range(count)]
    for key, t in first.items():
        i = int((t - start) // width_s)
        if 0 <= i < count:
            windows[i].orders += 1
            windows[i].confirmed += key in done
    return windows


def status_counts(entries: Iterable[ledger.Entry]) -> dict[str, int]:
    """Answers by status, error code and the dependency blamed: `201`, `429 overloaded`,
    `503 breaker_open (orders)`, `0`."""
    counts: dict[str, int] = {}
    for e in entries:
        label = " ".join(
            part for part in (str(e.status), e.code, f"({e.dependency})" if e.dependency else None) if part
        )
        counts[label] = counts.get(label, 0) + 1
    return dict(sorted(counts.items()))


def latencies(entries: Iterable[ledger.Entry], admitted: bool) -> list[float]:
    """Client latencies (ms) of admitted answers (not 429, not no-answer) or of 429s."""
    return [
        e.latency_ms for e in entries if e.latency_ms is not None and e.status != 0 and (e.status != 429) == admitted
    ]
