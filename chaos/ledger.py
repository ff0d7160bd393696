"""The client ledger: what the load generator was actually answered for `POST /orders`.

One JSON line per answer received (retries and no-answers included)::

    {"t": 1718000000.123, "key": "locust-…", "status": 201, "order_id": "…", "order_status": "confirmed",
     "total_cents": 3998, "replayed": false}

`status` 0 means no answer (a timeout, a refused or dropped connection). A line may also
say how the answer came: the client's `latency_ms`, `retry_after`, the error `code`, and
the `dependency` a 503 blamed (its `X-Failed-Dependency`: a service, postgres or redis).
`chaoslab verify --ledger FILE` holds these answers against the database: an answer a
client was given is a promise the stack must keep. Standard library only: the locust
process imports this module (no locust here, so the checks are plain functions tests
call directly).
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

LEDGER_VAR = "CHAOSLAB_LEDGER"
# The final answers to POST /orders that carry an order (409 without one is a reused key).
FINAL_STATUSES = (201, 402, 409)


@dataclass(frozen=True)
class Entry:
    t: float
    key: str
    status: int
    order_id: str | None = None
    order_status: str | None = None
    total_cents: int | None = None
    replayed: bool = False
    # How the answer came (optional: older ledgers lack them): the client's latency, the
    # Retry-After header, the error code of an answer without an order, and what the
    # answer said was unavailable (X-Failed-Dependency).
    latency_ms: float | None = None
    retry_after: str | None = None
    code: str | None = None
    dependency: str | None = None

    @property
    def final(self) -> bool:
        """A final answer: it names an order the client may rely on."""
        return self.status in FINAL_STATUSES and self.order_id is not None

    @classmethod
    def from_answer(
        cls,
        key: str,
        status: int,
        content: bytes | None,
        replayed: bool,
        t: float | None = None,
        *,
        latency_ms: float | None = None,
        retry_after: str | None = None,
        code: str | None = None,
        dependency: str | None = None,
    ) -> Entry:
        """An entry from an HTTP answer (`status` 0: none) and its raw body; how it came
        (latency, Retry-After, error code, the failed dependency) when the caller knows it."""
        try:
            body = json.loads(content) if content else None
        except ValueError:
            body = None
        order = body if isinstance(body, dict) and "error" not in body else {}
        total = order.get("total_cents")
        return cls(
            t=time.time() if t is None else t,
            key=key,
            status=status,
            order_id=_text(order.get("order_id")),
            order_status=_text(order.get("status")),
            total_cents=total if isinstance(total, int) and not isinstance(total, bool) else None,
            replayed=replayed,
            latency_ms=None if latency_ms is None else round(latency_ms, 2),
            retry_after=retry_after or None,
            code=code or None,
            dependency=dependency or None,
        )


# Written only when known, so a line stays as short as the answer allows.
_OPTIONAL = frozenset({"latency_ms", "retry_after", "code", "dependency"})


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


# --- writing ------------------------------------------------------------------------------


class Writer:
    """Appends entries to a ledger file, one line each.

    The file is opened for appending and line-buffered, so each entry reaches the file in
    one write as soon as it is recorded; a lock keeps lines whole when many greenlets (or
    threads) of one process record at once. Opened on the first entry, so a run that
    places no order leaves no file.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.template = str(path)
        self.path: Path | None = None
        self._lock = threading.Lock()
        self._file: IO[str] | None = None

    def record(self, entry: Entry) -> None:
        fields = {k: v for k, v in asdict(entry).items() if v is not None or k not in _OPTIONAL}
        line = json.dumps(fields, separators=(",", ":")) + "\n"
        with self._lock:
            if self._file is None:
                # `{pid}` is resolved here, in the process that writes (locust forks its workers).
                self.path = Path(self.template.replace("{pid}", str(os.getpid())))
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._file = open(self.path, "a", buffering=1, encoding="utf-8")  # noqa: SIM115 - kept open
            self._file.write(line)

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None


def path_from_env(env: Mapping[str, str] = os.environ) -> str | None:
    """The ledger file named by `CHAOSLAB_LEDGER` (None: no ledger). A `{pid}` in it
    becomes the writing process's id, so each process of a multi-process locust run
    writes its own file."""
    return env.get(LEDGER_VAR, "").strip() or None


# --- reading ------------------------------------------------------------------------------


@dataclass
class Ledger:
    entries: list[Entry]
    skipped: int = 0  # lines that were not a whole entry (a writer killed mid-line)


def read(paths: Iterable[str | os.PathLike[str]]) -> Ledger:
    """Every entry of the files, in time order. A line that does not parse is skipped
    and counted: a writer killed mid-write leaves a partial last line."""
    ledger = Ledger([])
    for path in paths:
        for line in _lines(Path(path)):
            entry = _parse(line)
            if entry is None:
                ledger.skipped += 1
            else:
                ledger.entries.append(entry)
    ledger.entries.sort(key=lambda e: e.t)
    return ledger


def _lines(path: Path) -> Iterator[str]:
    with path.open(encoding="utf-8", errors="replace") as f:
        for line in f:
            if line.strip():
                yield line


def _parse(line: str) -> Entry | None:
    try:
        raw = json.loads(line)
    except ValueError:
        return None
    if not isinstance(raw, dict):
        return None
    t, key, status = raw.get("t"), raw.get("key"), raw.get("status")
    if not isinstance(t, (int, float)) or not isinstance(key, str) or not isinstance(status, int):
        return None
    total = raw.get("total_cents")
    return Entry(
        t=float(t),
        key=key,
        status=status,
        order_id=_text(raw.get("order_id")),
        order_status=_text(raw.get("order_status")),
        total_cents=total if isinstance(total, int) and not isinstance(total, bool) else None,
        replayed=raw.get("replayed") is True,
        latency_ms=float(latency) if isinstance(latency := raw.get("latency_ms"), (int, float)) else None,
        retry_after=_text(raw.get("retry_after")),
        code=_text(raw.get("code")),
        dependency=_text(raw.get("dependency")),
    )


# --- judging ------------------------------------------------------------------------------


@dataclass(frozen=True)
class OrderFacts:
    """What the database says about one order."""

    order_id: str
    key: str
    status: str
    total_cents: int | None


@dataclass
class Summary:
    """Counts for the caller to judge: the checks below cannot tell how many 5xx are too many."""

    answers: int = 0
    keys: int = 0
    final_answers: int = 0
    replayed: int = 0
    no_answer: int = 0
    status_5xx: int = 0
    skipped_lines: int = 0
    by_class: dict[str, int] = field(default_factory=dict)  # "2xx", "4xx", "5xx", "none"
    by_status: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def summarise(ledger: Ledger) -> Summary:
    statuses = Counter(e.status for e in ledger.entries)
    classes: Counter = Counter()
    for status, n in statuses.items():
        classes["none" if status == 0 else f"{status // 100}xx"] += n
    return Summary(
        answers=len(ledger.entries),
        keys=len({e.key for e in ledger.entries}),
        final_answers=sum(1 for e in ledger.entries if e.final),
        replayed=sum(1 for e in ledger.entries if e.replayed),
        no_answer=statuses.get(0, 0),
        status_5xx=sum(n for s, n in statuses.items() if 500 <= s < 600),
        skipped_lines=ledger.skipped,
        by_class=dict(sorted(classes.items())),
        by_status={str(s): n for s, n in sorted(statuses.items())},
    )


# (name, description); each check returns one text line per violation, naming keys and orders.
LEDGER_CHECKS: dict[str, str] = {
    "ledger_answers_match_orders": (
        "every final answer a client got (201/402/409 with an order) names an order that exists, "
        "with the status and total the client was told"
    ),
    "ledger_one_order_per_key": (
        "every key that got a final answer maps to exactly one order: all its final answers name "
        "the same order, and that order holds the key"
    ),
    "ledger_repeats_first_answer": (
        "a repeat of a key got the first final answer again: same order, status and total (a repeat "
        "naming another order is ledger_one_order_per_key's)"
    ),
}


def judge(ledger: Ledger, orders: Mapping[str, OrderFacts]) -> dict[str, list[str]]:
    """The violations of each ledger check, given the database's facts about every order
    the ledger names (`orders`, by order id; an absent id is an order that does not exist)."""
    found: dict[str, list[str]] = {name: [] for name in LEDGER_CHECKS}
    by_key: dict[str, list[Entry]] = {}
    for entry in ledger.entries:
        if entry.final:
            by_key.setdefault(entry.key, []).append(entry)

    for entry in (e for answers in by_key.values() for e in answers):
        assert entry.order_id is not None
        order = orders.get(entry.order_id)
        told = f"{entry.status} {entry.order_status} total {entry.total_cents}"
        if order is None:
            found["ledger_answers_match_orders"].append(
                f"key {entry.key}: answered {told} for order {entry.order_id}, which does not exist"
            )
        elif order.status != entry.order_status or order.total_cents != entry.total_cents:
            found["ledger_answers_match_orders"].append(
                f"key {entry.key}: answered {told} for order {entry.order_id}, "
                f"which is {order.status} total {order.total_cents}"
            )

    for key, answers in by_key.items():
        named = sorted({e.order_id for e in answers if e.order_id})
        elsewhere = sorted(
            f"{oid} (holds key {orders[oid].key})" for oid in named if oid in orders and orders[oid].key != key
        )
        if len(named) > 1 or elsewhere:
            found["ledger_one_order_per_key"].append(
                f"key {key}: answered with order(s) {', '.join(named)}"
                + (f"; not this key's: {', '.join(elsewhere)}" if elsewhere else "")
            )
        first = answers[0]
        for repeat in answers[1:]:
            if repeat.order_id == first.order_id and (repeat.status, repeat.total_cents) != (
                first.status,
                first.total_cents,
            ):
                found["ledger_repeats_first_answer"].append(
                    f"key {key}: first answered {first.status} order {first.order_id} total {first.total_cents}, "
                    f"then {repeat.status} order {repeat.order_id} total {repeat.total_cents}"
                    + (" (replayed)" if repeat.replayed else "")
                )
                break
    return found


def order_ids(ledger: Ledger) -> list[str]:
    """The order ids the final answers name (the orders `judge` needs facts about)."""
    return sorted({e.order_id for e in ledger.entries if e.final and e.order_id})
