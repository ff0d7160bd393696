"""What the console reads from a running stack, each source on its own so that one
that does not answer (a killed service, Prometheus down) blanks its panel only: the
programs (supervisord or compose), the breakers, Prometheus' figures and
Alertmanager's alerts."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from chaos import runner
from chaos.compose import ComposeError, ComposeStack
from chaos.console.network import NetworkStack
from chaos.drills.engine import TIMELINE
from chaos.drills.prom import Prometheus, PrometheusUnavailable
from chaos.layout import StackLayout

Stack = StackLayout | ComposeStack | NetworkStack

# The dashboards' expressions (grafana/dashboards/overview.json), as the drills chart them.
FIGURES = {
    "success_rate": TIMELINE["order success rate"],
    "p99_s": TIMELINE["gateway p99 (s)"],
    "outbox_pending": TIMELINE["outbox pending"],
}
CALLERS = ("gateway", "orders")


async def programs(stack: Stack) -> tuple[list[runner.ProgramStatus], str | None]:
    """Each program as `chaoslab status` shows it, or no rows and why."""
    try:
        if isinstance(stack, StackLayout):
            # Read again: `chaoslab scale` adds and removes replicas in stack.json.
            return await asyncio.to_thread(lambda: runner.status(StackLayout.load(stack.run_dir))), None
        return await asyncio.to_thread(stack.status), None
    except (runner.StackError, ComposeError, OSError, ValueError) as exc:
        return [], str(exc)


async def breakers(stack: Stack, http: httpx.AsyncClient) -> dict[str, dict[str, Any] | None]:
    """Each caller's own `/status/breakers` (None when it does not answer)."""

    async def one(service: str) -> dict[str, Any] | None:
        try:
            resp = await http.get(stack.url(service) + "/status/breakers")
            return resp.json() if resp.status_code == 200 else None
        except (httpx.HTTPError, ValueError):
            return None

    views = await asyncio.gather(*(one(s) for s in CALLERS))
    return dict(zip(CALLERS, views, strict=True))


async def figures(stack: Stack) -> tuple[dict[str, float | None], str | None]:
    """The success rate, the gateway's p99 and the outbox backlog now (None: no sample,
    or NaN, as when no order finished in the window), or none and why."""
    prom = Prometheus(stack.url("prometheus"), timeout_s=2.0)

    def read(expr: str) -> float | None:
        value = prom.value(expr)
        return None if value is None or value != value else value

    try:
        values = await asyncio.gather(*(asyncio.to_thread(read, expr) for expr in FIGURES.values()))
    except PrometheusUnavailable as exc:
        return dict.fromkeys(FIGURES), str(exc)
    return dict(zip(FIGURES, values, strict=True)), None


async def alerts(stack: Stack, http: httpx.AsyncClient) -> list[dict[str, Any]] | None:
    """Alertmanager's alerts (`GET /api/v2/alerts`), newest first; None when it does not answer."""
    try:
        resp = await http.get(stack.url("alertmanager") + "/api/v2/alerts")
        resp.raise_for_status()
        raw = resp.json()
    except (httpx.HTTPError, ValueError, KeyError):
        return None
    found = [
        {
            "fingerprint": a.get("fingerprint", ""),
            "name": a["labels"].get("alertname", "?"),
            "severity": a["labels"].get("severity", ""),
            "state": a.get("status", {}).get("state", ""),
            "summary": a.get("annotations", {}).get("summary", ""),
            "runbook": a.get("annotations", {}).get("runbook_url", ""),
            "since": a.get("startsAt", ""),
        }
        for a in raw
    ]
    return sorted(found, key=lambda a: a["since"], reverse=True)
