"""Load shedding: refuse requests past the concurrency limit at once, with 429 and `Retry-After`.

A service that queues everything gets slower for everyone; one that sheds keeps the
latency of the requests it admits. It trips when the HTTP requests in flight reach the
limit; `/health` and `/metrics` are never shed. The limit is an object: a fixed one
(`StaticLimit`, `MAX_INFLIGHT`) or one that learns the service's capacity from the
latency of the requests it admitted (`services/common/resilience/adaptive.py`): each
admitted request's time from admission to the end of its response is a sample.

With `queue_wait_s`, a request that finds the limit reached may first wait that long for
a slot, in a short queue that sheds at once while it stands
(`services/common/resilience/admission_queue.py`); a static limit has no queue.

The `Retry-After` of a refusal follows the excess (`services/common/resilience/
shed_pacing.py`): from `retry_after_s`, longer while the door sheds more requests than it
admits, up to `retry_after_max_s`.

With `deadline_aware`, a request whose caller's deadline leaves less time than the
service's usual latency (the limit's `usual_latency_s`) is refused at once with 504: it
could not be answered in time, and working on it would only take a slot from one that can.

Watch `load_shed_total`, `http_inflight_requests` and, for the adaptive limit,
`concurrency_limit` and `concurrency_min_rtt_seconds`.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any, Protocol

from prometheus_client import Counter, Gauge

from services.common.resilience.admission_queue import AdmissionQueue
from services.common.resilience.shed_pacing import ShedPacing
from services.common.web import errors
from services.common.web.middleware import request_deadline

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

LOAD_SHED = Counter("load_shed_total", "Requests refused with 429 because the concurrency limit was reached.")
HTTP_INFLIGHT = Gauge("http_inflight_requests", "HTTP requests in flight (exempt paths not counted).")


class Limit(Protocol):
    """What the door asks of a limit: how many requests may be in flight now (0: no
    limit), how many may wait for a slot, and a sample after each admitted request finished."""

    @property
    def limit(self) -> int: ...

    @property
    def queue_capacity(self) -> int: ...

    @property
    def usual_latency_s(self) -> float: ...

    def update(self, rtt_s: float, inflight: int) -> int: ...


class StaticLimit:
    """A fixed limit (`MAX_INFLIGHT`); `0` admits everything. Learns nothing."""

    learns = False
    usual_latency_s = 0.0  # knows no latency: deadline-aware admission refuses nothing
    queue_capacity = 0  # past a fixed limit, refused at once

    def __init__(self, limit: int) -> None:
        self.limit = limit

    def update(self, rtt_s: float, inflight: int) -> int:
        return self.limit


class BackpressureMiddleware:
    """Pure ASGI middleware (no BaseHTTPMiddleware: it sits on every request's path).

    `app.add_middleware(BackpressureMiddleware, max_inflight=200, retry_after_s=1)`, or
    `limit=GradientLimit(...), queue_wait_s=0.025` for an adaptive one whose excess
    waits up to 25 ms for a slot; a limit of 0 turns shedding off (in-flight requests are
    still counted).
    """

    def __init__(
        self,
        app: ASGIApp,
        max_inflight: int = 0,
        retry_after_s: float = 1.0,
        *,
        limit: Limit | None = None,
        queue_wait_s: float = 0.0,
        deadline_aware: bool = False,
        retry_after_jitter: bool = False,
        retry_after_max_s: float = 0.0,
        exempt_paths: Iterable[str] = ("/health", "/metrics"),
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.app = app
        self.limit: Limit = limit if limit is not None else StaticLimit(max_inflight)
        self._learns = bool(getattr(self.limit, "learns", True))
        self.deadline_aware = deadline_aware
        self.exempt_paths = frozenset(exempt_paths)
        self._clock = clock
        self.inflight = 0
        self.queue = AdmissionQueue(
            lambda: self.limit.queue_capacity, queue_wait_s, abandoned=self._free_slot, clock=clock
        )
        what = f"{max_inflight} requests" if limit is None else "as many requests as it admits at once"
        body = errors.error_body("overloaded", f"the service has {what} in flight; retry after the Retry-After delay")
        self.pacing = ShedPacing(retry_after_s, retry_after_max_s, clock=clock)
        # With `retry_after_jitter`, half the answers say one second more, so that clients
        # shed together do not all come back together (Retry-After has whole seconds only).
        self._jitter = (0, 1) if retry_after_jitter else (0,)
        # Built once per Retry-After: shedding must stay the cheapest thing the service does.
        self._starts: dict[int, Message] = {}
        self._shed = 0
        self._length = str(len(body)).encode()
        self._body = {"type": "http.response.body", "body": body, "more_body": False}

    @property
    def max_inflight(self) -> int:
        """The limit in force now."""
        return self.limit.limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.exempt_paths:
            await self.app(scope, receive, send)
            return
        if 0 < self.limit.limit <= self.inflight:
            if not await self.queue.wait():  # True: a slot was handed over, counted already
                LOAD_SHED.inc()
                self._shed += 1
                seconds = errors.retry_after_seconds(self.pacing.shed())
                await send(dict(self._start(seconds + self._jitter[self._shed % len(self._jitter)])))
                await send(dict(self._body))
                return
        else:
            self._take_slot()
        self.pacing.admitted()
        admitted_with = self.inflight
        started = self._clock()
        finished = False
        try:
            if self.deadline_aware and await self._too_late(send):
                return
            await self.app(scope, receive, send)
            finished = True
        finally:
            self._free_slot()
            if finished and self._learns:
                self.limit.update(self._clock() - started, admitted_with)
                self._admit_waiters()  # the limit may have grown

    def _start(self, retry_after: int) -> Message:
        start = self._starts.get(retry_after)
        if start is None:
            start = self._starts[retry_after] = {
                "type": "http.response.start",
                "status": 429,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", self._length),
                    (b"retry-after", str(retry_after).encode()),
                ],
            }
        return start

    def _take_slot(self) -> None:
        self.inflight += 1
        HTTP_INFLIGHT.inc()

    def _free_slot(self) -> None:
        self.inflight -= 1
        HTTP_INFLIGHT.dec()
        self._admit_waiters()

    def _admit_waiters(self) -> None:
        """Hand the free slots to waiting requests (newest first)."""
        if len(self.queue):
            for _ in range(self.queue.hand_over(self.limit.limit - self.inflight)):
                self._take_slot()

    async def _too_late(self, send: Send) -> bool:
        """Refuse (504) a request whose deadline leaves less than the usual latency."""
        deadline = request_deadline.get()
        usual = self.limit.usual_latency_s
        if deadline is None or usual <= 0:
            return False
        left = deadline - time.time()
        if left >= usual:
            return False
        body = errors.error_body(
            "deadline_exceeded",
            f"{max(left, 0) * 1000:.0f} ms left before the caller's deadline; "
            f"this service usually needs {usual * 1000:.0f} ms",
        )
        await send(
            {
                "type": "http.response.start",
                "status": 504,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body, "more_body": False})
        return True
