"""Process faults: kill, restart, stop, start and scale programs.

Natively each acts on a program of this stack's supervisord by name (gateway ...
notifications, their replicas such as payments-1, postgres, redis, prometheus); with
`--target compose`, on that service's container; with `--target k8s`, on its Deployment
(kill deletes one of its pods). Nothing else on the machine is touched.
"""

from __future__ import annotations

import os
import signal
import xmlrpc.client
from pathlib import Path
from typing import Annotated

import typer

from chaos import runner, supervision
from chaos.cli_common import RunDir, Target, console, fail, layout_of, stack_of
from chaos.compose import ComposeError, ComposeStack
from chaos.k8s import K8sError
from chaos.k8s_stack import K8sStack

Program = Annotated[
    str,
    typer.Argument(
        help="gateway, orders, payments, inventory, notifications "
        "(or a replica such as payments-1), postgres, redis, prometheus"
    ),
]


def _compose(run_dir: Path, target: str) -> ComposeStack | K8sStack | None:
    """The compose or cluster stack --target names; None for the native one."""
    if target == "native":
        return None
    stack = stack_of(run_dir, target)
    assert isinstance(stack, ComposeStack | K8sStack), "stack_of gives a StackLayout for native only"
    return stack


def _in_compose(stack: ComposeStack | K8sStack, verb: str, program: str) -> None:
    try:
        stack.act(verb, program)
    except (ComposeError, K8sError) as exc:
        raise fail(str(exc)) from exc
    console.print(f"{ {'restart': 'Restarted', 'stop': 'Stopped', 'start': 'Started'}[verb] } {program}.")


def _supervisor(run_dir):
    layout = layout_of(run_dir)
    sup = supervision.Supervisor(layout)
    if not sup.running():
        raise fail(f"no stack is running in {layout.run_dir}")
    return layout, sup


def _act(action, name: str) -> None:
    try:
        action(name)
    except xmlrpc.client.Fault as fault:
        reason = fault.faultString
        if "BAD_NAME" in reason:
            raise fail(f"no program {name!r} in this stack (see `chaoslab status`)") from fault
        if "ALREADY_STARTED" in reason or "NOT_RUNNING" in reason:
            console.print(f"{name}: {reason.split(':')[0].lower().replace('_', ' ')}")
            return
        raise fail(f"{name}: {reason}") from fault


def kill(run_dir: RunDir, program: Program, target: Target) -> None:
    """SIGKILL a program, as a crash would; supervision (or compose's restart policy) restarts it.
    On a cluster, delete one of its pods (or the pod so named); its Deployment replaces it."""
    if stack := _compose(run_dir, target):
        try:
            pid = stack.kill(program)
        except (ComposeError, K8sError) as exc:
            raise fail(str(exc)) from exc
        if isinstance(stack, K8sStack):
            console.print(f"Deleted pod {pid}; its Deployment will start another.")
            return
        console.print(f"Killed {program} (host pid {pid}); its restart policy will start it again.")
        return
    _layout, sup = _supervisor(run_dir)
    try:
        pid = sup.process(program)["pid"]
    except xmlrpc.client.Fault as fault:
        raise fail(f"no program {program!r} in this stack (see `chaoslab status`)") from fault
    if not pid:
        raise fail(f"{program} is not running")
    os.kill(pid, signal.SIGKILL)
    console.print(f"Killed {program} (pid {pid}); supervisord will restart it.")


def restart(run_dir: RunDir, program: Program, target: Target) -> None:
    """Stop and start a program (the runbook's 'restart it')."""
    if stack := _compose(run_dir, target):
        return _in_compose(stack, "restart", program)
    _layout, sup = _supervisor(run_dir)
    _act(sup.restart, program)
    console.print(f"Restarted {program}.")


def stop(run_dir: RunDir, program: Program, target: Target) -> None:
    """Stop a program until `chaoslab start` (e.g. `chaoslab stop redis`)."""
    if stack := _compose(run_dir, target):
        return _in_compose(stack, "stop", program)
    _layout, sup = _supervisor(run_dir)
    _act(sup.stop, program)
    console.print(f"Stopped {program}.")


def start(run_dir: RunDir, program: Program, target: Target) -> None:
    """Start a stopped program."""
    if stack := _compose(run_dir, target):
        return _in_compose(stack, "start", program)
    _layout, sup = _supervisor(run_dir)
    _act(sup.start, program)
    console.print(f"Started {program}.")


def scale(
    run_dir: RunDir,
    service: Annotated[str, typer.Argument(help="the service to scale, e.g. payments")],
    replicas: Annotated[int, typer.Argument(help="how many replicas to run, 1 to 8")],
    target: Target,
) -> None:
    """Run N replicas of a service. Natively on further ports (callers spread over them
    within a second); with --target compose, `docker compose up -d --no-deps --no-recreate
    --scale service=N` (callers re-resolve the service's name within 10 s); on a cluster,
    scale its Deployment (its Service spreads callers over the ready pods)."""
    stack = _compose(run_dir, target)
    if isinstance(stack, K8sStack):
        if not 0 <= replicas <= 20:
            raise fail("replicas must be between 0 and 20", 2)
        try:
            stack.scale(service, replicas)
        except K8sError as exc:
            raise fail(str(exc)) from exc
        console.print(
            f"{service}: scaled to {replicas} replica(s) (`chaoslab status --target k8s` shows them come up)."
        )
        return
    if stack:
        try:
            with console.status(f"scaling {service} to {replicas}") as spinner:
                stack.scale(service, replicas, progress=spinner.update)
        except ComposeError as exc:
            raise fail(str(exc)) from exc
        console.print(f"{service}: {replicas} healthy container(s) in compose project {stack.project!r}")
        return
    layout, _sup = _supervisor(run_dir)
    try:
        with console.status(f"scaling {service} to {replicas}") as spinner:
            urls = runner.scale(layout, service, replicas, progress=spinner.update)
    except runner.StackError as exc:
        raise fail(str(exc)) from exc
    console.print(f"{service}: {len(urls)} replica(s): {', '.join(urls)}")


def register(app: typer.Typer) -> None:
    for command in (kill, restart, stop, start, scale):
        app.command()(command)
