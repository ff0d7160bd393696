"""The request path every service shares, as one pure ASGI middleware.

It binds the correlation id (created when the caller sent none), refuses bodies over
the size limit (413) and requests whose caller's deadline has already passed (504),
then records `http_requests_total`, `http_request_duration_seconds` and one log line.
An answer carries `Server-Timing: downstream;dur=<ms>` when its request waited on other
services (services/common/resilience/waited.py).
"""

from __future__ import annotations

import time
import uuid
from contextvars import ContextVar

from prometheus_client import Counter, Histogram

from services.common.resilience import waited
from services.common.web import logging as log
from services.common.web.errors import error_body
from services.common.web.metrics import http_request_duration_seconds, http_requests_total

# Absolute deadline (Unix epoch seconds) the caller gave us, if any.
request_deadline: ContextVar[float | None] = ContextVar("request_deadline", default=None)
# The fault injected into the current request, if any, for its log line.
applied_fault: ContextVar[str | None] = ContextVar("applied_fault", default=None)

_QUIET = {"/health", "/metrics"}
_logger = log.get_logger("http")


_READ = frozenset({b"content-length", b"x-correlation-id", b"x-request-deadline"})


def _headers(scope) -> dict[bytes, str]:
    """The request headers this middleware reads (the first of each), in one pass."""
    found: dict[bytes, str] = {}
    for key, value in scope["headers"]:
        if key in _READ and key not in found:
            found[key] = value.decode("latin-1")
    return found


async def _answer(send, status: int, code: str, message: str, extra=()) -> None:
    body = error_body(code, message)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *extra],
        }
    )
    await send({"type": "http.response.body", "body": body})


class RequestContextMiddleware:
    def __init__(self, app, *, service: str, max_body_bytes: int) -> None:
        self.app = app
        self.service = service
        self.max_body_bytes = max_body_bytes
        # (route, method, status) -> the two metrics' children. `.labels()` validates and
        # locks on every call; a route template, a method and a status are few.
        self._children: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}

    def _metrics(self, route: str, method: str, status: int) -> tuple[Counter, Histogram]:
        key = (route, method, status)
        children = self._children.get(key)
        if children is None:
            children = (
                http_requests_total.labels(self.service, route, method, str(status)),
                http_request_duration_seconds.labels(self.service, route, method),
            )
            self._children[key] = children
        return children

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started = time.perf_counter()
        headers = _headers(scope)
        cid = headers.get(b"x-correlation-id") or str(uuid.uuid4())
        cid_token = log.correlation_id.set(cid)
        deadline_token = request_deadline.set(None)
        fault_token = applied_fault.set(None)
        waited_token = waited.start()
        status_holder = [500]
        cid_header = (b"x-correlation-id", cid.encode("latin-1"))

        async def send_wrapper(message):
            if message["type"] == "http.response.start":
                status_holder[0] = message["status"]
                timing = waited.header()
                extra = (cid_header, timing) if timing else (cid_header,)
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        try:
            refusal = self._refusal(headers)
            if refusal is None and b"content-length" not in headers:
                receive, refusal = await self._buffer_unsized(receive)
            if refusal:
                status, code, message = refusal
                await _answer(send_wrapper, status, code, message)
            else:
                await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            path = getattr(route, "path", None) or "unmatched"
            elapsed = time.perf_counter() - started
            status = status_holder[0]
            requests, duration = self._metrics(path, scope["method"], status)
            requests.inc()
            duration.observe(elapsed)
            if path not in _QUIET:
                _logger.info(
                    "http.request",
                    route=path,
                    method=scope["method"],
                    status=status,
                    duration_ms=round(elapsed * 1000, 2),
                    fault=applied_fault.get(),
                )
            log.correlation_id.reset(cid_token)
            request_deadline.reset(deadline_token)
            applied_fault.reset(fault_token)
            waited.stop(waited_token)

    def _refusal(self, headers: dict[bytes, str]) -> tuple[int, str, str] | None:
        length = headers.get(b"content-length")
        if length and length.isdigit() and int(length) > self.max_body_bytes:
            return 413, "body_too_large", f"request body is {length} bytes; the limit is {self.max_body_bytes}"
        raw_deadline = headers.get(b"x-request-deadline")
        if raw_deadline:
            try:
                deadline = int(raw_deadline) / 1000
            except ValueError:
                return 400, "invalid_deadline", "X-Request-Deadline must be Unix epoch milliseconds"
            if deadline <= time.time():
                return 504, "deadline_exceeded", "the caller's X-Request-Deadline has already passed"
            request_deadline.set(deadline)
        return None

    async def _buffer_unsized(self, receive):
        """A chunked body has no length to check up front: read it (up to the limit)
        before the app sees it, and hand the app a replay of what was read."""
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return receive, None
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            more = message.get("more_body", False)
            if size > self.max_body_bytes:
                return receive, (413, "body_too_large", f"request body is over the {self.max_body_bytes}-byte limit")
        body = b"".join(chunks)
        replayed = False

        async def replay():
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        return replay, None
