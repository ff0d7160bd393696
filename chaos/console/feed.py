"""The live state the page shows, gathered once per tick for every viewer: programs,
breakers, figures (with a few minutes of history for the charts), Alertmanager's
alerts and the arrivals and departures among them, faults and the drill. Each viewer
gets it as server-sent events, with the faults hidden or not for their token."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import deque
from collections.abc import AsyncIterator
from typing import Any

import httpx

from chaos.console import gather, topology
from chaos.console.drills import DrillDesk
from chaos.console.faults import FaultDesk
from services.common.web import logging as log
from services.common.web.errors import DependencyUnavailable

LOG = log.get_logger("console")
FIRST_REFRESH_S = 30
HISTORY = 150  # points per chart
ALERT_EVENTS = 40


class Feed:
    def __init__(self, stack: gather.Stack, faults: FaultDesk, drills: DrillDesk, interval_s: float) -> None:
        self.stack, self.faults, self.drills, self.interval_s = stack, faults, drills, interval_s
        self.state: dict[str, Any] = {}
        self.game: str | None = None
        self.history: deque[dict[str, Any]] = deque(maxlen=HISTORY)
        self.alert_events: deque[dict[str, Any]] = deque(maxlen=ALERT_EVENTS)
        self._seen_alerts: dict[str, dict[str, Any]] | None = None
        self.tick = asyncio.Event()
        self.ready = asyncio.Event()  # set by the first refresh
        self._task: asyncio.Task[None] | None = None
        self.http = httpx.AsyncClient(timeout=2.0)

    async def start(self) -> None:
        """Refresh in the background from now on: the page is served at once, even while a
        source is slow to answer (a name that does not resolve, a hung service)."""
        self._task = asyncio.create_task(self._run())

    async def close(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.http.aclose()

    async def _run(self) -> None:
        while True:
            started = time.monotonic()
            try:
                await self.refresh()
            except Exception as exc:  # noqa: BLE001 - the page must keep updating; the next tick retries
                self.state = {**self.state, "status_error": f"the console could not refresh: {exc!r}"}
                LOG.error("console.refresh_failed", error=repr(exc))
            await asyncio.sleep(max(0.1, self.interval_s - (time.monotonic() - started)))

    async def refresh(self) -> None:
        (rows, status_error), views, (figures, figures_error), alerts = await asyncio.gather(
            gather.programs(self.stack),
            gather.breakers(self.stack, self.http),
            gather.figures(self.stack),
            gather.alerts(self.stack, self.http),
        )
        try:
            self.game = await self.faults.game()
            faults: dict[str, Any] | None = await self.faults.view(None, self.game) if not self.game else None
            faults_error = ""
        except DependencyUnavailable as exc:
            faults, faults_error = None, exc.message
        now = time.time()
        self.history.append({"t": now, **figures})
        self._note_alerts(alerts, now)
        self.state = {
            "at": now,
            "profile": self.stack.profile,
            "boxes": [b.as_dict() for b in topology.boxes(rows)],
            "status_error": status_error,
            "edges": topology.edge_states(views),
            "figures": figures,
            "figures_error": figures_error,
            "history": list(self.history),
            "alerts": alerts,
            "alert_events": list(self.alert_events),
            "open_faults": faults,  # None during a game: each viewer's token decides
            "faults_error": faults_error,
            "drill": self.drills.view(),
        }
        self.ready.set()
        self.tick.set()
        self.tick = asyncio.Event()

    def _note_alerts(self, alerts: list[dict[str, Any]] | None, now: float) -> None:
        if alerts is None:
            return
        current = {a["fingerprint"]: a for a in alerts}
        if self._seen_alerts is not None:
            for fp, a in current.items():
                if fp not in self._seen_alerts:
                    self.alert_events.appendleft({"at": now, "event": "firing", "name": a["name"], **_sev(a)})
            for fp, a in self._seen_alerts.items():
                if fp not in current:
                    self.alert_events.appendleft({"at": now, "event": "resolved", "name": a["name"], **_sev(a)})
        else:
            for a in current.values():
                self.alert_events.appendleft({"at": now, "event": "firing", "name": a["name"], **_sev(a)})
        self._seen_alerts = current

    async def snapshot(self, token: str | None) -> dict[str, Any]:
        """The latest state, its faults as `token` may see them (after the first refresh)."""
        try:
            await asyncio.wait_for(self.ready.wait(), FIRST_REFRESH_S)
        except TimeoutError:
            raise DependencyUnavailable(
                f"the console has not gathered the stack's state within {FIRST_REFRESH_S} s; see its log",
                retry_after_s=5,
            ) from None
        state = dict(self.state)
        if state.get("open_faults") is None and not state.get("faults_error"):
            try:
                state["faults"] = await self.faults.view(token, self.game)
            except DependencyUnavailable as exc:
                state["faults_error"] = exc.message
                state["faults"] = None
        else:
            state["faults"] = state.get("open_faults")
        state.pop("open_faults", None)
        return state

    async def events(self, token: str | None) -> AsyncIterator[str]:
        """Server-sent events: one `snapshot` per tick, forever."""
        while True:
            tick = self.tick
            yield f"event: snapshot\ndata: {json.dumps(await self.snapshot(token))}\n\n"
            await tick.wait()


def _sev(alert: dict[str, Any]) -> dict[str, str]:
    return {"severity": alert["severity"], "summary": alert["summary"]}
