"""`chaoslab drill` and `chaoslab runbook`: the runbook's incidents, drilled end to end."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.live import Live
from rich.table import Table

from chaos.cli_common import RunDir, Target, console, fail, stack_of
from chaos.drills import experiments as ctk_experiments
from chaos.drills import report as reports
from chaos.drills import runbook as runbooks
from chaos.drills.catalog import BY_ID, INCIDENTS
from chaos.drills.engine import Drill, DrillResult

REPO = Path(__file__).resolve().parent.parent
STEPS = ("steady state", "inject", "detect", "remediate", "recover", "roll back", "verify")


def drill(
    run_dir: RunDir,
    target: Target,
    incidents: Annotated[list[str] | None, typer.Argument(help="incident ids (see --list)")] = None,
    run_all: Annotated[bool, typer.Option("--all", help="Every drill of the runbook, one after the other.")] = False,
    list_only: Annotated[bool, typer.Option("--list", help="List the incidents and exit.")] = False,
    report: Annotated[Path | None, typer.Option(help="Write report.json, junit.xml and index.html here.")] = None,
    users: Annotated[int, typer.Option(help="Steady shoppers (locust) during each drill.")] = 6,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            max=32,
            help="locust processes every load of a drill spreads its users over (distributed locust, one master).",
        ),
    ] = 1,
) -> None:
    """Run incidents end to end under load: steady state, inject, detect, remediate,
    recover, verify. Every fault is rolled back, even on failure or Ctrl-C."""
    if list_only:
        table = Table(title="runbook incidents (chaoslab drill <id>)")
        for column in ("id", "severity", "what happens", "detected by"):
            table.add_column(column)
        for inc in INCIDENTS:
            table.add_row(inc.id, inc.severity, inc.title, inc.alert or "watchdog")
        console.print(table)
        return
    chosen = list(INCIDENTS) if run_all else []
    for inc_id in incidents or []:
        if inc_id not in BY_ID:
            raise fail(f"unknown incident {inc_id!r}; `chaoslab drill --list` shows them", 2)
        chosen.append(BY_ID[inc_id])
    if not chosen:
        raise fail("name incidents to drill, or --all (see --list)", 2)
    layout = stack_of(run_dir, target)
    report_dir = report or (layout.run_dir / "drills")
    state: dict[str, dict[str, str]] = {inc.id: {} for inc in chosen}

    def render() -> Table:
        table = Table(title=f"chaoslab drills ({layout.profile} profile)")
        table.add_column("incident")
        for step in STEPS:
            table.add_column(step)
        for inc_id, steps in state.items():
            table.add_row(inc_id, *[_badge(steps.get(step, "")) for step in STEPS])
        return table

    results: list[DrillResult] = []
    started = time.monotonic()
    with Live(render(), console=console, refresh_per_second=4, transient=False) as live:

        def progress(inc_id: str, step: str, status: str) -> None:
            state[inc_id][step] = status
            live.update(render())

        try:
            for inc in chosen:
                results.append(
                    Drill(
                        layout, inc, log_dir=report_dir / "logs", progress=progress, users=users, workers=workers
                    ).run()
                )
        except KeyboardInterrupt:
            console.print("[yellow]Interrupted: the running drill's faults were rolled back.[/]")
            reports.write(results, report_dir, time.monotonic() - started)
            raise typer.Exit(130) from None
    wall = time.monotonic() - started
    reports.write(results, report_dir, wall)
    summary = Table(title=f"{sum(r.ok for r in results)}/{len(results)} drills passed in {wall:.0f}s")
    columns = ("incident", "verdict", "detect (s)", "page (s)", "recover (s)", "budget spent", "orders", "failed step")
    for column in columns:
        summary.add_column(column)
    for r in results:
        failed = next((f"{s.name}: {s.detail}" for s in r.steps if not s.ok), "")
        summary.add_row(
            r.incident,
            "[green]passed[/]" if r.ok else "[red]FAILED[/]",
            str(r.time_to_detect_s or "-"),
            f"{r.time_to_page_s} ({r.page_vs_alert})" if r.time_to_page_s is not None else "-",
            str(r.time_to_recover_s or "-"),
            reports.spent_line(r, short=True),
            f"{r.orders_succeeded or 0}/{r.orders_attempted or 0}",
            failed[:120],
        )
    console.print(summary)
    for r in results:
        if r.rpo_orders is not None:
            console.print(f"{r.incident}: data lost: {reports.loss_line(r)}")
    console.print(f"Report: {report_dir / 'index.html'}")
    if not all(r.ok for r in results):
        raise typer.Exit(1)


def _badge(status: str) -> str:
    if not status:
        return ""
    if status == "ok":
        return "[green]ok[/]"
    if status == "running":
        return "[yellow]…[/]"
    return "[red]failed[/]"


def runbook(
    write: Annotated[bool, typer.Option("--write", help="Rewrite runbook.md from the incident catalogue.")] = False,
    check: Annotated[bool, typer.Option("--check", help="Fail when runbook.md differs from the catalogue.")] = False,
) -> None:
    """Print runbook.md as generated from the incident catalogue (or --write / --check it)."""
    text = runbooks.render()
    path = REPO / "runbook.md"
    if write:
        path.write_text(text)
        console.print(f"Wrote {path}")
    elif check:
        if not path.exists() or path.read_text() != text:
            raise fail("runbook.md is out of date: run `chaoslab runbook --write`")
        console.print("runbook.md matches the catalogue.")
    else:
        print(text)


def experiments(
    write: Annotated[
        bool, typer.Option("--write", help="Rewrite chaos/experiments/ from the incident catalogue.")
    ] = False,
    check: Annotated[
        bool, typer.Option("--check", help="Fail when chaos/experiments/ differs from the catalogue.")
    ] = False,
) -> None:
    """The Chaos Toolkit experiments (`chaos run chaos/experiments/<id>.json`), one per incident."""
    files = ctk_experiments.render_all()
    directory = ctk_experiments.DIRECTORY
    if write:
        directory.mkdir(parents=True, exist_ok=True)
        for name, text in files.items():
            (directory / name).write_text(text)
        console.print(f"Wrote {len(files)} experiments to {directory}")
    elif check:
        stale = [n for n, t in files.items() if not (directory / n).exists() or (directory / n).read_text() != t]
        if stale:
            raise fail(f"out of date: {', '.join(stale)}; run `chaoslab experiments --write`")
        console.print("chaos/experiments/ matches the catalogue.")
    else:
        for name in files:
            console.print(directory / name)


def register(app: typer.Typer) -> None:
    app.command()(drill)
    app.command()(runbook)
    app.command()(experiments)
