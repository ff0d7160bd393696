"""chaoslab: run the order stack natively, break it on purpose, and check it.

Start with `chaoslab up` (Ctrl-C stops it, or `--detach`), then `chaoslab status`,
`chaoslab logs <service>` and `chaoslab verify`. Every command reads the stack from the
run directory (`--run-dir`, default ./.chaoslab or $CHAOSLAB_RUN_DIR).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from chaos import (
    cli_compare,
    cli_db,
    cli_drill,
    cli_faults,
    cli_gameday,
    cli_load,
    cli_monkey,
    cli_observe,
    cli_process,
    cli_replay,
    cli_secret,
    runner,
)
from chaos import verify as verifier
from chaos.cli_common import RunDir, Target, console, fail, layout_of, stack_of
from chaos.compose import ComposeError, ComposeStack
from chaos.console.command import serve as console_command
from chaos.gameday import journal as gameday_journal
from chaos.infra import MissingDependency
from chaos.k8s import CONTEXT_ENV, NAMESPACE_ENV, K8sError
from chaos.k8s_stack import K8sStack
from chaos.layout import SERVICES, StackLayout

app = typer.Typer(
    help=__doc__,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",
)
app.add_typer(cli_faults.app, name="chaos")
app.add_typer(cli_db.app, name="db")
cli_process.register(app)
cli_observe.register(app)
cli_drill.register(app)
cli_monkey.register(app)
cli_compare.register(app)
cli_replay.register(app)
cli_load.register(app)
cli_secret.register(app)
app.add_typer(cli_gameday.app, name="gameday")
app.command("console")(console_command)


@app.callback()
def cluster(
    context: Annotated[
        str | None,
        typer.Option(
            "--context", envvar=CONTEXT_ENV, help="With --target k8s: the kubectl context (default: the current one)."
        ),
    ] = None,
    namespace: Annotated[
        str | None,
        typer.Option("--namespace", envvar=NAMESPACE_ENV, help="With --target k8s: the namespace (default: chaoslab)."),
    ] = None,
) -> None:
    """Where `--target k8s` acts, handed on through the environment, so the commands a drill
    runs find the same cluster."""
    for name, value in ((CONTEXT_ENV, context), (NAMESPACE_ENV, namespace)):
        if value:
            os.environ[name] = value


@app.command()
def up(
    run_dir: RunDir,
    detach: Annotated[
        bool, typer.Option("--detach", "-d", help="Return once healthy; leave the stack running.")
    ] = False,
    profile: Annotated[
        str, typer.Option(help="Time scales: training (realistic) or ci (fast).", envvar="CHAOSLAB_PROFILE")
    ] = "training",
    free_ports: Annotated[
        bool,
        typer.Option(
            "--free-ports", help="Pick free ports instead of the standard ones (8000-8004, 5432, 6379, 9090)."
        ),
    ] = False,
    chaos_token: Annotated[
        str | None,
        typer.Option(envvar="CHAOS_TOKEN", help="Token for PUT/DELETE /chaos/config; generated when unset."),
    ] = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for every service to be healthy.")] = 90.0,
    with_console: Annotated[
        bool, typer.Option("--console/--no-console", help="Also serve the training console (chaoslab console).")
    ] = True,
    setting: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            metavar="[SERVICE:]NAME=VALUE",
            help="A setting for every service (--set RESILIENCE=off) or one (--set gateway:MAX_INFLIGHT=64).",
        ),
    ] = None,
) -> None:
    """Start PostgreSQL, Redis, Prometheus and the five services, supervised."""
    if profile not in ("training", "ci"):
        raise fail(f"--profile must be training or ci, not {profile!r}", 2)
    env = {}
    for item in setting or []:
        name, sep, value = item.partition("=")
        service, colon, name = name.rpartition(":") if ":" in name else ("", "", name)
        if not sep or not name.strip() or (colon and service not in SERVICES):
            raise fail(
                f"--set takes NAME=VALUE or SERVICE:NAME=VALUE with a service of {', '.join(SERVICES)}, not {item!r}", 2
            )
        env[f"{service}:{name.strip().upper()}" if service else name.strip().upper()] = value
    try:
        with console.status("starting the stack") as spinner:
            layout = runner.up(
                run_dir,
                profile=profile,
                chaos_token=chaos_token,
                pick_free_ports=free_ports,
                timeout_s=timeout,
                progress=lambda msg: spinner.update(msg),
                env=env,
                with_console=with_console,
            )
    except (MissingDependency, runner.StackError) as exc:
        raise fail(str(exc)) from exc  # runner.up stopped whatever it had started
    _print_urls(layout)
    if detach:
        console.print(
            f"Stack running in the background. Stop it with [bold]chaoslab down --run-dir {layout.run_dir}[/]."
        )
        return
    console.print("Press Ctrl-C to stop the stack.")
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    try:
        while not stopping:
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    with console.status("stopping the stack"):
        runner.down(layout)
    console.print("Stack stopped.")


def _print_urls(layout: StackLayout) -> None:
    table = Table(title=f"chaoslab ({layout.profile} profile) in {layout.run_dir}")
    table.add_column("component")
    table.add_column("address")
    for service in SERVICES:
        table.add_row(service, layout.url(service))
    table.add_row("postgres", layout.database_url)
    table.add_row("redis", layout.redis_url)
    table.add_row("prometheus", layout.url("prometheus"))
    if "console" in layout.ports:
        table.add_row("console", layout.url("console") + "/")
    console.print(table)
    console.print(f"chaos token: [bold]{layout.chaos_token}[/] (header X-Chaos-Token)")


@app.command()
def down(run_dir: RunDir) -> None:
    """Stop every process of the stack (its data stays in the run directory)."""
    layout = layout_of(run_dir)
    with console.status("stopping the stack"):
        stopped = runner.down(layout)
    console.print("Stack stopped." if stopped else f"No stack was running in {layout.run_dir}.")


@app.command()
def clean(run_dir: RunDir) -> None:
    """Stop the stack if it runs, then delete its run directory and PostgreSQL's data
    (which lives in the `postgres` user's home when the run directory is private)."""
    with console.status("stopping the stack and deleting its data"):
        runner.clean(run_dir)
    console.print(f"Deleted the stack in {run_dir.resolve()}.")


@app.command()
def status(
    run_dir: RunDir,
    target: Target,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Each process (or container): state, pid, uptime and health."""
    stack = stack_of(run_dir, target)
    try:
        rows = stack.status() if isinstance(stack, ComposeStack | K8sStack) else runner.status(stack)
    except (runner.StackError, ComposeError, K8sError) as exc:
        raise fail(str(exc)) from exc
    if as_json:
        print(json.dumps([row.__dict__ for row in rows], indent=2))
    else:
        where = (
            f"compose project {stack.project}"
            if isinstance(stack, ComposeStack)
            else stack.kube.where()
            if isinstance(stack, K8sStack)
            else stack.run_dir
        )
        table = Table(title=f"chaoslab in {where}")
        for column in ("program", "state", "pid", "uptime", "health", "address"):
            table.add_column(column)
        for row in rows:
            health = {True: "[green]ok[/]", False: "[red]failing[/]", None: "-"}[row.healthy]
            table.add_row(row.name, row.state, str(row.pid or "-"), f"{row.uptime_s:.0f}s", health, row.url)
        console.print(table)
    if any(row.healthy is not True for row in rows):
        raise typer.Exit(1)


@app.command()
def logs(
    run_dir: RunDir,
    target: Target,
    service: Annotated[
        str | None,
        typer.Argument(help="A program (gateway, orders, ..., postgres, redis); all services when omitted."),
    ] = None,
    lines: Annotated[int, typer.Option("--lines", "-n", help="How many of the last lines to show.")] = 50,
    correlation_id: Annotated[
        str | None, typer.Option("--correlation-id", help="Only lines of this request, across every service.")
    ] = None,
) -> None:
    """Show a service's log, or one request's path across all services."""
    stack = stack_of(run_dir, target)
    names = [service] if service else list(SERVICES)
    for name in names:
        text = _log_lines(stack, name, lines if not correlation_id else 100_000)
        if correlation_id:
            text = [line for line in text if correlation_id in line]
        for line in text[-lines:]:
            print(f"{name:<13} {line}" if len(names) > 1 else line)


def _log_lines(stack: StackLayout | ComposeStack | K8sStack, name: str, lines: int) -> list[str]:
    if isinstance(stack, ComposeStack | K8sStack):
        try:
            return stack.logs(name, lines)
        except (ComposeError, K8sError) as exc:
            raise fail(str(exc)) from exc
    path = stack.log_file(name)
    if not path.exists():
        raise fail(f"no log for {name!r}: programs are {', '.join(SERVICES)}, postgres, redis, prometheus")
    return path.read_text(errors="replace").splitlines()


@app.command()
def verify(
    run_dir: RunDir,
    target: Target,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    grace: Annotated[
        float | None, typer.Option(help="Seconds of recent activity not judged yet (default: from the profile).")
    ] = None,
    database_url: Annotated[
        str | None, typer.Option(help="Check this database instead of the run directory's.")
    ] = None,
    ledger: Annotated[
        list[Path] | None,
        typer.Option(
            help="A client ledger (JSON Lines, written by the load generator with CHAOSLAB_LEDGER): also check "
            "that every answer clients got is what the database holds. Repeat for several files.",
            exists=True,
            dir_okay=False,
            readable=True,
        ),
    ] = None,
) -> None:
    """Check the invariants: nothing lost, doubled or stuck; stock conserved; events delivered once;
    with `--ledger`, every answer clients got kept."""
    if database_url is None or grace is None:
        stack = stack_of(run_dir, target)
        database_url = database_url or stack.database_url
        grace = verifier.default_grace_s(stack.profile) if grace is None else grace
    try:
        report = verifier.verify_report(database_url, grace, ledger or ())
    except Exception as exc:
        raise fail(f"cannot read the database at {database_url}: {exc}") from exc
    checks, counts = report.checks, report.counts
    failed = report.failed
    if as_json:
        out = {
            "ok": not failed,
            "orders": counts,
            "grace_s": grace,
            "checks": [
                {
                    "name": c.name,
                    "description": c.description,
                    "ok": c.ok,
                    "violations": c.count,
                    "examples": c.examples,
                }
                for c in checks
            ],
        }
        if report.ledger is not None:
            out["ledger"] = {"files": [str(p) for p in ledger or ()], **report.ledger.as_dict()}
        print(json.dumps(out, indent=2))
    else:
        table = Table(title=f"chaoslab verify (orders: {counts or 'none'})")
        for column in ("check", "result", "examples"):
            table.add_column(column)
        for c in checks:
            result = "[green]ok[/]" if c.ok else f"[red]{c.count} violation(s)[/]"
            table.add_row(c.description, result, "\n".join(c.examples))
        console.print(table)
        if report.ledger is not None:
            s = report.ledger
            console.print(
                f"ledger: {s.answers} answer(s) for {s.keys} key(s); {s.final_answers} final, {s.replayed} replayed; "
                f"by class {s.by_class or 'none'}; 5xx {s.status_5xx}; no answer {s.no_answer}"
                + (f"; {s.skipped_lines} unreadable line(s) skipped" if s.skipped_lines else "")
            )
    if failed:
        raise typer.Exit(1)


def main() -> None:
    # `kill` (SIGTERM: a CI job's timeout, a supervisor) ends a command as Ctrl-C does, so a
    # drill, a load, a game, a comparison or the monkey stops its locust and rolls back its
    # faults first. A script's `&` starts a command with SIGINT ignored, and its children
    # inherit that: locust would ignore the SIGINT that stops it cleanly, and be killed
    # 15 s later without its statistics. Both signals interrupt, here and in every child.
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    gameday_journal.record_command(sys.argv[1:])
    app()


if __name__ == "__main__":
    main()
