"""`chaoslab replay --since TIME [--dry-run]`: find the events notifications lost and
deliver them again from the orders they announce (chaos/replay.py)."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import asdict
from typing import Annotated

import asyncpg
import typer
from rich.progress import Progress
from rich.table import Table

from chaos import replay as replaying
from chaos import verify as verifier
from chaos.cli_common import RunDir, Target, console, fail, stack_of
from chaos.moments import parse_moment
from services.common.web.errors import ChaoslabError

SHOWN = 20  # lost events listed as a replay runs; a dry run lists them all


def replay(
    run_dir: RunDir,
    target: Target,
    since: Annotated[
        str,
        typer.Option("--since", help="Orders finished since: ISO 8601 (2026-12-02T21:30:00Z) or '10m ago'."),
    ],
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only list what would be sent again.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="List the lost events as JSON (with --dry-run).")] = False,
    grace: Annotated[
        float | None,
        typer.Option(help="Seconds an event may still be on its way (default: verify's grace for the profile)."),
    ] = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the replayed events to arrive.")] = 120,
) -> None:
    """Deliver again every event notifications lost: a finished order whose event is in
    neither the inbox nor the outbox's queue is announced again, with the same event id
    (notifications takes an id once, so a replay never doubles anything)."""
    stack = stack_of(run_dir, target)
    try:
        moment = parse_moment(since)
    except ValueError as exc:
        raise fail(str(exc), 2) from exc
    grace_s = verifier.default_grace_s(stack.profile) if grace is None else grace
    try:
        lost, events = asyncio.run(replaying.find(stack.database_url, moment, grace_s))
    except (ChaoslabError, OSError, asyncpg.PostgresError) as exc:
        raise fail(f"the database cannot be read: {exc}") from exc
    if as_json and dry_run:
        print(json.dumps([asdict(item) for item in lost], indent=2))
        return
    if not lost:
        console.print(f"No event lost since {moment.isoformat(timespec='seconds')}: nothing to replay.")
        return
    _show(lost, f"{len(lost)} event(s) lost since {moment.isoformat(timespec='seconds')}", None if dry_run else SHOWN)
    if dry_run:
        console.print("Dry run: nothing was sent.")
        return
    # Pass after pass until one finds nothing: an event lost while a pass ran (the relay
    # had not yet seen its fault cleared) is caught by the next one.
    deadline = time.monotonic() + timeout
    replayed = passes = 0
    while lost:
        arrived = _deliver(stack.database_url, lost, events, max(0.0, deadline - time.monotonic()))
        if arrived < len(lost):
            raise fail(
                f"{arrived} of {len(lost)} replayed event(s) arrived within {timeout:.0f}s; the rest wait in the "
                "outbox (is notifications up? `chaoslab status`, `chaoslab query outbox_pending`)"
            )
        replayed, passes = replayed + len(lost), passes + 1
        lost, events = asyncio.run(replaying.find(stack.database_url, moment, grace_s))
        if lost and time.monotonic() >= deadline:
            raise fail(
                f"events keep vanishing: {len(lost)} more lost after {passes} pass(es) "
                "(is a fault still set? `chaoslab chaos list`)"
            )
        if lost:
            _show(lost, f"{len(lost)} more event(s) lost while the last pass ran")
    console.print(
        f"Replayed {replayed} event(s) in {passes} pass(es); each is in notifications' inbox once. "
        "Run `chaoslab verify` next."
    )


def _deliver(database_url: str, lost: list[replaying.Lost], events: list, timeout_s: float) -> int:
    """Put `events` back in the outbox and wait for them in the inbox, with a progress bar."""
    asyncio.run(replaying.republish(database_url, events))
    with Progress(console=console, transient=True) as bar:
        task = bar.add_task("delivered to notifications", total=len(lost))
        return replaying.wait_delivered(
            database_url, lost, timeout_s, lambda done, _total: bar.update(task, completed=done)
        )


def _show(lost: list[replaying.Lost], title: str, limit: int | None = SHOWN) -> None:
    """The lost events as a table: the first `limit` of them (None: all)."""
    table = Table(title=title)
    for column in ("order", "status", "event", "id"):
        table.add_column(column, overflow="fold")
    for item in lost[:limit]:
        table.add_row(item.order_id, item.status, item.event_type, item.event_id)
    console.print(table)
    if limit is not None and len(lost) > limit:
        console.print(f"... and {len(lost) - limit} more (`--dry-run` lists them all)")


def register(app: typer.Typer) -> None:
    app.command("replay")(replay)
