"""Faults set, listed and cleared through the services' own API (/chaos/config).

Where Redis is not ours to reach (a cluster, `--target k8s`), `chaoslab chaos` talks to
each service's GET|PUT|DELETE /chaos/config with the stack's X-Chaos-Token instead of
writing the keys itself. It offers the methods of ChaosStore that those commands use,
so they read the same either way; the service validates against the same catalogue.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from chaos.layout import SERVICES
from services.common.faults.store import ActiveFault
from services.common.web.errors import ChaoslabError


class ApiRefused(ChaoslabError):
    """The service's answer, as a ChaoslabError with its code and status."""

    def __init__(self, service: str, status: int, body: Any) -> None:
        error = body.get("error", {}) if isinstance(body, dict) else {}
        super().__init__(f"{service}: {error.get('message') or f'HTTP {status}'}")
        self.code = error.get("code", "chaos_api_error")
        self.http_status = status


class ChaosApi:
    def __init__(self, url_of: Callable[[str], str], token: str, timeout_s: float = 10.0) -> None:
        self.url_of = url_of
        self.client = httpx.AsyncClient(timeout=timeout_s, headers={"X-Chaos-Token": token})

    async def _call(self, method: str, service: str, **kwargs: Any) -> list[ActiveFault]:
        if service not in SERVICES:
            raise ApiRefused(service, 422, {"error": {"message": f"not a service: use one of {', '.join(SERVICES)}"}})
        try:
            answer = await self.client.request(method, f"{self.url_of(service)}/chaos/config", **kwargs)
        except httpx.HTTPError as exc:
            raise ApiRefused(service, 503, {"error": {"message": f"/chaos/config does not answer: {exc}"}}) from exc
        body = answer.json() if answer.headers.get("content-type", "").startswith("application/json") else None
        if answer.status_code >= 400 or not isinstance(body, dict):
            raise ApiRefused(service, answer.status_code, body)
        return [ActiveFault(**fault) for fault in body.get("faults", [])]

    async def set(
        self,
        service: str,
        fault: str,
        raw_value: Any,
        *,
        ttl_s: float | None = None,
        persist: bool = False,
        route: str | None = None,
        replica: int | None = None,
        who: str | None = None,  # the service records the caller's address instead
    ) -> ActiveFault:
        body = {"fault": fault, "value": raw_value, "ttl_s": ttl_s, "persist": persist, "route": route}
        faults = await self._call("PUT", service, json={**body, "replica": replica})
        found = next((f for f in faults if (f.fault, f.route, f.replica) == (fault, route, replica)), None)
        if found is None:
            raise ApiRefused(service, 502, {"error": {"message": f"the answer to PUT does not list {fault}"}})
        return found

    async def active(self, service: str | None = None) -> list[ActiveFault]:
        return [f for each in ([service] if service else SERVICES) for f in await self._call("GET", each)]

    async def clear(self, service: str | None = None, fault: str | None = None, who: str | None = None) -> int:
        cleared = 0
        for each in [service] if service else SERVICES:
            before = [f for f in await self._call("GET", each) if fault in (None, f.fault)]
            if before:
                await self._call("DELETE", each, params={"fault": fault} if fault else None)
                cleared += len(before)
        return cleared

    async def audit(self, limit: int = 50) -> list[dict[str, str]]:
        raise ApiRefused("chaos", 501, {"error": {"message": "the audit stream is read from Redis: not over the API"}})

    async def aclose(self) -> None:
        await self.client.aclose()
