"""Who may call what: the service credential and the chaos token, checked at the door.

An internal service refuses (401) a request to any of its endpoints but the open ones
(health, metrics, the OpenAPI schema, reading breakers and faults) unless it carries a
service credential it accepts; every service refuses PUT and DELETE /chaos/config
without the right `X-Chaos-Token` (403 when it has none). Both are judged from the
headers alone, before the body is read or validated. `service_auth_requests_total`
counts each judgement by caller and credential, so who used an old token is answerable.
"""

from __future__ import annotations

import hmac
from typing import Any

from prometheus_client import Counter, Gauge

from services.common.web.credentials import ACCEPTED, ServiceCredentials, bearer, caller_label
from services.common.web.errors import error_body

# Open on every service: what an operator, a scraper or a schema reader needs.
OPEN_PATHS = frozenset({"/health", "/metrics", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"})
# Open for reading only (their writes need the chaos token, or have none).
OPEN_READS = frozenset({"/status/breakers", "/chaos/config"})
CHAOS_PATH = "/chaos/config"

service_auth_requests_total = Counter(
    "service_auth_requests_total",
    "Requests to internal endpoints, by the caller they name (X-Service-Name; `unknown` for a name "
    "outside the stack) and how their credential compared: current, previous (inside the grace "
    "window), expired (previous, past it), unknown or missing.",
    ["service", "caller", "credential"],
)
service_credential_generation = Gauge(
    "service_credential_generation", "The generation of the service credential this process holds.", ["service"]
)


def is_open(method: str, path: str) -> bool:
    return path in OPEN_PATHS or (path in OPEN_READS and method in ("GET", "HEAD"))


async def _refuse(send, status: int, code: str, message: str) -> None:
    body = error_body(code, message)
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if status == 401:
        headers.append((b"www-authenticate", b"Bearer" if code.startswith("service_") else b"X-Chaos-Token"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _header(scope: dict[str, Any], name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return value.decode("latin-1")
    return None


class AccessMiddleware:
    """`credentials` None: a public service (the gateway), whose routes are all open."""

    def __init__(self, app, *, service: str, credentials: ServiceCredentials | None, chaos_token: str) -> None:
        self.app = app
        self.service = service
        self.credentials = credentials
        self.chaos_token = chaos_token.encode()
        # (caller, verdict) -> the counter's child: `.labels()` locks on every call.
        self._counted: dict[tuple[str, str], Counter] = {}
        if credentials is not None:
            service_credential_generation.labels(service).set_function(lambda: credentials.current_set().generation)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        method, path = scope["method"], scope["path"]
        if path == CHAOS_PATH and method in ("PUT", "DELETE"):
            refusal = self._chaos_refusal(_header(scope, b"x-chaos-token"))
        elif self.credentials is not None and not is_open(method, path):
            refusal = self._service_refusal(scope)
        else:
            refusal = None
        if refusal:
            return await _refuse(send, *refusal)
        return await self.app(scope, receive, send)

    def _chaos_refusal(self, given: str | None) -> tuple[int, str, str] | None:
        if not self.chaos_token:
            return 403, "chaos_disabled", "this service was started without CHAOS_TOKEN: the chaos API is off"
        if not given or not hmac.compare_digest(given.encode(), self.chaos_token):
            return 401, "chaos_token_invalid", "PUT and DELETE /chaos/config need the right X-Chaos-Token header"
        return None

    def _service_refusal(self, scope) -> tuple[int, str, str] | None:
        assert self.credentials is not None
        verdict = self.credentials.judge(bearer(_header(scope, b"authorization")))
        caller = caller_label(_header(scope, b"x-service-name"), _header(scope, b"user-agent"))
        counter = self._counted.get((caller, verdict))
        if counter is None:
            counter = service_auth_requests_total.labels(self.service, caller, verdict)
            self._counted[(caller, verdict)] = counter
        counter.inc()
        if verdict in ACCEPTED:
            return None
        reason = {
            "missing": "no service credential (Authorization: Bearer <token>)",
            "expired": "the service credential was rotated and its grace window is over",
            "unknown": "the service credential is not one this service accepts",
        }[verdict]
        return 401, "service_credential_invalid", f"{self.service} is internal: {reason}"
