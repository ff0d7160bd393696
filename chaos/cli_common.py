"""What the chaoslab subcommands share: the console, the stack options, errors."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from chaos.compose import ComposeError, ComposeStack
from chaos.k8s import K8sError
from chaos.k8s_stack import K8sStack
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
        metavar="native|compose|k8s",
        default_factory=lambda: "native",
        show_default="native",
        help="native: the stack `chaoslab up` runs in --run-dir. compose: the `docker compose` stack, "
        "through its published ports (COMPOSE_PROJECT_NAME and port overrides such as GATEWAY_PORT honoured). "
        "k8s: deploy/k8s on a cluster, through kubectl and port-forwards (`chaoslab --context C --namespace N ...`).",
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


Stack = StackLayout | ComposeStack | K8sStack


def stack_of(run_dir: Path, target: str) -> Stack:
    """The stack a command acts on: every kind gives the same addresses (url, redis_url,
    database_url, profile, chaos_token)."""
    if target == "k8s":
        try:
            return K8sStack.load(run_dir)
        except K8sError as exc:
            raise fail(str(exc)) from exc
    if target == "compose":
        try:
            return ComposeStack.load(run_dir)
        except ComposeError as exc:
            raise fail(str(exc)) from exc
    if target != "native":
        raise fail(f"--target must be native, compose or k8s, not {target!r}", 2)
    return layout_of(run_dir)
