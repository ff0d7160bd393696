"""Slowness attributed to the hop that caused it: what a request spent waiting on others.

Every call a request makes through a Policy adds its wall time (retries and their
backoff included) to the request's stopwatch, and the answer reports the total as
`Server-Timing: downstream;dur=<ms>`. A caller's breaker judges a reply slow on the
callee's own time, the call's duration minus that: a saturated leaf trips the breaker
next to it, and every breaker above it keeps judging its own hop.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextvars import ContextVar, Token

SERVER_TIMING = "Server-Timing"
METRIC = "downstream"


class Stopwatch:
    __slots__ = ("total_s",)

    def __init__(self) -> None:
        self.total_s = 0.0


_current: ContextVar[Stopwatch | None] = ContextVar("waited_on_downstream", default=None)


def start() -> Token[Stopwatch | None]:
    """A fresh stopwatch for the request starting in this context (the middleware's)."""
    return _current.set(Stopwatch())


def stop(token: Token[Stopwatch | None]) -> None:
    _current.reset(token)


def add(seconds: float) -> None:
    """Count `seconds` spent waiting on another service (outside a request: nothing)."""
    watch = _current.get()
    if watch is not None:
        watch.total_s += seconds


def header() -> tuple[bytes, bytes] | None:
    """The current request's `Server-Timing` header, once it waited on anything."""
    watch = _current.get()
    if watch is None or watch.total_s <= 0:
        return None
    return SERVER_TIMING.lower().encode(), f"{METRIC};dur={watch.total_s * 1000:.1f}".encode()


def reported_s(headers: Mapping[str, str]) -> float:
    """The seconds a reply says its sender waited on others (0 when it says nothing or
    nothing readable: the whole call is then the callee's own)."""
    value = headers.get(SERVER_TIMING) or headers.get(SERVER_TIMING.lower())
    if not value:
        return 0.0
    for entry in value.split(","):
        name, *params = (part.strip() for part in entry.split(";"))
        if name != METRIC:
            continue
        for param in params:
            key, _, raw = param.partition("=")
            if key.strip() == "dur":
                try:
                    return max(0.0, float(raw.strip().strip('"')) / 1000)
                except ValueError:
                    return 0.0
    return 0.0
