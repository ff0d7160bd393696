"""The kubectl commands `chaoslab --target k8s` runs, built as plain argv lists.

Every command names its context (when one is given) and namespace explicitly, so it
never acts on whatever cluster the shell's kubeconfig happens to point at beyond them:
`--context/--namespace`, else CHAOSLAB_K8S_CONTEXT / CHAOSLAB_K8S_NAMESPACE, else the
kubeconfig's current context and the `chaoslab` namespace. The functions here only build
commands and read kubectl's JSON; chaos/k8s_stack.py runs them.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from chaos.runner import ProgramStatus

REPO = Path(__file__).resolve().parent.parent
DEPLOY = REPO / "deploy" / "k8s"
OVERLAYS = ("training", "ci")
DEFAULT_NAMESPACE = "chaoslab"
CONTEXT_ENV = "CHAOSLAB_K8S_CONTEXT"
NAMESPACE_ENV = "CHAOSLAB_K8S_NAMESPACE"
PART_OF = "app.kubernetes.io/part-of=chaoslab"
NAME_LABEL = "app.kubernetes.io/name"
# What `chaoslab stop` remembers on a Deployment, for `chaoslab start` to scale it back.
STOPPED_REPLICAS = "chaoslab/replicas-before-stop"


class K8sError(Exception):
    pass


def render_argv(overlay: str) -> list[str]:
    """Render an overlay. The base reads grafana/ and prometheus/ from the repository,
    outside deploy/k8s: kustomize's load restrictor must be lifted for that."""
    if overlay not in OVERLAYS:
        raise K8sError(f"no overlay {overlay!r}: overlays are {', '.join(OVERLAYS)}")
    return ["kubectl", "kustomize", "--load-restrictor", "LoadRestrictionsNone", str(DEPLOY / "overlays" / overlay)]


@dataclass(frozen=True)
class Kubectl:
    """kubectl aimed at one context (None: the kubeconfig's current one) and namespace."""

    context: str | None = None
    namespace: str = DEFAULT_NAMESPACE

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Kubectl:
        return cls(env.get(CONTEXT_ENV) or None, env.get(NAMESPACE_ENV) or DEFAULT_NAMESPACE)

    def where(self) -> str:
        return f"namespace {self.namespace!r} of " + (
            f"context {self.context!r}" if self.context else "the current context"
        )

    def argv(self, *args: str) -> list[str]:
        context = ["--context", self.context] if self.context else []
        return ["kubectl", *context, "--namespace", self.namespace, *args]

    def pods(self) -> list[str]:
        return self.argv("get", "pods", "-l", PART_OF, "-o", "json")

    def get(self, kind: str, name: str) -> list[str]:
        return self.argv("get", kind, name, "-o", "json")

    def delete_pod(self, pod: str) -> list[str]:
        # --wait=false: the command returns as a crash would, while the ReplicaSet replaces it.
        return self.argv("delete", "pod", pod, "--wait=false")

    def scale(self, deployment: str, replicas: int) -> list[str]:
        return self.argv("scale", f"deployment/{deployment}", f"--replicas={replicas}")

    def remember_replicas(self, deployment: str, replicas: int) -> list[str]:
        return self.argv("annotate", "--overwrite", f"deployment/{deployment}", f"{STOPPED_REPLICAS}={replicas}")

    def rollout_restart(self, deployment: str) -> list[str]:
        return self.argv("rollout", "restart", f"deployment/{deployment}")

    def rollout_status(self, deployment: str, timeout_s: float) -> list[str]:
        return self.argv("rollout", "status", f"deployment/{deployment}", f"--timeout={timeout_s:.0f}s")

    def logs(self, program: str, lines: int) -> list[str]:
        """The last lines of every pod of a program, each line prefixed with its pod."""
        return self.argv(
            "logs", "-l", f"{NAME_LABEL}={program}", "--all-containers", "--prefix", f"--tail={lines}",
            "--max-log-requests=16",
        )  # fmt: skip

    def port_forward(self, service: str, local_port: int, port: int) -> list[str]:
        return self.argv("port-forward", f"service/{service}", f"{local_port}:{port}", "--address", "127.0.0.1")


# -- reading kubectl's JSON ---------------------------------------------------------


def program_of(pod: Mapping[str, Any]) -> str:
    return pod["metadata"].get("labels", {}).get(NAME_LABEL, "?")


def _started(pod: Mapping[str, Any]) -> float:
    text = pod.get("status", {}).get("startTime", "")
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0


def _ready(pod: Mapping[str, Any]) -> bool:
    conditions = pod.get("status", {}).get("conditions", [])
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def restarts(pod: Mapping[str, Any]) -> int:
    return sum(c.get("restartCount", 0) for c in pod.get("status", {}).get("containerStatuses", []))


def pod_rows(pods: Mapping[str, Any], now: float) -> list[ProgramStatus]:
    """One row per pod, ordered by program then name: the phase as state, readiness as
    health (None while not running), the pod's IP and restart count as its address."""
    rows = []
    for pod in sorted(pods.get("items", []), key=lambda p: (program_of(p), p["metadata"]["name"])):
        status = pod.get("status", {})
        phase = status.get("phase", "Unknown")
        running = phase == "Running" and not pod["metadata"].get("deletionTimestamp")
        started = _started(pod)
        rows.append(
            ProgramStatus(
                pod["metadata"]["name"],
                (phase if not pod["metadata"].get("deletionTimestamp") else "Terminating").upper(),
                0,
                now - started if running and started else 0.0,
                _ready(pod) if running else None,
                f"{status.get('podIP', '-')} restarts={restarts(pod)}",
            )
        )
    return rows


def pod_to_kill(pods: Mapping[str, Any], program: str) -> str:
    """A running pod of the program (the first by name), or the pod so named."""
    items = [p for p in pods.get("items", []) if not p["metadata"].get("deletionTimestamp")]
    named = [p for p in items if p["metadata"]["name"] == program]
    running = sorted(
        p["metadata"]["name"]
        for p in named or [p for p in items if program_of(p) == program]
        if p.get("status", {}).get("phase") == "Running"
    )
    if not running:
        known = sorted({program_of(p) for p in items})
        raise K8sError(f"no running pod of {program!r}: programs here are {', '.join(known) or 'none'}")
    return running[0]


def settings_refs(deployment: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """(ConfigMap, Secret) the Deployment's app container reads its settings and chaos
    token from: kustomize gives them hashed names, and only the Deployment knows which."""
    [container] = [c for c in deployment["spec"]["template"]["spec"]["containers"] if c["name"] == "app"]
    config = next((e["configMapRef"]["name"] for e in container.get("envFrom", []) if "configMapRef" in e), None)
    secret = next(
        (
            e["valueFrom"]["secretKeyRef"]["name"]
            for e in container.get("env", [])
            if e["name"] == "CHAOS_TOKEN" and "secretKeyRef" in e.get("valueFrom", {})
        ),
        None,
    )
    return config, secret


def secret_values(secret: Mapping[str, Any]) -> dict[str, str]:
    return {k: base64.b64decode(v).decode() for k, v in (secret.get("data") or {}).items()}
