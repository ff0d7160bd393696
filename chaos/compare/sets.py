"""The pattern sets a comparison runs: A (none) to F (all), each adding to the one before,
and custom sets (`--patterns retries,breakers`).

A set is run as a stack whose services get `PATTERNS=<its patterns>`
(services/common/resilience/patterns.py): off means off.
"""

from __future__ import annotations

from dataclasses import dataclass

from services.common.resilience.patterns import PATTERNS, UnknownPattern, describe_patterns, parse_patterns


class SetError(ValueError):
    """A set or pattern the comparison does not know; the message lists what it knows."""


@dataclass(frozen=True)
class PatternSet:
    name: str
    patterns: frozenset[str]
    summary: str  # in plain words, for --help and the report

    @property
    def env(self) -> dict[str, str]:
        """The settings the stack of this set runs with."""
        return {"PATTERNS": describe_patterns(self.patterns)}

    @property
    def label(self) -> str:
        return f"{self.name}: {describe_patterns(self.patterns)}"


def _cumulative() -> tuple[PatternSet, ...]:
    steps = (
        ("A", (), "no pattern at all: one attempt per call, no timeout, no breaker, no limit, no key, no outbox"),
        ("B", ("retries",), "retries (with backoff and a retry budget), nothing else"),
        ("C", ("timeouts",), "B + timeouts on every call and the deadline passed on to the next service"),
        ("D", ("breakers",), "C + circuit breakers (and replica ejection)"),
        ("E", ("bulkheads", "shedding"), "D + bulkheads per downstream and load shedding at the door"),
        ("F", ("idempotency", "outbox"), "E + idempotency keys and the transactional outbox: everything on"),
    )
    sets, on = [], frozenset[str]()
    for name, added, summary in steps:
        on = on | frozenset(added)
        sets.append(PatternSet(name, on, summary))
    assert sets[-1].patterns == frozenset(PATTERNS)  # F is every pattern there is
    return tuple(sets)


SETS = _cumulative()
BY_NAME = {s.name: s for s in SETS}


def choose(sets: str | None, custom: list[str]) -> list[PatternSet]:
    """The sets to run, in the order given: `sets` names some of A-F (comma-separated;
    all six when neither `sets` nor `custom` is given), each of `custom` is a pattern list."""
    chosen: list[PatternSet] = []
    if sets is not None or not custom:
        names = [n.strip().upper() for n in (sets or ",".join(BY_NAME)).split(",") if n.strip()]
        if not names:
            raise SetError(f"--sets names some of {', '.join(BY_NAME)}, e.g. A,C,F")
        unknown = [n for n in names if n not in BY_NAME]
        if unknown:
            raise SetError(f"unknown set(s) {', '.join(unknown)}: the sets are {', '.join(BY_NAME)} (see --help)")
        if len(set(names)) != len(names):
            raise SetError(f"--sets names a set twice: {sets}")
        chosen += [BY_NAME[n] for n in names]
    for i, text in enumerate(custom, 1):
        try:
            on = parse_patterns(text)
        except UnknownPattern as exc:
            raise SetError(str(exc).replace("PATTERNS", "--patterns")) from None
        chosen.append(PatternSet(f"P{i}" if len(custom) > 1 else "P", on, f"custom: {describe_patterns(on)}"))
    return chosen
