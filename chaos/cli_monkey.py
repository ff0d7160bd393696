"""`chaoslab monkey`: random kill -9 under load, then verify and the client ledger."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Group
from rich.live import Live
from rich.table import Table

from chaos import monkey
from chaos.cli_common import RunDir, Target, console, fail, stack_of
from chaos.k8s_stack import K8sStack
from chaos.layout import SERVICES


def monkey_command(
    run_dir: RunDir,
    target: Target,
    interval: Annotated[
        str, typer.Option(metavar="TIME", help="Time between two kills: 5s, 500ms, 1m (0.5s at least).")
    ] = "5s",
    duration: Annotated[str, typer.Option(metavar="TIME", help="How long the kills and the load last.")] = "120s",
    users: Annotated[int, typer.Option(help="locust shoppers placing orders with fresh keys.")] = 16,
    targets: Annotated[
        str, typer.Option(metavar="NAMES", help="Comma-separated services the monkey may kill.")
    ] = ",".join(SERVICES),
    include_infra: Annotated[bool, typer.Option("--include-infra", help="Kill PostgreSQL and Redis too.")] = False,
    seed: Annotated[
        int | None, typer.Option(help="Seed of the kill schedule; the same seed replays the same kills.")
    ] = None,
    recovery: Annotated[
        str | None,
        typer.Option(
            metavar="TIME",
            help="Longest wait after the kills for health, reads and a clean verify "
            "(default: twice verify's grace for the profile, at least 60s).",
        ),
    ] = None,
    report: Annotated[
        Path | None,
        typer.Option(help="Write report.json, index.html and the ledger here (default: monkey/ in the run directory)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="No live view; print the result as JSON.")] = False,
) -> None:
    """Kill -9 random programs of the stack at an interval, under locust load, then judge it.

    Every `--interval` one program drawn from `--targets` (by a generator seeded with
    `--seed`, printed so a run can be replayed) is killed with SIGKILL by its own pid,
    as a crash would: natively supervisord starts it again, in compose the restart
    policy. Shoppers place orders with fresh keys the whole time; every answer goes to a
    client ledger. The schedule starts at the load's first answer (locust takes seconds
    to start). After `--duration` the load stops and the monkey waits, at most the
    recovery budget, for every program to be back and healthy, for reads to answer 200
    and for `chaoslab verify` to come clean; then it holds the ledger against the
    database (every 2xx order found as answered, no key with two orders, no repeat
    answered differently).

    Exit code 0 when all of that holds, 1 when not, 2 for a bad option, 130 on Ctrl-C
    (the load is stopped and what was seen is reported).
    """
    try:
        options = monkey.Options(
            interval_s=monkey.parse_duration(interval, "--interval"),
            duration_s=monkey.parse_duration(duration, "--duration"),
            users=users,
            targets=monkey.parse_targets(targets, include_infra),
            seed=seed if seed is not None else random.SystemRandom().randrange(1, 1_000_000),
            recovery_s=monkey.parse_duration(recovery, "--recovery") if recovery is not None else 0.0,
        ).check()
    except monkey.MonkeyError as exc:
        raise fail(str(exc), 2) from exc
    stack = stack_of(run_dir, target)
    if isinstance(stack, K8sStack):
        raise fail("the monkey runs on native and compose stacks; on a cluster, `chaoslab kill --target k8s`", 2)
    report_dir = (report or stack.run_dir / "monkey").resolve()
    try:
        run = monkey.Monkey(stack, options, report_dir=report_dir)
    except monkey.MonkeyError as exc:
        raise fail(str(exc), 2) from exc
    if as_json:
        result = run.run()
    else:
        console.print(
            f"monkey: a kill every {options.interval_s:g}s for {options.duration_s:g}s among "
            f"{', '.join(options.targets)}, {options.users} shoppers, seed {options.seed} "
            f"(replay: --seed {options.seed}); Ctrl-C stops it and reports."
        )
        with Live(console=console, refresh_per_second=4, transient=False) as live:
            run.progress = lambda result, tail: live.update(_live_view(result, tail, run))
            result = run.run()
            live.update(_live_view(result, run.tail, run))
        console.print()
    monkey.write_report(result, report_dir)
    if as_json:
        data = result.as_dict()
        data.pop("per_second")
        data["recovery"].pop("read_probes")
        data["report"] = str(report_dir)
        print(json.dumps(data, indent=2))
    else:
        _summary(result, report_dir)
    if result.interrupted:
        raise typer.Exit(130)
    if not result.ok:
        raise typer.Exit(1)


def _answers(by_status: dict[str, int]) -> str:
    colour = {"2": "green", "4": "yellow", "5": "red", "0": "bright_black"}
    parts = []
    for status, n in sorted(by_status.items(), key=lambda kv: int(kv[0])):
        text = "no answer" if int(status) == 0 else str(status)
        parts.append(f"[{colour.get(str(status)[0], 'magenta')}]{text}[/]: {n}")
    return "  ".join(parts) or "-"


def _live_view(result: monkey.Result, tail: monkey.LedgerTail, run: monkey.Monkey) -> Group:
    elapsed = run.now_s()
    table = Table(title=f"chaoslab monkey ({result.target}, {result.profile} profile, seed {result.seed})")
    table.add_column("")
    table.add_column("")
    if result.phase == "starting load":
        when = f"waiting for locust's first order: {elapsed:.0f}s of at most {monkey.LOAD_START_S:.0f}s"
    elif result.phase == "killing":
        run_s = elapsed - run.clock_s
        when = f"{run_s:.0f}s of {result.duration_s:g}s, {max(0.0, result.duration_s - run_s):.0f}s left"
    else:
        ended = result.recovery.kills_ended_s or elapsed
        when = f"{result.phase}: {elapsed - ended:.0f}s of at most {result.recovery_budget_s:.0f}s"
    table.add_row("time", when)
    done = sum(k.killed for k in result.kills)
    skipped = len(result.kills) - done
    table.add_row("kills", f"{done} of {len(result.planned)} planned" + (f" ({skipped} skipped)" if skipped else ""))
    last = result.kills[-1] if result.kills else None
    if last:
        table.add_row(
            "last kill",
            f"{last.program} (pid {last.pid}) at {last.at_s:.1f}s" if last.killed else f"{last.program}: {last.detail}",
        )
    table.add_row("orders answered", _answers({str(s): n for s, n in tail.by_status.items()}))
    table.add_row("orders", f"{len(tail.keys)} attempted, {len(tail.accepted)} accepted (2xx)")
    rec = result.recovery
    if rec.kills_ended_s is not None:
        table.add_row(
            "recovery",
            f"healthy after {_s(rec.healthy_after_s)}, reads 200 after {_s(rec.reads_ok_after_s)}, "
            f"verify clean after {_s(rec.verify_clean_after_s)}",
        )
    return Group(table)


def _s(value: float | None) -> str:
    return "-" if value is None else f"{value:g}s"


def _summary(result: monkey.Result, report_dir: Path) -> None:
    rec, orders = result.recovery, result.orders
    table = Table(title=f"monkey: {result.verdict} in {result.wall_s:.0f}s")
    table.add_column("")
    table.add_column("")
    table.add_row(
        "kills", f"{sum(k.killed for k in result.kills)} of {len(result.planned)} planned (seed {result.seed})"
    )
    table.add_row(
        "orders",
        f"{orders.get('attempted', 0)} attempted, {orders.get('accepted', 0)} accepted, "
        f"{orders.get('found', '-')} found as answered, {orders.get('doubled', '-')} doubled",
    )
    table.add_row("answers", _answers(result.answers_by_status))
    table.add_row(
        "recovery",
        f"healthy after {_s(rec.healthy_after_s)}; reads 200 after {_s(rec.reads_ok_after_s)} "
        f"({rec.reads_refused_while_healthy_s:g}s refused while every /health was 200); "
        f"verify clean after {_s(rec.verify_clean_after_s)}",
    )
    if rec.refusals:
        table.add_row("reads refused", ", ".join(f"{answer}: {n}" for answer, n in rec.refusals.items()))
    verdict = lambda section: "-" if not section else "[green]clean[/]" if section.get("ok") else "[red]FAILED[/]"  # noqa: E731
    table.add_row("verify", f"{verdict(result.verify)} {result.verify.get('orders', '')}")
    table.add_row("ledger", verdict(result.ledger))
    for problem in result.problems:
        table.add_row("[red]problem[/]", problem)
    for note in result.notes:
        table.add_row("[yellow]note[/]", note)
    console.print(table)
    console.print(f"Report: {report_dir / 'index.html'}")


def register(app: typer.Typer) -> None:
    app.command("monkey")(monkey_command)
