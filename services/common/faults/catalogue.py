"""The fault catalogue: every fault chaoslab can inject, one definition for all.

Services, the `chaoslab chaos` command, the HTTP API and the runbook scripts' help all
read this table: its Redis key (`chaos:<service>:<fault>`), its type and bounds, its
unit, its default TTL and the services it applies to. A value out of bounds is refused
with a message naming the bound.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from services.common.web.errors import BadInput

ALL_SERVICES = ("gateway", "orders", "payments", "inventory", "notifications")
DB_SERVICES = ("orders", "payments", "inventory", "notifications")
CALLERS = {"gateway": ("orders",), "orders": ("inventory", "payments", "notifications")}

DEFAULT_TTL_S = {"training": 600, "ci": 120}
MAX_TTL_S = 86_400


@dataclass(frozen=True)
class Fault:
    name: str
    kind: str  # "rate" (0-1), "int", "float", "bool", "status", "services"
    description: str
    unit: str = ""
    low: float = 0
    high: float = 1
    services: tuple[str, ...] = ALL_SERVICES

    def parse(self, raw: Any, service: str) -> Any:
        """The typed value of `raw`, or BadInput saying which bound it broke."""
        if service not in self.services:
            raise BadInput(
                f"fault {self.name} does not apply to {service}; it applies to {', '.join(self.services)}",
                code="fault_not_applicable",
            )
        if self.kind == "bool":
            text = str(raw).strip().lower()
            if text in ("1", "true", "on", "yes"):
                return True
            if text in ("0", "false", "off", "no"):
                return False
            raise BadInput(f"{self.name} is on or off: give true/false or 1/0, not {raw!r}", code="fault_value_invalid")
        if self.kind == "services":
            names = [s.strip() for s in (raw if isinstance(raw, list) else str(raw).split(",")) if s.strip()]
            allowed = CALLERS.get(service, ())
            bad = [n for n in names if n not in allowed]
            if not names or bad:
                raise BadInput(
                    f"{self.name} on {service} takes a comma-separated list of its "
                    f"downstreams ({', '.join(allowed) or 'none'}), not {raw!r}",
                    code="fault_value_invalid",
                )
            return names
        if self.kind == "status":
            if str(raw) not in ("500", "502", "503", "504"):
                raise BadInput(
                    f"{self.name} must be one of 500, 502, 503, 504, not {raw!r}", code="fault_value_invalid"
                )
            return int(raw)
        try:
            value = float(raw) if self.kind in ("rate", "float") else _int(raw)
        except (TypeError, ValueError):
            kind = "a number" if self.kind in ("rate", "float") else "a whole number"
            raise BadInput(
                f"{self.name} must be {kind} from {_fmt(self.low)} to {_fmt(self.high)}"
                f"{' ' + self.unit if self.unit else ''}, not {raw!r}",
                code="fault_value_invalid",
            ) from None
        if not self.low <= value <= self.high:
            raise BadInput(
                f"{self.name} must be between {_fmt(self.low)} and {_fmt(self.high)}"
                f"{' ' + self.unit if self.unit else ''}; {_fmt(value)} is out of range",
                code="fault_value_out_of_range",
            )
        return value

    def encode(self, value: Any) -> str:
        """The Redis value (plain text, so redis-cli and the scripts can write it too)."""
        if self.kind == "bool":
            return "1" if value else "0"
        if self.kind == "services":
            return ",".join(value)
        return _fmt(value)


def _int(raw: Any) -> int:
    if isinstance(raw, bool):
        raise ValueError(raw)
    if isinstance(raw, float) and not raw.is_integer():
        raise ValueError(raw)
    return int(str(raw).strip()) if not isinstance(raw, (int, float)) else int(raw)


def _fmt(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


CATALOGUE: dict[str, Fault] = {
    f.name: f
    for f in (
        Fault("error_rate", "rate", "share of requests answered with error_status", "of requests"),
        Fault("error_status", "status", "status code of injected errors (default 500)", low=500, high=504),
        Fault("error_first_n", "int", "fail the next N requests, then pass (to test retries)", "requests", 0, 100_000),
        Fault("latency_ms", "int", "delay added before each request is handled", "ms", 0, 30_000),
        Fault("latency_jitter_ms", "int", "random extra delay, up to this much", "ms", 0, 30_000),
        Fault("hang_rate", "rate", "share of requests never answered until the caller gives up", "of requests"),
        Fault("reset_rate", "rate", "share of requests whose connection is dropped mid-response", "of requests"),
        Fault(
            "lock_contention_ms",
            "int",
            "inventory holds its stock row locks this long per reservation",
            "ms",
            0,
            30_000,
            services=("inventory",),
        ),
        Fault("unhealthy", "bool", "/health answers 503 while the service keeps serving"),
        Fault("crash", "bool", "the process exits once (supervision restarts it)"),
        Fault("crashloop", "bool", "the process exits shortly after every start until cleared"),
        Fault("memory_leak_mb_s", "float", "memory leaked per second (kept until restart)", "MB/s", 0, 50),
        Fault("cpu_burn_pct", "int", "share of one core burnt in the service's process", "%", 0, 100),
        Fault(
            "db_pool_hold",
            "int",
            "database connections taken from the pool and held",
            "connections",
            0,
            100,
            services=DB_SERVICES,
        ),
        Fault(
            "outbox_paused", "bool", "the outbox relay hangs: no delivery until orders restarts", services=("orders",)
        ),
        Fault(
            "outbox_drop",
            "rate",
            "share of the relay's batches to notifications marked delivered but never sent (events lost)",
            "of batches",
            services=("orders",),
        ),
        Fault(
            "block", "services", "downstreams this service cannot reach (connection refused)", services=tuple(CALLERS)
        ),
        Fault(
            "rate_limit_rps",
            "float",
            "per-client request limit at the gateway",
            "requests/s",
            0.1,
            100_000,
            services=("gateway",),
        ),
    )
}


def lookup(name: str) -> Fault:
    fault = CATALOGUE.get(name)
    if fault is None:
        raise BadInput(f"unknown fault {name!r}; known faults: {', '.join(CATALOGUE)}", code="fault_unknown")
    return fault


def redis_key(service: str, fault: str, *, route: str | None = None, replica: int | None = None) -> str:
    """`chaos:<service>:<fault>`, with `:replica=N` and/or `:route=/path` for a scoped fault."""
    key = f"chaos:{service}:{fault}"
    if replica is not None:
        key += f":replica={replica}"
    if route:
        key += f":route={route}"
    return key


def parse_key(key: str) -> tuple[str, str, int | None, str | None] | None:
    """(service, fault, replica, route) of a chaos key, or None for a key that is not one."""
    parts = key.split(":", 3)
    if len(parts) < 3 or parts[0] != "chaos":
        return None
    service, fault = parts[1], parts[2]
    replica, route = None, None
    rest = parts[3] if len(parts) == 4 else ""
    while rest:
        head, _, rest = rest.partition(":") if not rest.startswith("route=") else (rest, "", "")
        if head.startswith("replica=") and head[8:].isdigit():
            replica = int(head[8:])
        elif head.startswith("route="):
            route = head[6:]
        else:
            return None
    return service, fault, replica, route
