"""Load shedding: refuse requests past `max_inflight` at once, with 429 and `Retry-After`.

A service that queues everything gets slower for everyone; one that sheds keeps the
latency of the requests it admits. It trips when more than `max_inflight` HTTP requests
are in flight; `/health` and `/metrics` are never shed. Watch `load_shed_total` and
`http_inflight_requests`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

from prometheus_client import Counter, Gauge

from services.common.web import errors

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

LOAD_SHED = Counter("load_shed_total", "Requests refused with 429 because max_inflight was reached.")
HTTP_INFLIGHT = Gauge("http_inflight_requests", "HTTP requests in flight (exempt paths not counted).")


class BackpressureMiddleware:
    """Pure ASGI middleware (no BaseHTTPMiddleware: it sits on every request's path).

    `app.add_middleware(BackpressureMiddleware, max_inflight=200, retry_after_s=1)`;
    `max_inflight <= 0` turns shedding off (in-flight requests are still counted).
    """

    def __init__(
        self,
        app: ASGIApp,
        max_inflight: int,
        retry_after_s: float,
        exempt_paths: Iterable[str] = ("/health", "/metrics"),
    ) -> None:
        self.app = app
        self.max_inflight = max_inflight
        self.exempt_paths = frozenset(exempt_paths)
        self.inflight = 0
        body = errors.error_body(
            "overloaded",
            f"more than {max_inflight} requests in flight; retry after the Retry-After delay",
        )
        # Built once: shedding must stay the cheapest thing the service does.
        self._start = {
            "type": "http.response.start",
            "status": 429,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"retry-after", errors.retry_after_header(retry_after_s).encode()),
            ],
        }
        self._body = {"type": "http.response.body", "body": body, "more_body": False}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.exempt_paths:
            await self.app(scope, receive, send)
            return
        if 0 < self.max_inflight <= self.inflight:
            LOAD_SHED.inc()
            await send(dict(self._start))
            await send(dict(self._body))
            return
        self.inflight += 1
        HTTP_INFLIGHT.inc()
        try:
            await self.app(scope, receive, send)
        finally:
            self.inflight -= 1
            HTTP_INFLIGHT.dec()
