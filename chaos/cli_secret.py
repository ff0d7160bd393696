"""`chaoslab secret rotate|leak|audit`: the service credential of a native stack
(docs/security.md; the logic is in chaos/secrets_rotation.py and chaos/secrets_leak.py)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from chaos import secrets_leak
from chaos import secrets_rotation as rotation
from chaos.cli_common import RunDir, console, fail, layout_of

app = typer.Typer(
    help="The service credential internal endpoints ask for: rotate it, audit who used an old one, "
    "or (drills) simulate a leak. Native stacks (compose and k8s: docs/security.md).",
    no_args_is_help=True,
)


@app.command()
def rotate(
    run_dir: RunDir,
    grace: Annotated[
        float | None,
        typer.Option(
            help="Seconds the previous credential stays valid (default: the profile's service_token_grace_s)."
        ),
    ] = None,
) -> None:
    """Replace the service credential with a new random one. Services re-read it at once
    (callers switch, callees accept both); the previous one is refused after the grace
    window. Waits for that, then prints who still used the previous one."""
    layout = layout_of(run_dir)
    grace_s = rotation.default_grace_s(layout.profile) if grace is None else grace
    if grace_s < 1:
        raise fail("--grace must be at least 1 second: services need a moment to re-read the credential", 2)
    with console.status("rotating") as status:
        try:
            done = rotation.rotate(layout, grace_s=grace_s, progress=status.update)
        except rotation.RotationError as exc:
            raise fail(str(exc)) from exc
    console.print(f"Rotated: generation {done.generation} is current; the previous credential is refused.")
    _print_audit(done.old_use, "since the services started")


@app.command()
def audit(run_dir: RunDir) -> None:
    """Requests that showed a previous or expired credential, by service and caller
    (from each service's service_auth_requests_total)."""
    _print_audit(rotation.audit(layout_of(run_dir)), "since the services started")


@app.command()
def leak(
    run_dir: RunDir,
    duration: Annotated[float, typer.Option("--for", help="Seconds the leaking caller runs at most.")] = 300,
) -> None:
    """Drills: start a caller the stack does not know, using the current credential
    (it stops by itself once refused, or after --for seconds)."""
    if duration <= 0:
        raise fail("--for must be a positive number of seconds", 2)
    pid = secrets_leak.start(layout_of(run_dir), duration)
    console.print(f"A leaked credential is in use by `{secrets_leak.LEAK_CALLER}` (pid {pid}).")


def _print_audit(old_use: dict[tuple[str, str], float], when: str) -> None:
    if not old_use:
        console.print(f"Nobody used the previous credential {when}.")
        return
    table = Table(title=f"Requests with the previous credential, {when}")
    for column in ("service", "caller", "requests"):
        table.add_column(column)
    for (service, caller), count in sorted(old_use.items()):
        table.add_row(service, caller, f"{count:.0f}")
    console.print(table)


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="secret")
