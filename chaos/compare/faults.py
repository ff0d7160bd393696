"""The faults a comparison can run, each switched on at the end of the warm-up and off
after `--duration`, the load going on for the recovery.

Faults of the catalogue (services/common/faults/catalogue.py) are set in the stack's
Redis with a TTL that outlives the fault phase; `notifications-down` stops the
notifications program (by its supervisor, ours); `spike` is no fault but a load shape
(loadtests/shapes.py): the ramp and the hold are its fault phase.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from chaos import supervision
from chaos.layout import StackLayout
from services.common.faults.store import ChaosStore, connect

WHO = "chaoslab compare"


class FaultError(ValueError):
    """A fault the comparison does not know; the message lists the ones it does."""


@dataclass(frozen=True)
class Fault:
    name: str
    summary: str
    chaos: tuple[str, str, float] | None = None  # (service, fault of the catalogue, value)
    stops: str | None = None  # a program stopped while the fault is on
    shape: str | None = None  # a locust load shape that is the fault itself


FAULTS: dict[str, Fault] = {
    f.name: f
    for f in (
        Fault(
            "payments-errors",
            "payments answers 500 to one charge in five (error_rate 0.2)",
            chaos=("payments", "error_rate", 0.2),
        ),
        Fault(
            "payments-latency",
            "payments takes 3 s more to answer every call (latency_ms 3000)",
            chaos=("payments", "latency_ms", 3000),
        ),
        Fault(
            "inventory-lock",
            "inventory holds its stock row locks 1.5 s per reservation (lock_contention_ms 1500)",
            chaos=("inventory", "lock_contention_ms", 1500),
        ),
        Fault("notifications-down", "the notifications service is stopped", stops="notifications"),
        Fault(
            "spike",
            "no fault: the load ramps to several times its users and holds there (CHAOSLAB_SHAPE=spike)",
            shape="spike",
        ),
    )
}


def lookup(name: str) -> Fault:
    try:
        return FAULTS[name]
    except KeyError:
        raise FaultError(f"unknown fault {name!r}: the faults are {', '.join(FAULTS)}") from None


def inject(layout: StackLayout, fault: Fault, ttl_s: float) -> None:
    """Switch `fault` on in the stack of `layout` (a shape needs nothing here)."""
    if fault.chaos is not None:
        service, name, value = fault.chaos
        _chaos(layout, lambda store: store.set(service, name, value, ttl_s=max(1.0, ttl_s), who=WHO))
    if fault.stops is not None:
        supervision.Supervisor(layout).stop(fault.stops)


def clear(layout: StackLayout, fault: Fault) -> None:
    """Switch `fault` off again (and start what it stopped)."""
    if fault.chaos is not None:
        service, name, _value = fault.chaos
        _chaos(layout, lambda store: store.clear(service, name, who=WHO))
    if fault.stops is not None:
        supervision.Supervisor(layout).start(fault.stops)


def _chaos(layout: StackLayout, action) -> None:
    async def go() -> None:
        store = ChaosStore(connect(layout.redis_url), layout.profile)
        try:
            await action(store)
        finally:
            await store.redis.aclose()

    asyncio.run(go())
