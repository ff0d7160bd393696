"""The training overlay under `podman kube play`: healthy pods, an order, a crash, verify.

No cluster here: this runs the rendered overlay (`kubectl kustomize`, the command users
run) on Podman's `kube play`, with the translations of podman_play.py for what Podman 4.3
lacks, and the stand-in images of tests/e2e/compose. It proves the Deployments' own
parts (image, command, environment from the ConfigMap and Secret, volumes, liveness
probes, restart policy) work together; Services, disruption budgets, NetworkPolicies and
RBAC are skipped by `kube play` and are not tested here (docs/kubernetes.md).

Runs where the container engine is Podman and the `podman` command answers, as root;
skipped otherwise, or failed when CHAOSLAB_COMPOSE_REQUIRED promises an engine.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from chaos.layout import free_ports
from tests.e2e.compose.conftest import Engine, _engine_env, _unavailable, provide_infra_images, python_base_build_args
from tests.e2e.kube.podman_play import Plan, for_podman
from tests.support.api import place_order
from tests.support.stack import wait_until
from tests.unit.test_k8s_manifests import render

REPO = Path(__file__).resolve().parents[3]
HEALTHY_WITHIN_S = 240


def podman(*args: str, timeout_s: float = 60, check: bool = True, stdin: str | None = None) -> str:
    result = subprocess.run(["podman", *args], capture_output=True, text=True, timeout=timeout_s, input=stdin)
    if check and result.returncode != 0:
        raise AssertionError(f"`podman {' '.join(args[:4])}` exited {result.returncode}: {result.stderr[-2000:]}")
    return result.stdout


def _free_subnet() -> str:
    used = podman("network", "ls", "--format", "{{range .Subnets}}{{.Subnet}} {{end}}").split()
    for third in range(200, 250):
        if not any(s.startswith(f"10.89.{third}.") for s in used):
            return f"10.89.{third}"
    raise AssertionError(f"no free 10.89.x.0/24 subnet among Podman's networks: {used}")


def _health(pods: list[str]) -> dict[str, str]:
    """Each played container's health (its pod's app container; infra ones aside)."""
    out = podman("ps", "-a", "--filter", f"pod={pods[0]}", *[f"--filter=pod={p}" for p in pods[1:]],
                 "--format", "{{.Names}} {{.Status}}")  # fmt: skip
    return {line.split()[0]: line for line in out.splitlines() if "-infra" not in line}


@pytest.fixture(scope="module")
def played(tmp_path_factory) -> Iterator[Plan]:
    env = _engine_env()
    version = subprocess.run(["docker", "version"], env=env, capture_output=True, text=True, timeout=10).stdout
    if "podman" not in version.lower():
        pytest.skip("the engine is not Podman: `podman kube play` would not see the images it builds")
    if shutil.which("podman") is None or os.geteuid() != 0:
        _unavailable("`podman kube play` needs the `podman` command, as root, beside the engine")
    engine = Engine(env)
    provide_infra_images(engine)
    engine.compose("build", *python_base_build_args(engine), "gateway", timeout_s=300)
    suffix = f"kp{os.getpid()}"
    subnet = _free_subnet()
    plan = for_podman(
        yaml.safe_load_all(render("training")), suffix=suffix, subnet=subnet, free_port=lambda: free_ports(1)[0]
    )
    path = tmp_path_factory.mktemp("kube") / "training.yaml"
    path.write_text(yaml.safe_dump_all(plan.yaml_docs))
    network = f"chaoslab-{suffix}"
    started = time.monotonic()
    try:
        podman("network", "create", "--subnet", f"{subnet}.0/24", network)
        for name, content in plan.secrets.items():
            podman("secret", "create", name, "-", stdin=content)
        ips = [arg for ip in plan.ips for arg in ("--ip", ip)]
        podman("kube", "play", "--network", network, *ips, str(path), timeout_s=300)
        wait_until(
            lambda: (
                all("(healthy)" in s for s in _health(plan.pods).values()) and len(_health(plan.pods)) == len(plan.pods)
            ),
            timeout_s=HEALTHY_WITHIN_S,
            interval_s=1,
            message=f"every played container healthy ({', '.join(plan.pods)})",
        )
        print(f"\nkube play: healthy after {time.monotonic() - started:.0f}s")
        yield plan
    except AssertionError as exc:
        logs = {p: podman("pod", "logs", "--tail", "15", p, check=False)[-1500:] for p in plan.pods}
        raise AssertionError(f"{exc}\n{_health(plan.pods)}\n{json.dumps(logs, indent=1)}") from None
    finally:
        podman("kube", "down", str(path), timeout_s=120, check=False)
        for name in plan.secrets:
            podman("secret", "rm", name, check=False)
        for volume in plan.volumes:
            podman("volume", "rm", "-f", volume, check=False)
        podman("network", "rm", "-f", network, check=False)
        left = podman("pod", "ls", "--filter", f"name={suffix}", "--format", "{{.Name}}", check=False).split()
        left += podman("volume", "ls", "--filter", f"name={suffix}", "--format", "{{.Name}}", check=False).split()
        assert not left, f"the run left these behind: {left}"


def test_an_order_goes_through_the_gateway(played):
    with httpx.Client(timeout=15) as client:
        answer = place_order(client, f"http://127.0.0.1:{played.ports['gateway']}", "SKU-001", 2)
    assert answer.status_code == 201, answer.text
    assert answer.json()["status"] == "confirmed"


def test_a_killed_container_is_restarted_by_its_restart_policy(played):
    [pod] = [p for p in played.pods if p.startswith("payments-")]
    container = f"{pod}-app"
    pid = int(podman("inspect", "-f", "{{.State.Pid}}", container).strip())
    before = int(podman("inspect", "-f", "{{.RestartCount}}", container).strip())
    os.kill(pid, signal.SIGKILL)

    def back() -> bool:
        state = podman("inspect", "-f", "{{.RestartCount}} {{.State.Pid}} {{.State.Health.Status}}", container).split()
        return int(state[0]) > before and int(state[1]) not in (0, pid) and state[2] == "healthy"

    wait_until(back, timeout_s=150, interval_s=1, message=f"{container} restarted and healthy")
    with httpx.Client(timeout=15) as client:
        answer = place_order(client, f"http://127.0.0.1:{played.ports['gateway']}", "SKU-002", 1)
    assert answer.status_code == 201, answer.text


def test_chaoslab_verify_is_clean(played):
    secret = json.loads(next(iter(played.secrets.values())))
    password = base64.b64decode(secret["POSTGRES_PASSWORD"]).decode()
    url = f"postgresql://chaoslab:{password}@127.0.0.1:{played.ports['postgres']}/chaoslab"

    def clean() -> dict | None:
        result = subprocess.run(
            [sys.executable, "-m", "chaos.cli", "verify", "--database-url", url, "--grace", "0", "--json"],
            cwd=REPO, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        report = json.loads(result.stdout) if result.stdout.strip().startswith("{") else None
        return report if report and report["ok"] else None

    report = wait_until(clean, timeout_s=60, interval_s=1, message="chaoslab verify clean")
    assert isinstance(report, dict) and sum(report["orders"].values()) >= 1
