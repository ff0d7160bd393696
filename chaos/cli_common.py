"""What the chaoslab subcommands share: the console, the stack options, errors."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from chaos.compose import ComposeError, ComposeStack
from chaos.layout import StackLayout, default_run_dir

console = Console()
err = Console(stderr=True)

RunDir = Annotated[
    Path,
    typer.Option(
        "--run-dir",
        help="Where the stack keeps its data, logs and stack.json.",
        default_factory=default_run_dir,
        show_default="./.chaoslab",
    ),
]
Target = Annotated[
    str,
    typer.Option(
        "--target",
        envvar="CHAOSLAB_TARGET",
        metavar="native|compose",
        default_factory=lambda: "native",
        show_default="native",
        help="native: the stack `chaoslab up` runs in --run-dir. compose: the `docker compose` stack, "
        "through its published ports (COMPOSE_PROJECT_NAME and port overrides such as GATEWAY_PORT honoured).",
    ),
]


def fail(message: str, code: int = 1) -> typer.Exit:
    err.print(f"[bold red]error:[/] {escape(message)}")
    return typer.Exit(code)


def layout_of(run_dir: Path) -> StackLayout:
    try:
        return StackLayout.load(run_dir)
    except FileNotFoundError as exc:
        raise fail(str(exc)) from exc


def stack_of(run_dir: Path, target: str) -> StackLayout | ComposeStack:
    """The stack a command acts on: both kinds give the same addresses (url, redis_url,
    database_url, profile, chaos_token)."""
    if target == "compose":
        try:
            return ComposeStack.load(run_dir)
        except ComposeError as exc:
            raise fail(str(exc)) from exc
    if target != "native":
        raise fail(f"--target must be native or compose, not {target!r}", 2)
    return layout_of(run_dir)
