"""What the chaoslab subcommands share: the console, the run directory option, errors."""
from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from chaos.layout import StackLayout, default_run_dir

console = Console()
err = Console(stderr=True)

RunDir = Annotated[Path, typer.Option("--run-dir", help="Where the stack keeps its data, logs and stack.json.",
                                      default_factory=default_run_dir, show_default="./.chaoslab")]


def fail(message: str, code: int = 1) -> typer.Exit:
    err.print(f"[bold red]error:[/] {message}")
    return typer.Exit(code)


def layout_of(run_dir: Path) -> StackLayout:
    try:
        return StackLayout.load(run_dir)
    except FileNotFoundError as exc:
        raise fail(str(exc)) from exc
