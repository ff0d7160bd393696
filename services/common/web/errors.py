"""Typed errors that every service maps to HTTP in one place.

Each error carries the snake_case `code` and the HTTP status of the error body
`{"error": {"code": ..., "message": ...}}`, and, where a retry makes sense, how long
the client should wait (`retry_after_s`, sent as `Retry-After`).
"""

from __future__ import annotations

import math

import orjson


class ChaoslabError(Exception):
    """An error that has a clear HTTP answer."""

    code = "internal_error"
    http_status = 500

    def __init__(self, message: str, *, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after_s = retry_after_s

    def headers(self) -> dict[str, str]:
        if self.retry_after_s is None:
            return {}
        return {"Retry-After": retry_after_header(self.retry_after_s)}


class BadInput(ChaoslabError):
    code = "invalid_request"
    http_status = 422

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        if code:
            self.code = code


class NotFound(ChaoslabError):
    code = "not_found"
    http_status = 404


class Conflict(ChaoslabError):
    http_status = 409

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


# The header of a 503 that names what could not answer: a service, postgres or redis.
FAILED_DEPENDENCY = "X-Failed-Dependency"
DATABASE = "postgres"
CHAOS_STORE = "redis"


class DependencyUnavailable(ChaoslabError):
    """Something this service needs (a database, a downstream) cannot answer now;
    `dependency` names it, sent as `X-Failed-Dependency`, where it is known."""

    code = "dependency_unavailable"
    http_status = 503

    def __init__(self, message: str, *, dependency: str | None = None, retry_after_s: float | None = None) -> None:
        super().__init__(message, retry_after_s=retry_after_s)
        self.dependency = dependency

    def headers(self) -> dict[str, str]:
        headers = super().headers()
        if self.dependency:
            headers[FAILED_DEPENDENCY] = self.dependency
        return headers


class DownstreamError(DependencyUnavailable):
    """A call to another service failed; `downstream` names it."""

    def __init__(self, downstream: str, message: str, *, retry_after_s: float | None = None) -> None:
        super().__init__(message, dependency=downstream, retry_after_s=retry_after_s)
        self.downstream = downstream
        # False when no attempt left this process (breaker open, bulkhead full): the
        # callee cannot have acted on it. Set by the client that made the call.
        self.sent = True


class DownstreamTimeout(DownstreamError):
    code = "downstream_timeout"


class DownstreamUnreachable(DownstreamError):
    """Connection refused, reset or dropped before an answer."""

    code = "downstream_unreachable"


class BreakerOpen(DownstreamError):
    """The downstream's circuit breaker is open: the call was not sent."""

    code = "breaker_open"


class BulkheadFull(DownstreamError):
    """Too many calls to this downstream are already in flight: the call was not sent."""

    code = "bulkhead_full"


class DeadlineExceeded(ChaoslabError):
    """The caller's `X-Request-Deadline` has passed: nobody is waiting for this answer."""

    code = "deadline_exceeded"
    http_status = 504


def retry_after_seconds(seconds: float) -> int:
    """`Retry-After` takes whole seconds; round up so a client never comes back early."""
    return max(1, math.ceil(seconds))


def retry_after_header(seconds: float) -> str:
    return str(retry_after_seconds(seconds))


def error_body(code: str, message: str) -> bytes:
    return orjson.dumps({"error": {"code": code, "message": message}})
