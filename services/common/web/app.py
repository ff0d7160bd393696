"""The FastAPI application every service is built on: errors, health, metrics, wiring.

A service hands over its settings, its routers, its dependencies' health probes and
what to start and stop with the process; everything else is the same for all five.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import asyncpg
import orjson
from fastapi import APIRouter, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import ORJSONResponse, Response
from fastapi.telemetry import TelemetryConfig
from starlette.exceptions import HTTPException as StarletteHTTPException

from services.common.data.db import DB_ERRORS, Database
from services.common.faults import routes as chaos_routes
from services.common.faults.injection import FaultInjectionMiddleware
from services.common.faults.runtime import ChaosRuntime
from services.common.resilience.adaptive import AdaptiveConfig, GradientLimit
from services.common.resilience.backpressure import BackpressureMiddleware, Limit, StaticLimit
from services.common.resilience.breaker_sync import SharedBreakers
from services.common.resilience.latency_target import LatencyTargetConfig, LatencyTargetLimit
from services.common.web import logging as log
from services.common.web import metrics
from services.common.web.auth import AccessMiddleware
from services.common.web.credentials import ServiceCredentials
from services.common.web.errors import DATABASE, FAILED_DEPENDENCY, ChaoslabError, error_body
from services.common.web.http import Downstream
from services.common.web.middleware import RequestContextMiddleware
from services.common.web.openapi import error_responses
from services.common.web.settings import ServiceSettings

HealthProbe = Callable[[], Awaitable[bool]]
# Never shed, never a latency sample: what an operator needs most during a surge.
OPS_PATHS = ("/health", "/metrics", "/status/breakers", "/chaos/config")
Lifecycle = Callable[[AsyncExitStack], Awaitable[None]]
# FastAPI's own OpenTelemetry hooks, unused here (the services export Prometheus
# metrics): left on, they look for an OpenTelemetry provider on every request.
NO_TELEMETRY: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False}


# Text PostgreSQL refuses to store (a NUL character in text or jsonb): the client's input,
# which no validator here knows to refuse.
UNSTORABLE_TEXT = (asyncpg.exceptions.CharacterNotInRepertoireError, asyncpg.exceptions.UntranslatableCharacterError)


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
    return Response(error_body(code, message), status_code=status, headers=headers, media_type="application/json")


def _describe_validation(exc: RequestValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        if err.get("type") == "json_invalid":
            parts.append(f"the body is not valid JSON ({err.get('ctx', {}).get('error', 'parse error')})")
            continue
        where = ".".join(str(p) for p in err.get("loc", ()) if p != "body") or "body"
        parts.append(f"{where}: {err.get('msg', 'invalid')}")
    return "; ".join(parts) or "the request is not valid"


def install_error_handlers(app: FastAPI) -> None:
    logger = log.get_logger("errors")

    @app.exception_handler(ChaoslabError)
    async def _chaoslab(_request: Request, exc: ChaoslabError) -> Response:
        return _error(exc.http_status, exc.code, exc.message, exc.headers())

    @app.exception_handler(RequestValidationError)
    async def _validation(_request: Request, exc: RequestValidationError) -> Response:
        return _error(422, "invalid_request", _describe_validation(exc))

    @app.exception_handler(StarletteHTTPException)
    async def _http(_request: Request, exc: StarletteHTTPException) -> Response:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return _error(exc.status_code, code, str(exc.detail))

    # Handlers keyed by class answer from inside the app; the one for Exception answers
    # from starlette's outermost layer, which then re-raises and drops the connection.
    async def _unstorable(_request: Request, _exc: Exception) -> Response:
        return _error(422, "invalid_request", "text may not hold the NUL character (\\u0000)")

    async def _database(_request: Request, exc: Exception) -> Response:
        return _error(
            503,
            "database_unavailable",
            f"the database cannot answer: {exc}",
            {"Retry-After": "1", FAILED_DEPENDENCY: DATABASE},
        )

    for text_error in UNSTORABLE_TEXT:
        app.add_exception_handler(text_error, _unstorable)
    for db_error in DB_ERRORS:
        app.add_exception_handler(db_error, _database)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        logger.error("http.unhandled", route=request.url.path, error=repr(exc), exc_info=exc)
        return _error(500, "internal_error", "an unexpected error occurred; see the service log")


def _health_router(probes: dict[str, HealthProbe], db: Database | None) -> APIRouter:
    router = APIRouter()

    @router.get("/health", responses=error_responses(503), tags=["ops"])
    async def health() -> Response:
        failing = [name for name, probe in probes.items() if not await probe()]
        if failing:
            return _error(503, "dependency_unavailable", f"unhealthy: {', '.join(failing)}")
        return Response(b'{"status":"ok"}', media_type="application/json")

    @router.get("/metrics", tags=["ops"], response_class=Response)
    async def metrics_endpoint() -> Response:
        if db:
            db.measure()  # never waits on the pool: a scrape must answer even when it is exhausted
        body, content_type = metrics.render()
        return Response(body, media_type=content_type)

    return router


def create_app(
    settings: ServiceSettings,
    *,
    routers: list[APIRouter],
    db: Database | None = None,
    chaos: ChaosRuntime | None = None,
    downstreams: tuple[Downstream, ...] = (),
    gather_breakers: tuple[Downstream, ...] = (),
    lifecycle: Lifecycle | None = None,
    public: bool = False,
) -> FastAPI:
    """Build a service around its database (started first, closed last) and its chaos
    runtime; `lifecycle(stack)` starts the service's own tasks and registers their cleanup.
    An internal service (the default) asks a service credential of every request to its
    routes; a `public` one (the gateway) leaves them open (services/common/web/auth.py)."""
    log.configure(settings.service, settings.log_level, settings.log_json)
    logger = log.get_logger("lifecycle")
    chaos = chaos or ChaosRuntime.for_service(settings)
    if db:
        chaos.on_change("db_pool_hold", db.hold)

    async def not_unhealthy() -> bool:
        return not chaos.value("unhealthy")

    probes: dict[str, HealthProbe] = {"database": db.ping} if db else {}
    probes["chaos:unhealthy"] = not_unhealthy

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            await chaos.refresh()
            background(stack, chaos.run())
            stack.push_async_callback(chaos.store.redis.aclose)
            for each in downstreams:
                background(stack, each.policy_upkeep())
            if settings.breaker_shared and downstreams:
                shared = SharedBreakers(chaos.store.redis, settings.service, settings.chaos_refresh_s)
                for each in downstreams:
                    each.policy.watch_breakers(shared.watch)
                background(stack, shared.run())
            if db:
                await db.start()
                stack.push_async_callback(db.close)
                background(stack, db.watch(settings.chaos_refresh_s))
            if lifecycle:
                await lifecycle(stack)
            logger.info("service.started", port=settings.port, profile=settings.profile)
            yield
            logger.info("service.stopping")

    app = FastAPI(
        title=f"chaoslab {settings.service}",
        lifespan=lifespan,
        default_response_class=ORJSONResponse,
        telemetry=NO_TELEMETRY,
    )
    install_error_handlers(app)
    # The service's routes first: a request is matched against the routes in order, and
    # the operational ones (whose paths no service route shares) are the rare ones.
    for router in routers:
        app.include_router(router)
    app.include_router(_health_router(probes, db))
    app.include_router(chaos_routes.build_router(chaos))
    app.include_router(breakers_router(settings.service, downstreams, gather_breakers))
    # Outermost last: context and metrics → access → load shedding → fault injection → routes.
    app.add_middleware(FaultInjectionMiddleware, chaos=chaos)
    limit = admission_limit(settings)
    if limit is not None:
        app.add_middleware(
            BackpressureMiddleware,
            limit=limit,
            queue_wait_s=settings.admission_queue_wait_s,
            retry_after_s=settings.admission_retry_after_s,
            retry_after_jitter=settings.admission_retry_after_jitter,
            retry_after_max_s=settings.admission_retry_after_max_s,
            deadline_aware=settings.admission_deadline_aware,
            exempt_paths=OPS_PATHS,
        )
    # Inside the request context (a refusal is counted and logged), before admission (a
    # refused request takes no slot) and before any body is read.
    app.add_middleware(
        AccessMiddleware,
        service=settings.service,
        credentials=None if public else ServiceCredentials.from_settings(settings),
        chaos_token=settings.chaos_token,
    )
    app.add_middleware(RequestContextMiddleware, service=settings.service, max_body_bytes=settings.max_body_bytes)
    return app


def admission_limit(settings: ServiceSettings) -> Limit | None:
    """The limit of the service's door: adaptive or latency-target (max_inflight the
    ceiling of either) or static (max_inflight); None where the service has no door
    (max_inflight 0, whatever `admission` says) or `shedding` is off.

    Only a service with a door gets a learning one, so `ADMISSION=adaptive` for the whole
    stack is the gateway's door: a door inside the chain answers its caller 429, which the
    caller's policy retries after `Retry-After`, so a shed call became a request one to two
    seconds slower instead of a refusal at the edge (bench/overload.py)."""
    if not settings.pattern_on("shedding") or settings.max_inflight <= 0:
        return None
    if settings.admission == "adaptive":
        ceiling = min(settings.adaptive_max_limit, settings.max_inflight)
        config = AdaptiveConfig(
            initial=max(settings.adaptive_min_limit, min(settings.adaptive_initial, ceiling)),
            min_limit=min(settings.adaptive_min_limit, ceiling),
            max_limit=ceiling,
            tolerance=settings.adaptive_tolerance,
            probe_interval_s=settings.adaptive_probe_interval_s,
            probe_samples=settings.adaptive_probe_samples,
            smoothing=settings.adaptive_smoothing,
        )
        return GradientLimit(config, time.monotonic)
    if settings.admission == "latency":
        target = LatencyTargetConfig(
            min_limit=min(settings.adaptive_min_limit, settings.max_inflight),
            max_limit=settings.max_inflight,
            target_s=settings.admission_latency_target_s,
        )
        return LatencyTargetLimit(target)
    return StaticLimit(settings.max_inflight)


def background(stack: AsyncExitStack, coroutine) -> None:
    """Run `coroutine` for the life of the service; cancel it at shutdown."""
    task = asyncio.create_task(coroutine)
    stack.callback(task.cancel)


def breakers_router(service: str, downstreams: tuple[Downstream, ...], gather: tuple[Downstream, ...]) -> APIRouter:
    router = APIRouter(tags=["ops"])

    @router.get("/status/breakers", responses=error_responses(503))
    async def breakers():
        """This service's breakers (state, failure and slow rates, time to half-open),
        and those of the services it gathers (the gateway shows the whole chain)."""
        view: dict[str, Any] = {
            "service": service,
            "breakers": [snap for d in downstreams for snap in d.policy.snapshot()],
        }
        if gather:
            view["downstream_services"] = {d.name: await _their_breakers(d) for d in gather}
        return view

    return router


async def _their_breakers(downstream: Downstream) -> Any:
    try:
        reply = await downstream.request("GET", "/status/breakers", retryable=False, budget_s=1.0)
    except ChaoslabError as exc:
        return {"error": {"code": exc.code, "message": exc.message}}
    return reply.json() if reply.ok else {"error": {"code": "unavailable", "message": f"status {reply.status}"}}


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(orjson.dumps(body), status_code=status, headers=headers, media_type="application/json")
