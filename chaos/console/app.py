"""The console's HTTP surface: the page, its JSON API and its event stream. Routes only
translate HTTP to the desks (faults.py, drills.py) and the feed, and back; reads are
open, changes need the stack's chaos token (`X-Chaos-Token`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Header, Query, Request
from fastapi.responses import FileResponse, StreamingResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field

from chaos.console import drills, faults
from chaos.console.feed import Feed
from chaos.console.gather import Stack
from services.common.faults.store import ChaosStore, connect
from services.common.web.app import install_error_handlers
from services.common.web.openapi import error_responses

STATIC = Path(__file__).resolve().parent / "static"


class DrillRequest(BaseModel):
    incident: str = Field(description="an incident id of the runbook (GET /api/drills lists them)")
    who: str | None = Field(None, max_length=64, description="who launches it")


def create_app(stack: Stack, *, target: str = "native", interval_s: float | None = None) -> FastAPI:
    """The console for `stack`; it refreshes every `interval_s` (1 s in ci, 2 s in training)."""
    store = ChaosStore(connect(stack.redis_url), stack.profile)
    fault_desk = faults.FaultDesk(store, stack.chaos_token)
    reports = stack.run_dir / "console" / "drills"
    reports.mkdir(parents=True, exist_ok=True)
    drill_desk = drills.DrillDesk(stack.run_dir, target, reports)
    feed = Feed(stack, fault_desk, drill_desk, interval_s or (1.0 if stack.profile == "ci" else 2.0))

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await feed.start()
        try:
            yield
        finally:
            await drill_desk.stop()
            await feed.close()
            await store.redis.aclose()

    app = FastAPI(title="chaoslab console", lifespan=lifespan)
    install_error_handlers(app)

    def client(request: Request) -> str:
        return request.client.host if request.client else "unknown"

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    @app.get("/api/snapshot")
    async def snapshot(x_chaos_token: str | None = Header(None)) -> dict[str, Any]:
        """Everything the page shows, as of the last refresh."""
        return await feed.snapshot(x_chaos_token)

    @app.get("/api/stream")
    async def stream(token: str | None = Query(None, description="the game master's token, to see faults")):
        """Server-sent events: a `snapshot` at every refresh (EventSource sends no header,
        hence the token in the query)."""
        return StreamingResponse(
            feed.events(token), media_type="text/event-stream", headers={"Cache-Control": "no-store"}
        )

    @app.get("/api/catalogue")
    async def catalogue() -> list[dict[str, Any]]:
        return faults.catalogue()

    @app.get("/api/faults", responses=error_responses(503))
    async def list_faults(x_chaos_token: str | None = Header(None)) -> dict[str, Any]:
        return await fault_desk.view(x_chaos_token)

    @app.put("/api/faults", responses=error_responses(401, 403, 422, 503))
    async def set_fault(
        body: faults.ConsoleFault, request: Request, x_chaos_token: str | None = Header(None)
    ) -> dict[str, Any]:
        result = await fault_desk.set(body, x_chaos_token, client(request))
        await feed.refresh()
        return result

    @app.delete("/api/faults", responses=error_responses(401, 403, 422, 503))
    async def clear_faults(
        request: Request,
        service: str | None = Query(None),
        fault: str | None = Query(None),
        who: str | None = Query(None, max_length=64),
        x_chaos_token: str | None = Header(None),
    ) -> dict[str, Any]:
        result = await fault_desk.clear(service, fault, x_chaos_token, who, client(request))
        await feed.refresh()
        return result

    @app.get("/api/drills")
    async def list_drills() -> dict[str, Any]:
        return {"incidents": drills.incidents(), **drill_desk.view()}

    @app.post("/api/drills", status_code=202, responses=error_responses(401, 403, 409, 422))
    async def launch_drill(
        body: DrillRequest, request: Request, x_chaos_token: str | None = Header(None)
    ) -> dict[str, Any]:
        fault_desk.check(x_chaos_token)
        return await drill_desk.start(body.incident, faults.who_is(body.who, client(request)))

    @app.delete("/api/drills", responses=error_responses(401, 403))
    async def stop_drill(x_chaos_token: str | None = Header(None)) -> dict[str, Any]:
        """Interrupt the running drill; it rolls its faults back first (like Ctrl-C)."""
        fault_desk.check(x_chaos_token)
        return await drill_desk.stop()

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.mount("/reports", StaticFiles(directory=reports, html=True), name="reports")
    return app
