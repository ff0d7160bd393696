"""`chaoslab chaos ...`: set, list and clear faults in the stack's Redis.

Writes go straight to Redis (the same keys the services read), so a fault can be
cleared even while the service it breaks is down, as in a crash loop. On a cluster
(`--target k8s`) they go through the services' own /chaos/config instead.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import re
from typing import Annotated

import typer
from rich.table import Table

from chaos.chaos_api import ChaosApi
from chaos.cli_common import RunDir, Target, console, fail, stack_of
from chaos.gameday.secrecy import HIDDEN, faults_hidden
from chaos.k8s import K8sError
from chaos.k8s_stack import K8sStack
from services.common.faults.catalogue import CATALOGUE, MAX_TTL_S
from services.common.faults.store import ChaosStore, connect
from services.common.web.errors import ChaoslabError

app = typer.Typer(help="Set, list and clear faults (see `chaoslab chaos catalogue`).", no_args_is_help=True)

_TTL = re.compile(r"^(\d+(?:\.\d+)?)(s|m|h)?$")


def parse_ttl(text: str | None) -> tuple[float | None, bool]:
    """'90', '90s', '5m', '1h' or 'forever' -> (seconds, persist)."""
    if text is None:
        return None, False
    if text == "forever":
        return None, True
    match = _TTL.match(text.strip())
    if not match:
        raise fail(f"--ttl takes seconds or a duration such as 30s, 5m, 1h (or 'forever'), not {text!r}", 2)
    seconds = float(match.group(1)) * {"s": 1, "m": 60, "h": 3600, None: 1}[match.group(2)]
    if not 1 <= seconds <= MAX_TTL_S:
        raise fail(f"--ttl must be between 1 s and {MAX_TTL_S // 3600} h", 2)
    return seconds, False


def _run(run_dir, target, action):
    layout = stack_of(run_dir, target)

    async def go():
        if isinstance(layout, K8sStack):
            api = ChaosApi(layout.url, layout.chaos_token)
            try:
                return await action(api)
            finally:
                await api.aclose()
        store = ChaosStore(connect(layout.redis_url), layout.profile)
        try:
            return await action(store)
        finally:
            await store.redis.aclose()

    try:
        return asyncio.run(go())
    except ChaoslabError as exc:
        raise fail(exc.message, 2 if exc.http_status == 422 else 1) from exc
    except K8sError as exc:
        raise fail(str(exc)) from exc


@app.command("set")
def set_fault(
    run_dir: RunDir,
    target: Target,
    service: Annotated[str, typer.Argument(help="gateway, orders, payments, inventory or notifications")],
    fault: Annotated[str, typer.Argument(help="a fault of the catalogue, e.g. error_rate")],
    value: Annotated[str, typer.Argument(help="its value, e.g. 0.5 (bounds: `chaoslab chaos catalogue`)")],
    ttl: Annotated[
        str | None, typer.Option("--ttl", help="expiry: 90s, 5m, 1h, or 'forever' (default 10m; 2m in ci)")
    ] = None,
    route: Annotated[str | None, typer.Option(help="only requests under this path, e.g. /charges")] = None,
    replica: Annotated[int | None, typer.Option(help="only this replica (0 is the first)")] = None,
) -> None:
    """Turn a fault on for a service; it switches itself off when its TTL runs out."""
    seconds, persist = parse_ttl(ttl)
    active = _run(
        run_dir,
        target,
        lambda store: store.set(
            service, fault, value, ttl_s=seconds, persist=persist, route=route, replica=replica, who=None
        ),
    )
    expiry = "never (cleared by hand only)" if active.ttl_s is None else f"in {active.ttl_s:.0f}s"
    console.print(f"[bold]{active.key}[/] = {active.value!r}; expires {expiry}")


@app.command("list")
def list_faults(
    run_dir: RunDir,
    target: Target,
    service: Annotated[str | None, typer.Argument(help="only this service")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    token: Annotated[
        str | None,
        typer.Option(envvar="CHAOSLAB_GAMEMASTER_TOKEN", help="The game master's token: shows faults during a game."),
    ] = None,
) -> None:
    """Every fault that is on, with the time it has left (during a game day, only with the
    game master's token)."""

    async def listing(store: ChaosStore | ChaosApi) -> list | None:
        # A game day runs on a stack whose Redis we reach (not through a cluster's API).
        hidden = isinstance(store, ChaosStore) and await faults_hidden(store.redis, token)
        return None if hidden else await store.active(service)

    faults = _run(run_dir, target, listing)
    if faults is None:
        print(json.dumps({"hidden": HIDDEN})) if as_json else console.print(HIDDEN)
        return
    if as_json:
        print(json.dumps([f.as_dict() for f in faults], indent=2))
        return
    if not faults:
        console.print("No faults are set.")
        return
    table = Table(title="active faults")
    for column in ("service", "fault", "value", "replica", "route", "expires in"):
        table.add_column(column)
    for f in faults:
        table.add_row(
            f.service,
            f.fault,
            str(f.value),
            "all" if f.replica is None else str(f.replica),
            f.route or "all",
            "never" if f.ttl_s is None else f"{f.ttl_s:.0f}s",
        )
    console.print(table)


@app.command("clear")
def clear_faults(
    run_dir: RunDir,
    target: Target,
    service: Annotated[str | None, typer.Argument(help="only this service (default: all)")] = None,
    fault: Annotated[str | None, typer.Option(help="only this fault")] = None,
) -> None:
    """Switch faults off now: all, one service's, or one fault."""
    count = _run(run_dir, target, lambda store: store.clear(service, fault))
    console.print(f"Cleared {count} fault(s).")


@app.command("audit")
def audit(run_dir: RunDir, target: Target, limit: Annotated[int, typer.Option(help="how many entries")] = 20) -> None:
    """The latest fault changes: who set or cleared what, when."""
    entries = _run(run_dir, target, lambda store: store.audit(limit))
    table = Table(title="chaos:audit (newest first)")
    for column in ("when", "action", "key", "value", "ttl_s", "who"):
        table.add_column(column)
    for e in entries:
        when = datetime.datetime.fromtimestamp(float(e.get("at", 0))).strftime("%H:%M:%S")
        table.add_row(
            when, e.get("action", ""), e.get("key", ""), e.get("value", ""), e.get("ttl_s", ""), e.get("who", "")
        )
    console.print(table)


@app.command("catalogue")
def catalogue() -> None:
    """Every fault: what it does, its bounds and unit, and the services it applies to."""
    table = Table(title="fault catalogue (Redis key chaos:<service>:<fault>)")
    for column in ("fault", "what it does", "values", "services"):
        table.add_column(column)
    for f in CATALOGUE.values():
        values = {"bool": "true/false", "services": "downstream list", "status": "500/502/503/504"}.get(
            f.kind, f"{f.low:g} to {f.high:g} {f.unit}".strip()
        )
        table.add_row(f.name, f.description, values, ", ".join(f.services))
    console.print(table)
