"""Which resilience patterns a service runs: the `PATTERNS` setting, read at start.

Each pattern can be switched off on its own, to see what it buys (`chaoslab compare`).
Off means off: the pattern's objects are not built, its code is not on the request's
path and it emits no metric.

- `retries`: one attempt per call; no retry, no retry budget.
- `timeouts`: no per-attempt timeout and no deadline passed on: a call waits as long as
  its callee takes.
- `breakers`: no circuit breaker and no replica ejection: every call is sent.
- `bulkheads`: no limit on the calls in flight to one downstream.
- `shedding`: no admission limit at a service's door (static or adaptive).
- `idempotency`: a key no longer makes a repeat the same request: orders takes a retried
  order again, payments charges a retried charge again.
- `outbox`: orders sends an order's event itself, once, right after its commit; an event
  it cannot deliver then is lost.

`PATTERNS` lists the patterns that are on, comma-separated (`PATTERNS=retries,timeouts`),
or `all` (the default) or `none`. `RESILIENCE=off` is shorthand for switching off the
patterns around a call (`CALL_PATTERNS`: retries, breakers, bulkheads; the timeout
stays), and `RESILIENCE_OFF_FOR=payments,inventory` does that for the named downstreams only.
"""

from __future__ import annotations

PATTERNS = ("retries", "timeouts", "breakers", "bulkheads", "shedding", "idempotency", "outbox")
# What `RESILIENCE=off` (or `RESILIENCE_OFF_FOR`) switches off around a downstream's calls.
CALL_PATTERNS = frozenset({"retries", "breakers", "bulkheads"})


class UnknownPattern(ValueError):
    """`PATTERNS` names something that is not a pattern; the message lists the patterns."""


def parse_patterns(text: str) -> frozenset[str]:
    """The patterns `text` switches on: `all`, `none`, or names separated by commas
    (spaces and `+` allowed: `retries+timeouts`). Raises UnknownPattern otherwise."""
    names = [n.strip().lower() for n in text.replace("+", ",").split(",") if n.strip()]
    if not names:
        raise UnknownPattern("PATTERNS is empty: give `all`, `none` or some of " + ", ".join(PATTERNS))
    if names in (["all"], ["none"]):
        return frozenset(PATTERNS) if names == ["all"] else frozenset()
    unknown = [n for n in names if n not in PATTERNS]
    if unknown:
        raise UnknownPattern(
            f"unknown pattern(s) {', '.join(unknown)} in PATTERNS; the patterns are {', '.join(PATTERNS)} "
            "(or all, or none)"
        )
    return frozenset(names)


def describe_patterns(on: frozenset[str]) -> str:
    """`on` in the canonical order, as PATTERNS would say it: `retries,timeouts`, `all`, `none`."""
    if on >= frozenset(PATTERNS):
        return "all"
    return ",".join(p for p in PATTERNS if p in on) or "none"
