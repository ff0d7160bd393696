"""GET|PUT|DELETE /chaos/config: a service's faults over HTTP (docs/contracts.md).

PUT and DELETE need `X-Chaos-Token` (401 without it or with a wrong one); a service
started without a token refuses them (403), so chaos is never open by accident. The
token is checked at the door (services/common/web/auth.py), before the body is read:
a malformed body without the token is a 401, not a 422.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Header, Query, Request
from pydantic import BaseModel, Field

from services.common.faults.runtime import ChaosRuntime
from services.common.web.errors import ChaoslabError
from services.common.web.openapi import error_responses


class Unauthorized(ChaoslabError):
    code = "chaos_token_invalid"
    http_status = 401


class ChaosDisabled(ChaoslabError):
    code = "chaos_disabled"
    http_status = 403


class FaultRequest(BaseModel):
    fault: str = Field(description="a fault of the catalogue, e.g. error_rate")
    value: Any = Field(description="its value, within the catalogue's bounds")
    ttl_s: float | None = Field(None, description="seconds until it expires (default 600 in training)")
    persist: bool = Field(False, description="keep it until cleared (no TTL); must be asked for")
    route: str | None = Field(None, description="only requests under this path")
    replica: int | None = Field(None, description="only this replica")


# Declared for the OpenAPI schema; AccessMiddleware has checked it before the route runs.
CHAOS_TOKEN_HEADER = Header(None, description="the stack's chaos token (checked before the body is read)")


def build_router(chaos: ChaosRuntime) -> APIRouter:
    router = APIRouter(tags=["chaos"])

    async def current() -> dict[str, Any]:
        faults = await chaos.store.active(chaos.service)
        return {"service": chaos.service, "replica": chaos.replica, "faults": [f.as_dict() for f in faults]}

    @router.get("/chaos/config", responses=error_responses(503))
    async def get_config():
        return await current()

    @router.put("/chaos/config", responses=error_responses(401, 403, 422, 503))
    async def put_config(body: FaultRequest, request: Request, x_chaos_token: str | None = CHAOS_TOKEN_HEADER):
        client = request.client.host if request.client else "unknown"
        await chaos.store.set(
            chaos.service,
            body.fault,
            body.value,
            ttl_s=body.ttl_s,
            persist=body.persist,
            route=body.route,
            replica=body.replica,
            who=f"http:{client}",
        )
        await chaos.refresh()
        return await current()

    @router.delete("/chaos/config", responses=error_responses(401, 403, 422, 503))
    async def delete_config(
        request: Request, fault: str | None = Query(None), x_chaos_token: str | None = CHAOS_TOKEN_HEADER
    ):
        client = request.client.host if request.client else "unknown"
        await chaos.store.clear(chaos.service, fault, who=f"http:{client}")
        await chaos.refresh()
        return await current()

    return router
