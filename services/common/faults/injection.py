"""Request faults, applied before a request reaches the service's routes.

latency (+ jitter) → hang (no answer until the caller's deadline) → error_first_n →
error_rate (answered with error_status) → reset (connection dropped mid-response).
Operational paths (/health, /metrics, /chaos/config, /status/breakers, the OpenAPI
docs) are never touched, so a fault can always be seen and cleared.
"""

from __future__ import annotations

import asyncio
import random
import time

from services.common.faults.runtime import ChaosRuntime
from services.common.web.errors import error_body
from services.common.web.middleware import applied_fault, request_deadline

EXEMPT_PREFIXES = ("/health", "/metrics", "/chaos/", "/status/", "/openapi.json", "/docs", "/redoc")
HANG_LIMIT_S = 120.0


class FaultInjectionMiddleware:
    def __init__(self, app, *, chaos: ChaosRuntime) -> None:
        self.app = app
        self.chaos = chaos

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["path"].startswith(EXEMPT_PREFIXES) or not self.chaos.faults:
            return await self.app(scope, receive, send)
        path, value = scope["path"], self.chaos.value
        delay_ms = (value("latency_ms", path) or 0) + random.uniform(0, value("latency_jitter_ms", path) or 0)
        if delay_ms:
            applied_fault.set("latency_ms")
            await asyncio.sleep(delay_ms / 1000)
        if random.random() < (value("hang_rate", path) or 0):
            applied_fault.set("hang_rate")
            deadline = request_deadline.get()
            await asyncio.sleep(min(HANG_LIMIT_S, (deadline - time.time() + 1) if deadline else HANG_LIMIT_S))
            return await _error(send, 504, "injected hang outlived the caller's deadline")
        if value("error_first_n", path) and await self._take_first_n(path):
            applied_fault.set("error_first_n")
            return await _error(send, value("error_status", path) or 500, "injected error (error_first_n)")
        if random.random() < (value("error_rate", path) or 0):
            applied_fault.set("error_rate")
            return await _error(send, value("error_status", path) or 500, "injected error (error_rate)")
        if random.random() < (value("reset_rate", path) or 0):
            applied_fault.set("reset_rate")
            return await _reset(send)
        return await self.app(scope, receive, send)

    async def _take_first_n(self, path: str) -> bool:
        """Atomically count down the shared key: exactly N requests fail, across replicas."""
        key = self.chaos.key_of("error_first_n", path)
        if key is None:
            return False
        try:
            left = await self.chaos.store.redis.decr(key)
            if left <= 0:
                await self.chaos.store.redis.delete(key)
            return left >= 0
        except Exception:  # noqa: BLE001 - a vanished store means no fault
            return False


async def _error(send, status: int, message: str) -> None:
    body = error_body("injected_fault", f"chaos: {message}")
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _reset(send) -> None:
    """Promise a body, send part of it, and stop: the server closes the connection and
    the caller sees it dropped mid-response."""
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json"), (b"content-length", b"1000")],
        }
    )
    await send({"type": "http.response.body", "body": b'{"partial":', "more_body": False})
