"""The console's fault desk: list, set and clear faults in the stack's Redis, with the
catalogue's validation (ChaosStore, as `chaoslab chaos` and the services' chaos API do),
the stack's chaos token for every change, the console user named in the audit trail,
and a game day's secrecy (chaos/gameday/secrecy.py) over every listing."""

from __future__ import annotations

import hmac
from typing import Any

from pydantic import Field
from redis.exceptions import RedisError

from chaos.gameday.secrecy import GAME_KEY, HIDDEN, hides
from services.common.faults.catalogue import ALL_SERVICES, CATALOGUE
from services.common.faults.routes import ChaosDisabled, FaultRequest, Unauthorized
from services.common.faults.store import ChaosStore
from services.common.web.errors import BadInput, DependencyUnavailable

AUDIT_SHOWN = 30


class ConsoleFault(FaultRequest):
    service: str = Field(description="gateway, orders, payments, inventory or notifications")
    who: str | None = Field(None, max_length=64, description="who sets it, for the audit trail")


def catalogue() -> list[dict[str, Any]]:
    """Every fault the form offers, with its bounds (as `chaoslab chaos catalogue`)."""
    return [
        {
            "name": f.name,
            "kind": f.kind,
            "description": f.description,
            "unit": f.unit,
            "low": f.low,
            "high": f.high,
            "services": list(f.services),
        }
        for f in CATALOGUE.values()
    ]


def who_is(name: str | None, client: str) -> str:
    """The audit's `who` for a console user: `console:<name>@<address>`."""
    cleaned = "".join(c for c in (name or "").strip() if c.isalnum() or c in "-_.")[:32] or "anonymous"
    return f"console:{cleaned}@{client}"


class FaultDesk:
    def __init__(self, store: ChaosStore, token: str) -> None:
        self.store, self.token = store, token

    def check(self, given: str | None) -> None:
        """The stack's chaos token, as the services' PUT /chaos/config checks it."""
        if not self.token:
            raise ChaosDisabled("the stack was started without a chaos token: faults cannot be changed")
        if not given or not hmac.compare_digest(given.encode(), self.token.encode()):
            raise Unauthorized("changing faults needs the stack's chaos token (header X-Chaos-Token)")

    async def game(self) -> str | None:
        """The game in progress (its JSON), or None."""
        try:
            state = await self.store.redis.get(GAME_KEY)
        except (RedisError, OSError) as exc:
            raise DependencyUnavailable(f"the chaos store (Redis) is unreachable: {exc}", retry_after_s=1) from exc
        return state.decode() if isinstance(state, bytes) else state

    async def view(self, token: str | None, game: str | None = None) -> dict[str, Any]:
        """The faults and the audit trail, or only that a game is in progress when `token`
        is not the game master's."""
        if hides(game if game is not None else await self.game(), token):
            return {"hidden": True, "message": HIDDEN, "faults": [], "audit": []}
        faults = await self.store.active()
        return {
            "hidden": False,
            "message": "",
            "faults": [f.as_dict() for f in faults],
            "audit": await self.store.audit(AUDIT_SHOWN),
        }

    async def set(self, body: ConsoleFault, token: str | None, client: str) -> dict[str, Any]:
        self.check(token)
        active = await self.store.set(
            body.service,
            body.fault,
            body.value,
            ttl_s=body.ttl_s,
            persist=body.persist,
            route=body.route,
            replica=body.replica,
            who=who_is(body.who, client),
        )
        return {"set": active.as_dict(), **await self.view(token)}

    async def clear(
        self, service: str | None, fault: str | None, token: str | None, who: str | None, client: str
    ) -> dict[str, Any]:
        self.check(token)
        if service is not None and service not in ALL_SERVICES:
            raise BadInput(f"service must be one of {', '.join(ALL_SERVICES)}, not {service!r}", code="service_unknown")
        count = await self.store.clear(service, fault, who=who_is(who, client))
        return {"cleared": count, **await self.view(token)}
