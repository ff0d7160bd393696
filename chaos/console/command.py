"""`chaoslab console`: serve the training console for a running stack."""

from __future__ import annotations

from typing import Annotated

import typer
import uvicorn

from chaos.cli_common import RunDir, console, err, fail, stack_of
from chaos.console import DEFAULT_PORT
from chaos.console.app import create_app
from chaos.console.network import NetworkStack
from chaos.k8s_stack import K8sStack


def serve(
    run_dir: RunDir,
    target: Annotated[
        str,
        typer.Option(
            envvar="CHAOSLAB_TARGET",
            metavar="native|compose|network",
            help="native: the stack `chaoslab up` runs in --run-dir; compose: the `docker compose` stack through "
            "its published ports; network: addresses from the environment (<SERVICE>_URL, REDIS_URL, CHAOS_TOKEN), "
            "as the compose `console` service runs it.",
        ),
    ] = "native",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = DEFAULT_PORT,
    host: Annotated[
        str, typer.Option(help="Address to listen on; reads are open to whoever reaches it, changes need the token.")
    ] = "127.0.0.1",
    interval: Annotated[
        float | None, typer.Option(min=0.2, max=60, help="Seconds between refreshes (default 1 in ci, 2 in training).")
    ] = None,
) -> None:
    """The training console in the browser: topology, breakers, faults, charts, alerts
    and a drill launcher, pushed live to the page. Every action has its CLI twin
    (`chaoslab status|breakers|alerts|chaos|drill`)."""
    if target not in ("native", "compose", "network"):
        raise fail(f"--target must be native, compose or network, not {target!r}", 2)
    stack = NetworkStack.from_env() if target == "network" else stack_of(run_dir, target)
    assert not isinstance(stack, K8sStack), "--target k8s is refused above"
    if host not in ("127.0.0.1", "localhost", "::1"):
        err.print(f"[yellow]warning:[/] listening on {host}: anyone who reaches it sees the stack")
    app = create_app(stack, target=target, interval_s=interval)
    console.print(f"chaoslab console on http://{host}:{port}/ (Ctrl-C stops it)")
    uvicorn.run(app, host=host, port=port, log_level="warning")
