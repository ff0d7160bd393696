"""`chaoslab compare`: the same fault under the same load, once per set of resilience patterns."""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.live import Live
from rich.table import Table

from chaos.cli_common import console, fail
from chaos.compare import measure, report
from chaos.compare import run as runs
from chaos.compare.faults import FAULTS, FaultError, lookup
from chaos.compare.sets import SETS, SetError, choose
from chaos.monkey import MonkeyError, parse_duration

_SETS_HELP = "\n".join(f"- **{s.name}**: {s.summary}." for s in SETS)
_FAULTS_HELP = "\n".join(f"- **{f.name}**: {f.summary}." for f in FAULTS.values())

HELP = f"""Run the same fault under the same load once per set of resilience patterns, side by side.

Each set runs on a fresh stack (free ports, its own database) whose services switch
off every pattern the set leaves out (`PATTERNS`). Under steady shoppers it warms up,
the fault is switched on for `--duration`, switched off, and the load goes on for the
recovery; then the stack settles, `chaoslab verify` runs, and the set's figures are
taken from the client's ledger, payments' received calls and the database.

The sets (each adds patterns to the one before):

{_SETS_HELP}

`--sets A,C,F` picks some; `--patterns retries,breakers` runs a set of your own
(repeat it for several; alone it runs instead of A-F).

The faults (`--fault`):

{_FAULTS_HELP}

Measures: orders confirmed, success rate (and per 10 s window), p50/p95/p99 latency,
retry amplification (calls reaching payments per order), duplicate orders, double
charges, events lost, time to recover. The report (`--out`, default
`./compare-<time>`) has report.json and report.html (one plot per measure) and says
where a set did worse than the one before it.

Exit code 0 when every set ran, 1 when one failed, 2 for a bad option, 130 on Ctrl-C
(the running stack is stopped and deleted; the report has the sets that finished).
"""


def compare(
    fault: Annotated[str, typer.Option(help="The fault: " + ", ".join(FAULTS) + ".")] = "payments-errors",
    sets: Annotated[
        str | None, typer.Option(metavar="A,C,F", help="The sets to run, in this order (default: A to F).")
    ] = None,
    patterns: Annotated[
        list[str] | None,
        typer.Option(metavar="P1,P2", help="A set of your own: the patterns on, e.g. retries,breakers (or none, all)."),
    ] = None,
    profile: Annotated[str, typer.Option(help="The stacks' time scales: training (realistic) or ci (fast).")] = (
        "training"
    ),
    duration: Annotated[
        str | None, typer.Option(metavar="TIME", help="How long the fault lasts: 60s, 2m (default: by profile).")
    ] = None,
    warmup: Annotated[str | None, typer.Option(metavar="TIME", help="Load before the fault.")] = None,
    recovery: Annotated[str | None, typer.Option(metavar="TIME", help="Load after the fault.")] = None,
    quick: Annotated[
        bool, typer.Option("--quick", help="A short run: 5 s warm-up, 20 s of fault, 20 s of recovery.")
    ] = False,
    users: Annotated[int, typer.Option(help="Steady shoppers (a spike's base; its peak is 8 times as many).")] = 20,
    out: Annotated[Path | None, typer.Option(help="The report's directory (default: ./compare-DATE-TIME).")] = None,
) -> None:
    try:
        plan = _plan(fault, sets, patterns or [], profile, duration, warmup, recovery, quick, users, out)
    except (FaultError, SetError, MonkeyError, ValueError) as exc:
        raise fail(str(exc), 2) from exc
    try:
        plan.out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise fail(f"cannot write the report to {plan.out}: {exc}", 2) from exc
    timing = plan.timing
    console.print(
        f"compare: {plan.fault.name} on {len(plan.sets)} set(s) ({', '.join(s.name for s in plan.sets)}), "
        f"{plan.profile} profile, {plan.users} shoppers; {timing.warm_s:g} s warm-up, {timing.fault_s:g} s fault, "
        f"{timing.recover_s:g} s recovery per set. Report in {plan.out}. Ctrl-C stops it."
    )
    for pattern_set in plan.sets:
        console.print(f"  {pattern_set.name}: {pattern_set.summary}")
    with Live(console=console, refresh_per_second=2, transient=False) as live:
        comparison = runs.run(plan, progress=lambda c: live.update(_view(c)))
        live.update(_view(comparison))
    console.print()
    json_path, html_path = report.write(comparison, plan.out)
    data = report.as_dict(comparison)
    if comparison.finished:
        console.print(_summary(comparison, data))
    for line in data["worse"]:
        console.print(f"[red]{line}[/]")
    if comparison.finished and not data["worse"]:
        console.print("No set did worse than the one before it, beyond the noise margin.")
    console.print(f"Wall time {comparison.wall_s:.0f} s. Report: {html_path} ({json_path.name} beside it).")
    if comparison.interrupted:
        raise typer.Exit(130)
    if any(r.status == "failed" for r in comparison.results):
        raise typer.Exit(1)


def _plan(
    fault: str,
    sets: str | None,
    patterns: list[str],
    profile: str,
    duration: str | None,
    warmup: str | None,
    recovery: str | None,
    quick: bool,
    users: int,
    out: Path | None,
) -> runs.Plan:
    if profile not in runs.TIMINGS:
        raise ValueError(f"--profile must be training or ci, not {profile!r}")
    timing = runs.TIMINGS[profile]
    chosen = {"warm_s": timing.warm_s, "fault_s": timing.fault_s, "recover_s": timing.recover_s}
    if quick:
        chosen.update(runs.QUICK)
    given = {"fault_s": ("--duration", duration), "warm_s": ("--warmup", warmup), "recover_s": ("--recovery", recovery)}
    for key, (option, text) in given.items():
        if text is not None:
            chosen[key] = parse_duration(text, option)
    if not 5 <= chosen["fault_s"] <= 3600:
        raise ValueError(f"--duration must be between 5s and 1h, not {chosen['fault_s']:g}s")
    if not 5 <= chosen["warm_s"] <= 600 or not 5 <= chosen["recover_s"] <= 3600:
        raise ValueError("--warmup must be between 5s and 10m, --recovery between 5s and 1h")
    if not 1 <= users <= 200:
        raise ValueError(f"--users must be between 1 and 200, not {users}")
    return runs.Plan(
        fault=lookup(fault),
        sets=choose(sets, patterns),
        profile=profile,
        timing=runs.Timing(settle_s=timing.settle_s, **chosen),
        users=users,
        out=(out or Path(time.strftime("compare-%Y%m%d-%H%M%S"))).resolve(),
    )


_STATUS = {"waiting": "[bright_black]waiting[/]", "done": "[green]done[/]", "failed": "[red]failed[/]"}


def _view(comparison: runs.Comparison) -> Table:
    """One row per set: its phase and time left while it runs, its figures once done."""
    plan = comparison.plan
    elapsed = time.time() - comparison.started_at
    table = Table(title=f"chaoslab compare: {plan.fault.name}, {plan.profile} profile, {elapsed:.0f} s")
    columns = ("set", "phase", "left", "confirmed", "success", "p99 ms", "ampl.", "dup.", "2× chg", "lost", "recov.")
    for column in columns:
        table.add_column(column, justify="left" if column in ("set", "phase") else "right")
    for r in comparison.results:
        f = r.figures
        running, done = r.status == "running", r.status == "done"
        left = f"{max(0.0, r.phase_ends - time.time()):.0f}s" if running and r.phase_ends else ""
        table.add_row(
            r.name,
            r.phase if running else _STATUS.get(r.status, r.status),
            left,
            str(f.confirmed) if (done or running) else "",
            _share(f.success_rate) if (done or running) else "",
            "" if not done or math.isnan(f.p99_ms) else f"{f.p99_ms:.0f}",
            "" if not done or math.isnan(f.amplification) else f"{f.amplification:.2f}",
            str(f.duplicate_orders) if done else "",
            str(f.double_charges) if done else "",
            str(f.events_lost) if done else "",
            ("never" if f.recovery_s is None else f"{f.recovery_s:.0f}s") if done else "",
        )
    return table


def _summary(comparison: runs.Comparison, data: dict) -> Table:
    """Every measure (rows) of every set that finished (columns); worse than the set
    before in red, better in green."""
    done = comparison.finished
    marks = {(c["set"], c["measure"]): c["verdict"] for c in data["changes"]}
    table = Table(title=f"{comparison.plan.fault.name}: every measure, set by set")
    table.add_column("measure")
    for r in done:
        table.add_column(r.name, justify="right")
    colour = {"worse": "bold red", "better": "green"}
    for m in measure.MEASURES:
        cells = []
        for r in done:
            text = m.show(r.figures.value(m.key))
            style = colour.get(marks.get((r.name, m.key), ""))
            cells.append(f"[{style}]{text}[/]" if style else text)
        table.add_row(m.title, *cells)
    table.add_row("verify", *("clean" if r.verify.ok else f"{len(r.verify.failed)} check(s) failed" for r in done))
    return table


def _share(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.0%}"


def register(app: typer.Typer) -> None:
    app.command("compare", help=HELP)(compare)
