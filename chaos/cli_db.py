"""`chaoslab db backup|backups|restore`: base backups of the native stack's PostgreSQL
and point-in-time restore from them and the WAL archive (chaos/db/); `chaoslab db
status|migrate|rollback`: the services' schema versions (chaos/db/migrations.py)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Annotated

import asyncpg
import typer
from rich.table import Table

from chaos import ledger as client_ledger
from chaos import supervision
from chaos.cli_common import RunDir, Target, console, fail, layout_of, stack_of
from chaos.compose import ComposeStack
from chaos.db import backup as backups
from chaos.db import compose_backup, migrations
from chaos.db import destroy as destroying
from chaos.db import reconcile as reconciling
from chaos.db import restore as restoring
from chaos.layout import StackLayout
from chaos.moments import parse_moment
from services.common.data.schema_versions import MigrationError, SchemaUnknown
from services.common.web.errors import DependencyUnavailable

app = typer.Typer(
    help="Back up the stack's database and restore it to any moment since a backup (natively, "
    "or in compose with --target compose). Every finished WAL segment is archived (at least every "
    "minute while orders arrive; every 10 s in the native ci profile), so a restore can replay up "
    "to a chosen time or the latest one. status, migrate and rollback show and move each service's "
    "schema version (docs/migrations.md).",
    no_args_is_help=True,
)


def _running(run_dir, target: str) -> StackLayout:
    if target != "native":
        raise fail("this command works on the native stack only (`--target native`)", 2)
    layout = layout_of(run_dir)
    if not supervision.Supervisor(layout).running():
        raise fail(f"no stack is running in {layout.run_dir}: start it with `chaoslab up --detach`")
    return layout


def _either(run_dir, target: str) -> StackLayout | ComposeStack:
    """The native stack (running), or the compose one: backup, backups and restore serve both."""
    if target == "compose":
        stack = stack_of(run_dir, target)
        assert isinstance(stack, ComposeStack)
        return stack
    return _running(run_dir, target)


def _take(stack: StackLayout | ComposeStack) -> backups.Backup:
    return compose_backup.take(stack) if isinstance(stack, ComposeStack) else backups.take(stack)


def _listing(stack: StackLayout | ComposeStack) -> list[backups.Backup]:
    return compose_backup.listing(stack) if isinstance(stack, ComposeStack) else backups.listing(stack)


@app.command("backup")
def backup(run_dir: RunDir, target: Target) -> None:
    """Take a base backup of the running database (pg_basebackup, a fast checkpoint)."""
    stack = _either(run_dir, target)
    with console.status("pg_basebackup ..."):
        try:
            taken = _take(stack)
        except backups.BackupError as exc:
            raise fail(str(exc)) from exc
    seconds = (taken.ended_at - taken.started_at).total_seconds()
    console.print(f"Backup [bold]{taken.name}[/]: {taken.size_bytes / 1e6:.1f} MB in {seconds:.1f}s ({taken.path})")


@app.command("backups")
def listing(
    run_dir: RunDir,
    target: Target,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """The backups a restore can start from, oldest first."""
    try:
        found = _listing(layout_of(run_dir) if target != "compose" else _either(run_dir, target))
    except backups.BackupError as exc:
        raise fail(str(exc)) from exc
    if as_json:
        print(json.dumps([b.as_dict() for b in found], indent=2))
        return
    if not found:
        console.print("No backups yet: `chaoslab db backup` takes one.")
        return
    table = Table(title="base backups (a restore can reach any moment after one ended)")
    for column in ("name", "started", "ended", "size"):
        table.add_column(column)
    for b in found:
        table.add_row(
            b.name,
            b.started_at.isoformat(timespec="seconds"),
            b.ended_at.isoformat(timespec="seconds"),
            f"{b.size_bytes / 1e6:.1f} MB",
        )
    console.print(table)


@app.command("restore")
def restore(
    run_dir: RunDir,
    target: Target,
    to: Annotated[
        str | None,
        typer.Option(
            "--to",
            help="The moment to restore: ISO 8601 (2026-12-02T21:30:00Z; no zone means UTC) or '5m ago'. "
            "Default: as late as the archive and the old cluster's WAL allow.",
        ),
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask: the current database is replaced.")] = False,
) -> None:
    """Replace the database with a backup replayed to a moment (PostgreSQL stops meanwhile;
    the services reconnect on their own). The replaced cluster is kept as pgdata.replaced."""
    stack = _either(run_dir, target)
    try:
        when = None if to is None else parse_moment(to)
    except ValueError as exc:
        raise fail(str(exc), 2) from exc
    goal = "the latest moment" if when is None else when.isoformat(timespec="seconds")
    where = f"compose project {stack.project}" if isinstance(stack, ComposeStack) else str(stack.run_dir)
    if not yes and not typer.confirm(f"Replace the database of {where} with its state at {goal}?"):
        raise typer.Exit(1)
    started = dt.datetime.now(dt.UTC)
    with console.status("restoring ...") as status:
        try:
            step = lambda msg: status.update(msg + " ...")  # noqa: E731
            if isinstance(stack, ComposeStack):
                used = compose_backup.restore(stack, when, progress=step)
            else:
                used = restoring.restore(stack, when, progress=step)
        except (backups.BackupError, restoring.RestoreError) as exc:
            raise fail(str(exc)) from exc
    seconds = (dt.datetime.now(dt.UTC) - started).total_seconds()
    console.print(f"Restored to {goal} from backup {used.name} in {seconds:.1f}s; run `chaoslab verify` next.")


# -- schema versions (chaos/db/migrations.py) --------------------------------------------

Extra = Annotated[
    Path | None,
    typer.Option(
        "--extra",
        help="A folder of more migrations, one sub-folder per service, as the release that brought them "
        "ships them (chaos/drills/migrations for the migration-failure drill).",
    ),
]


MIGRATION_ERRORS = (MigrationError, SchemaUnknown, DependencyUnavailable)


@app.command("status")
def schema_status(
    run_dir: RunDir,
    target: Target,
    extra: Extra = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Each service's schema: the version it is at, the latest its migrations know, what is pending."""
    layout = _running(run_dir, target)
    try:
        found = migrations.status(layout.database_url, migrations.WITH_SCHEMA, extra)
    except MIGRATION_ERRORS as exc:
        raise fail(str(exc)) from exc
    if as_json:
        print(json.dumps([s.as_dict() for s in found], indent=2))
        return
    table = Table(title="schema versions")
    for column in ("schema", "current", "latest", "pending"):
        table.add_column(column)
    for s in found:
        pending = ", ".join(r.id for r in s.pending) or "-"
        if not s.known:
            pending = "[bold red]unknown version: roll it back with the release that applied it (--extra)[/]"
        table.add_row(s.schema, s.current or "none", s.latest or "none", pending)
    console.print(table)


@app.command("migrate")
def schema_migrate(
    run_dir: RunDir,
    target: Target,
    service: Annotated[
        list[str] | None, typer.Argument(help="The services whose schema to migrate (default: all).")
    ] = None,
    extra: Extra = None,
) -> None:
    """Apply every pending migration (services also do it when they start)."""
    layout = _running(run_dir, target)
    with console.status("migrating ...") as shown:
        try:
            done = migrations.migrate(
                layout.database_url, service or migrations.WITH_SCHEMA, extra, lambda m: shown.update(m + " ...")
            )
        except MIGRATION_ERRORS as exc:
            raise fail(str(exc)) from exc
    for s in done:
        console.print(f"{s.schema}: at {s.current}")


@app.command("rollback")
def schema_rollback(
    run_dir: RunDir,
    target: Target,
    service: Annotated[str, typer.Argument(help="The service whose schema to roll back, e.g. payments.")],
    to: Annotated[
        str | None,
        typer.Option("--to", help="The version to go back to ('base': undo them all). Default: one step back."),
    ] = None,
    extra: Extra = None,
) -> None:
    """Undo a service's last migration (or back to --to) with its down migrations. A service
    that refused its schema starts at supervision's next try (`chaoslab start` if it gave up)."""
    layout = _running(run_dir, target)
    with console.status(f"rolling {service} back ..."):
        try:
            before, after = migrations.rollback(layout.database_url, service, to, extra)
        except MIGRATION_ERRORS as exc:
            raise fail(str(exc)) from exc
    console.print(f"{service}: rolled back from {before.current} to {after.current or 'base (nothing)'}")


@app.command("destroy")
def destroy(
    run_dir: RunDir,
    target: Target,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask: the database is deleted.")] = False,
) -> None:
    """The db-restore drill's fault: delete PostgreSQL's cluster and kill it, as a lost disk
    would. The WAL archive and the backups are kept: `chaoslab db restore` brings it back,
    without what the archive had not received yet."""
    layout = _running(run_dir, target)
    if not yes and not typer.confirm(f"Delete the database of {layout.run_dir}?"):
        raise typer.Exit(1)
    try:
        destroying.destroy(layout)
    except destroying.DestroyError as exc:
        raise fail(str(exc)) from exc
    console.print("PostgreSQL's cluster is deleted and its process killed; `chaoslab db restore` rebuilds it.")


@app.command("reconcile")
def reconcile(
    run_dir: RunDir,
    target: Target,
    ledger: Annotated[
        str | None,
        typer.Option(
            "--ledger",
            help="The client ledger: a file, a glob, or a name with {pid} as CHAOSLAB_LEDGER gives it "
            "(default: $CHAOSLAB_LEDGER).",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """After a restore: the orders clients were given a final answer for that the database
    no longer holds (the RPO, in orders and seconds), each to follow up by hand."""
    pattern = ledger or client_ledger.path_from_env()
    if not pattern:
        raise fail("name the client ledger: --ledger FILE (or set CHAOSLAB_LEDGER)", 2)
    files = reconciling.ledger_files(pattern)
    if not files:
        raise fail(f"no ledger file matches {pattern}", 2)
    stack = stack_of(run_dir, target)
    try:
        found = reconciling.against_database(stack.database_url, client_ledger.read(files))
    except (OSError, asyncpg.PostgresError) as exc:
        raise fail(f"the database cannot be read: {exc}") from exc
    if as_json:
        print(json.dumps(found.as_dict(), indent=2))
        return
    if not found.lost:
        console.print(f"The database holds all {found.answered} order(s) clients were answered for: nothing lost.")
        return
    table = Table(title=f"{len(found.lost)} of {found.answered} answered order(s) lost, {found.rpo_s}s of answers")
    for column in ("answered at", "order", "key", "told"):
        table.add_column(column, overflow="fold")
    for item in found.lost:
        when = dt.datetime.fromtimestamp(item.answered_at, dt.UTC).isoformat(timespec="seconds")
        table.add_row(when, item.order_id, item.key, f"{item.told} {item.order_status} {item.total_cents}")
    console.print(table)
    console.print("Follow each one up: the customer was told this answer; a charge may stand at the card processor.")
