"""The one way a service calls another: a transport, wrapped in that downstream's Policy.

Every call carries `X-Correlation-ID` and `X-Request-Deadline` (the smaller of the
caller's own deadline and this call's budget), so a callee stops work nobody awaits.
With the `timeouts` pattern off (PATTERNS) there is neither: no deadline is passed on,
no budget applies and the transport waits as long as the callee takes.
Two transports can be measured against each other (bench/orders.py): aiohttp, the
default (~5x the throughput of httpx per hop here), and httpx.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import orjson

from services.common.resilience.policy import Policy, policy_config
from services.common.web import logging as log
from services.common.web.credentials import ServiceCredentials
from services.common.web.errors import DownstreamError, DownstreamTimeout, DownstreamUnreachable
from services.common.web.middleware import request_deadline

_logger = log.get_logger("http")


@dataclass(slots=True)
class Reply:
    status: int
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body) if self.body else None

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


class Transport(Protocol):
    async def send(
        self,
        downstream: str,
        method: str,
        url: str,
        *,
        body: bytes | None,
        headers: dict[str, str],
        timeout_s: float | None,
    ) -> Reply:
        """One HTTP exchange; `timeout_s` None: no timeout at all (`timeouts` off)."""
        ...

    async def close(self) -> None: ...


class AiohttpTransport:
    def __init__(self, max_connections: int = 200) -> None:
        import aiohttp

        self._aiohttp = aiohttp
        self._max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None

    def _open(self):
        # Created on first use: a session belongs to the running event loop.
        if self._session is None:
            aiohttp = self._aiohttp
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._max_connections, ttl_dns_cache=10),
                skip_auto_headers=("User-Agent",),
            )
        return self._session

    async def send(self, downstream, method, url, *, body, headers, timeout_s) -> Reply:
        aiohttp = self._aiohttp
        try:
            async with self._open().request(
                method,
                url,
                data=body,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=timeout_s),
            ) as resp:
                return Reply(resp.status, resp.headers, await resp.read())
        except TimeoutError as exc:
            raise DownstreamTimeout(downstream, f"{downstream} did not answer within {timeout_s:.2f}s") from exc
        except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError, OSError) as exc:
            raise DownstreamUnreachable(downstream, f"{downstream} unreachable: {exc!r}") from exc

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


class HttpxTransport:
    def __init__(self, max_connections: int = 200) -> None:
        import httpx

        self._httpx = httpx
        self._client = httpx.AsyncClient(
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections)
        )

    async def send(self, downstream, method, url, *, body, headers, timeout_s) -> Reply:
        httpx = self._httpx
        try:
            resp = await self._client.request(method, url, content=body, headers=headers, timeout=timeout_s)
        except httpx.TimeoutException as exc:
            raise DownstreamTimeout(downstream, f"{downstream} did not answer within {timeout_s:.2f}s") from exc
        except (httpx.TransportError, OSError) as exc:
            raise DownstreamUnreachable(downstream, f"{downstream} unreachable: {exc!r}") from exc
        return Reply(resp.status_code, resp.headers, resp.content)

    async def close(self) -> None:
        await self._client.aclose()


def make_transport(kind: str) -> Transport:
    return HttpxTransport() if kind == "httpx" else AiohttpTransport()


def downstream(
    settings, name: str, urls: str, transport: Transport, *, chaos=None, timeout_s: float | None = None
) -> Downstream:
    """A downstream built from the service's settings (its resilience thresholds);
    `urls` is comma-separated when the downstream has several replicas."""
    config = policy_config(settings, name, timeout_s or settings.downstream_timeout_s)
    blocked = (lambda: chaos.value("block")) if chaos else (lambda: None)
    replicas_file = Path(settings.replicas_dir) / name if settings.replicas_dir else None
    credentials = ServiceCredentials.from_settings(settings)
    return Downstream(
        name,
        Policy(name, _url_list(urls), config),
        transport,
        blocked,
        replicas_file,
        credential=lambda: credentials.outgoing(settings.service),
    )


def _url_list(text: str) -> list[str]:
    return [u.strip().rstrip("/") for u in text.replace("\n", ",").split(",") if u.strip()]


class Downstream:
    """A named downstream service: its replicas, its Policy, and the shared transport.

    `credential()` gives the headers that show the service credential (the current one
    each time: a rotation reaches the next call). `blocked()` is the partition fault:
    while it names this downstream, every attempt fails as a refused connection would,
    before anything is sent (the policy sees it).
    """

    def __init__(
        self,
        name: str,
        policy: Policy,
        transport: Transport,
        blocked: Callable[[], list[str] | None] = lambda: None,
        replicas_file: Path | None = None,
        credential: Callable[[], dict[str, str]] = dict,
    ) -> None:
        self.name = name
        self.credential = credential
        self.policy = policy
        self.transport = transport
        self.blocked = blocked
        self.replicas_file = replicas_file

    async def policy_upkeep(self) -> None:
        """Keep the replica list current: the native stack's replicas file (written by
        `chaoslab scale`), else every address the host name resolves to (compose)."""
        while True:
            try:
                if self.replicas_file is not None and self.replicas_file.exists():
                    urls = _url_list(self.replicas_file.read_text())
                    if urls:
                        self.policy.set_replicas(urls)
                    await asyncio.sleep(1.0)
                    continue
                await self.policy.refresh_replicas()
            except OSError as exc:
                _logger.warning("replicas.refresh_failed", downstream=self.name, error=str(exc))
            await asyncio.sleep(10.0)

    async def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        retryable: bool,
        budget_s: float | None = None,
    ) -> Reply:
        """Send one logical request (retried per the policy when `retryable`).

        `budget_s` caps how long this call may take overall; it never outlives the
        deadline of the request being served. Both are ignored when `timeouts` is off.
        """
        now_wall = time.time()
        timeouts = self.policy.config.timeouts
        deadline_wall = request_deadline.get() if timeouts else None
        if budget_s is not None and timeouts:
            own = now_wall + budget_s
            deadline_wall = own if deadline_wall is None else min(deadline_wall, own)
        out_headers = {"Content-Type": "application/json", **self.credential()}
        cid = log.correlation_id.get()
        if cid:
            out_headers["X-Correlation-ID"] = cid
        if deadline_wall is not None:
            out_headers["X-Request-Deadline"] = str(int(deadline_wall * 1000))
        if headers:
            out_headers.update(headers)
        body = None if json is None else orjson.dumps(json)
        deadline_mono = None if deadline_wall is None else time.monotonic() + (deadline_wall - now_wall)

        sent = False

        async def send(base_url: str, timeout_s: float | None) -> Reply:
            nonlocal sent
            if self.name in (self.blocked() or ()):  # a partition: refused before sending
                raise DownstreamUnreachable(self.name, f"{self.name} unreachable: connection refused (chaos: block)")
            sent = True
            return await self.transport.send(
                self.name, method, base_url + path, body=body, headers=out_headers, timeout_s=timeout_s
            )

        try:
            return await self.policy.call(send, retryable=retryable, deadline=deadline_mono)
        except DownstreamError as exc:
            exc.sent = sent
            raise
