"""`chaoslab gameday ...`: a game of hidden incidents, played by people or a program.

The trainer starts it (`start`, in the foreground, with the game master's token printed
once); the responders use the ordinary tools plus `ack`, `diagnose` and `resolve`, from
any terminal on the same run directory; `report` writes the debrief. Rules and score:
docs/gameday.md.
"""

from __future__ import annotations

import json
import random
from typing import Annotated

import typer
from rich.table import Table

from chaos import prometheus_config
from chaos.cli_common import RunDir, console, fail, layout_of
from chaos.gameday import debrief, picking
from chaos.gameday.journal import Game, NoGame
from chaos.gameday.master import GameMaster, Settings
from chaos.gameday.scoring import FORMULA
from chaos.layout import INFRA, SERVICES
from services.common.faults.catalogue import CATALOGUE

app = typer.Typer(help=__doc__, no_args_is_help=True)


@app.command()
def start(
    run_dir: RunDir,
    seed: Annotated[int | None, typer.Option(help="Replays the same game (default: a new one, printed).")] = None,
    difficulty: Annotated[str, typer.Option(help="easy, medium or hard (docs/gameday.md).")] = "easy",
    duration: Annotated[str, typer.Option(help="The longest the game lasts: 90s, 20m, 1h.")] = "20m",
    incidents: Annotated[int, typer.Option("--incidents", help="How many incidents to play.")] = 1,
    responder: Annotated[
        str | None,
        typer.Option(help='A program that responds, e.g. "python -m chaos.gameday.responders.baseline".'),
    ] = None,
    users: Annotated[int, typer.Option(help="Steady shoppers (locust) during the game.")] = 6,
    only: Annotated[
        list[str] | None, typer.Option("--incident", help="Draw only among these incidents (repeat it).")
    ] = None,
) -> None:
    """Start a game: pick incidents, inject them under load at moments nobody is told, and
    end when the stack has recovered from every one, or when the duration is up."""
    try:
        duration_s = prometheus_config.seconds(duration)
    except ValueError:
        raise fail(f"--duration takes a duration such as 90s, 20m or 1h, not {duration!r}", 2) from None
    layout = layout_of(run_dir)
    if (run_dir / "gameday" / "current").exists():
        raise fail(f"a game is already in progress in {run_dir}; it ends by itself, or delete gameday/current", 1)
    settings = Settings(
        seed=random.randrange(1_000_000) if seed is None else seed,
        difficulty=difficulty,
        duration_s=duration_s,
        count=incidents,
        responder=responder,
        users=users,
        only=tuple(only or ()),
    )
    try:
        master = GameMaster(layout, settings, progress=lambda _l: None)
    except picking.GameError as exc:
        raise fail(str(exc), 2) from exc
    console.print(
        f"Game {master.game_id}: {difficulty}, {incidents} incident(s), up to {duration}, seed {settings.seed}.\n"
        f"The game master's token (shown once; also in {master.game.path / 'token'}, mode 0600):\n"
        f"  [bold]{master.token}[/]\n"
        "While the game runs, fault listings show only that a game is on, unless given this token "
        "(CHAOSLAB_GAMEMASTER_TOKEN or --token)."
    )
    with console.status("starting") as status:
        master.progress = lambda line: status.update(line)
        try:
            result = master.play()
        except KeyboardInterrupt:
            console.print("[yellow]Interrupted: every fault was rolled back; the game is not scored.[/]")
            raise typer.Exit(130) from None
    if result["failure"]:
        console.print(f"[red]The game could not go on: {result['failure']}[/]")
    console.print(_score_table(result))
    path = debrief.write(result, master.game.path)
    console.print(f"Debrief: {path} (JSON: {master.game.path / 'result.json'})")


def _record(run_dir, action: str, **fields) -> None:
    try:
        Game.current(run_dir).record("actions", action=action, **fields)
    except NoGame as exc:
        raise fail(str(exc)) from exc


@app.command()
def ack(run_dir: RunDir) -> None:
    """We see it: acknowledge the incident (the time to acknowledge stops)."""
    _record(run_dir, "ack")
    console.print("Acknowledged.")


@app.command()
def diagnose(
    run_dir: RunDir,
    service: Annotated[str, typer.Argument(help=f"the cause's service or program: {', '.join(SERVICES + INFRA)}")],
    fault: Annotated[
        str | None,
        typer.Argument(help=f"its fault (`chaoslab chaos catalogue`), 'down', or '{picking.LOAD}' (the traffic)"),
    ] = None,
) -> None:
    """We think it is this: scored right or wrong in the debrief (a wrong guess costs points)."""
    if service not in SERVICES + INFRA:
        raise fail(f"unknown service {service!r}; one of {', '.join(SERVICES + INFRA)}", 2)
    if fault is not None and fault not in ("down", picking.LOAD) and fault not in CATALOGUE:
        raise fail(f"unknown fault {fault!r}; `chaoslab chaos catalogue` lists them (or 'down', '{picking.LOAD}')", 2)
    _record(run_dir, "diagnose", service=service, fault=fault)
    console.print("Diagnosis recorded: the debrief says whether it was right.")


@app.command()
def resolve(run_dir: RunDir) -> None:
    """We think it is over (the stack decides: the game ends once it has recovered)."""
    _record(run_dir, "resolve")
    console.print("Recorded; the game ends when the stack has recovered.")


@app.command()
def report(
    run_dir: RunDir,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """The debrief of the last game: report.html (timeline, plots, runbook, score) and result.json."""
    try:
        game = Game.latest(run_dir)
    except NoGame as exc:
        raise fail(str(exc)) from exc
    if not (game.path / "result.json").exists():
        raise fail(f"game {game.path.name} is still in progress: its debrief comes when it ends")
    result = game.read("result.json")
    if as_json:
        print(json.dumps(result, indent=2))
        return
    console.print(_score_table(result))
    console.print(f"Debrief: {debrief.write(result, game.path)}")


def _score_table(result: dict) -> Table:
    score = result["score"]
    verdict = "within par" if score["within_par"] else "over par"
    table = Table(title=f"game {result['game']}: score {score['total']} ({verdict})", caption=FORMULA)
    for column in ("incident", "acknowledge", "detect", "localize", "mitigate", "score"):
        table.add_column(column)
    for inc in score["incidents"]:
        cells = [
            f"{'-' if inc['times'][n] is None else inc['times'][n]}/{inc['par'][n]:.0f}s"
            for n in ("acknowledge", "detect", "localize", "mitigate")
        ]
        table.add_row(inc["incident"], *cells, str(inc["score"]))
    for p in score["penalties"]:
        table.add_row(f"[red]penalty: {p['kind']}[/]", p["detail"][:80], "", "", "", f"-{p['points']}")
    return table
