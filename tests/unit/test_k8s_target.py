"""`chaoslab --target k8s`: exactly the kubectl commands it would run.

There is no cluster here. The argv builders of chaos/k8s.py are checked word for word,
the readers of kubectl's JSON on realistic answers, and the commands end to end through
the real `chaoslab` CLI against a stand-in `kubectl` on PATH (a script that records its
arguments and answers as a cluster would): what reaches kubectl is what a user's
cluster would be asked.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from chaos.k8s import (
    STOPPED_REPLICAS,
    K8sError,
    Kubectl,
    pod_rows,
    pod_to_kill,
    render_argv,
    secret_values,
    settings_refs,
)

REPO = Path(__file__).resolve().parents[2]


def pod(name: str, program: str, *, phase: str = "Running", ready: bool = True, restarts: int = 0, **meta) -> dict:
    return {
        "metadata": {"name": name, "labels": {"app.kubernetes.io/name": program}, **meta},
        "status": {
            "phase": phase,
            "podIP": "10.0.0.7",
            "startTime": "2026-12-02T20:00:00Z",
            "conditions": [{"type": "Ready", "status": "True" if ready else "False"}],
            "containerStatuses": [{"name": "app", "restartCount": restarts}],
        },
    }


PODS = {
    "items": [
        pod("payments-7d9f-b", "payments"),
        pod("payments-7d9f-a", "payments", ready=False, restarts=2),
        pod("gateway-5c4-x", "gateway"),
        pod("orders-1-old", "orders", deletionTimestamp="2026-12-02T20:05:00Z"),
        pod("redis-0-p", "redis", phase="Pending"),
    ]
}
TOKEN_REF = {"name": "chaoslab-secrets-xyz", "key": "CHAOS_TOKEN"}
GATEWAY = {
    "metadata": {"name": "gateway"},
    "spec": {
        "replicas": 2,
        "template": {
            "spec": {
                "containers": [
                    {
                        "name": "app",
                        "envFrom": [{"configMapRef": {"name": "chaoslab-settings-abc"}}],
                        "env": [
                            {"name": "CHAOS_TOKEN", "valueFrom": {"secretKeyRef": TOKEN_REF}},
                            {"name": "PORT", "value": "8000"},
                        ],
                    }
                ]
            }
        },
    },
}  # fmt: skip


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


SECRET = {
    "data": {"CHAOS_TOKEN": b64("s3cret"), "DATABASE_URL": b64("postgresql://chaoslab:pw@postgres:5432/chaoslab")}
}


# --- argv, word for word --------------------------------------------------------------


def test_render_lifts_the_load_restrictor_for_the_repositorys_files():
    assert render_argv("ci") == [
        "kubectl", "kustomize", "--load-restrictor", "LoadRestrictionsNone", str(REPO / "deploy/k8s/overlays/ci"),
    ]  # fmt: skip
    with pytest.raises(K8sError, match="overlays are training, ci"):
        render_argv("prod")


def test_every_command_names_its_context_and_namespace():
    kube = Kubectl("kind-chaoslab", "team-a")
    assert kube.pods() == [
        "kubectl", "--context", "kind-chaoslab", "--namespace", "team-a",
        "get", "pods", "-l", "app.kubernetes.io/part-of=chaoslab", "-o", "json",
    ]  # fmt: skip
    bare = Kubectl()
    assert bare.delete_pod("payments-7d9f-a") == [
        "kubectl", "--namespace", "chaoslab", "delete", "pod", "payments-7d9f-a", "--wait=false",
    ]  # fmt: skip
    assert bare.scale("payments", 3) == [
        "kubectl",
        "--namespace",
        "chaoslab",
        "scale",
        "deployment/payments",
        "--replicas=3",
    ]
    assert bare.logs("orders", 50) == [
        "kubectl", "--namespace", "chaoslab", "logs", "-l", "app.kubernetes.io/name=orders", "--all-containers",
        "--prefix", "--tail=50", "--max-log-requests=16",
    ]  # fmt: skip
    assert bare.port_forward("postgres", 40123, 5432) == [
        "kubectl", "--namespace", "chaoslab", "port-forward", "service/postgres", "40123:5432",
        "--address", "127.0.0.1",
    ]  # fmt: skip
    assert bare.rollout_restart("orders")[-3:] == ["rollout", "restart", "deployment/orders"]
    assert bare.rollout_status("orders", 120)[-4:] == ["rollout", "status", "deployment/orders", "--timeout=120s"]
    assert bare.remember_replicas("redis", 1)[-4:] == [
        "annotate",
        "--overwrite",
        "deployment/redis",
        f"{STOPPED_REPLICAS}=1",
    ]


def test_context_and_namespace_come_from_the_environment():
    assert Kubectl.from_env({"CHAOSLAB_K8S_CONTEXT": "c", "CHAOSLAB_K8S_NAMESPACE": "n"}) == Kubectl("c", "n")
    assert Kubectl.from_env({}) == Kubectl(None, "chaoslab")


# --- reading kubectl's answers --------------------------------------------------------


def test_status_has_a_row_per_pod_with_readiness_as_health():
    rows = {r.name: r for r in pod_rows(PODS, now=1_796_241_600.0 + 60)}
    assert list(rows) == ["gateway-5c4-x", "orders-1-old", "payments-7d9f-a", "payments-7d9f-b", "redis-0-p"]
    assert (rows["payments-7d9f-b"].state, rows["payments-7d9f-b"].healthy) == ("RUNNING", True)
    assert rows["payments-7d9f-a"].healthy is False and rows["payments-7d9f-a"].url == "10.0.0.7 restarts=2"
    assert rows["orders-1-old"].state == "TERMINATING" and rows["orders-1-old"].healthy is None
    assert rows["redis-0-p"].state == "PENDING" and rows["redis-0-p"].uptime_s == 0


def test_kill_picks_a_running_pod_of_the_program_or_the_pod_named():
    assert pod_to_kill(PODS, "payments") == "payments-7d9f-a"
    assert pod_to_kill(PODS, "payments-7d9f-b") == "payments-7d9f-b"
    with pytest.raises(K8sError, match="no running pod of 'orders'"):
        pod_to_kill(PODS, "orders")  # its only pod is terminating
    with pytest.raises(K8sError, match="programs here are gateway, payments, redis"):
        pod_to_kill(PODS, "nope")


def test_settings_and_token_are_read_from_what_the_gateway_uses():
    assert settings_refs(GATEWAY) == ("chaoslab-settings-abc", "chaoslab-secrets-xyz")
    assert secret_values(SECRET)["CHAOS_TOKEN"] == "s3cret"


# --- the commands, through a stand-in kubectl ------------------------------------------

ORDER_LOG = '{"event": "order.placed", "correlation_id": "c-9"}'
FAKE_KUBECTL = """\
#!{python}
# A stand-in for kubectl: records its arguments, answers as a cluster would.
import json, sys
args = sys.argv[1:]
with open({log!r}, "a") as log:
    log.write(json.dumps(args) + "\\n")
answers = json.load(open({answers!r}))
words = [a for a in args if not a.startswith("-")]
if args[args.index("--namespace") + 1] not in ("chaoslab", "lab"):
    print("Error from server (NotFound): the chaoslab stack lives in chaoslab and lab only", file=sys.stderr)
    sys.exit(1)
for key, answer in answers.items():
    if key in " ".join(words):
        print(answer if isinstance(answer, str) else json.dumps(answer))
        sys.exit(0)
if words[-1:] == ["json"] or "get" in words:
    print("Error from server (NotFound): " + " ".join(words), file=sys.stderr)
    sys.exit(1)
"""


@pytest.fixture
def cluster(tmp_path):
    """Runs `chaoslab <args> --target k8s` against the stand-in; returns (result, argvs)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log, answers = tmp_path / "kubectl.log", tmp_path / "answers.json"
    answers.write_text(
        json.dumps(
            {
                "get deployment gateway": GATEWAY,
                "get configmap chaoslab-settings-abc": {"data": {"CHAOSLAB_PROFILE": "ci"}},
                "get secret chaoslab-secrets-xyz": SECRET,
                "get pods app.kubernetes.io/part-of=chaoslab": PODS,
                "get deployment redis": {"metadata": {"name": "redis"}, "spec": {"replicas": 1}},
                "logs app.kubernetes.io/name=orders": f"[pod/orders-1/app] {ORDER_LOG}",
            }
        )
    )
    kubectl = bin_dir / "kubectl"
    kubectl.write_text(FAKE_KUBECTL.format(python=sys.executable, log=str(log), answers=str(answers)))
    kubectl.chmod(0o755)

    def run(*args: str) -> tuple[subprocess.CompletedProcess, list[list[str]]]:
        log.write_text("")
        env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "COLUMNS": "200"}
        env.pop("CHAOSLAB_K8S_CONTEXT", None)
        env.pop("CHAOSLAB_K8S_NAMESPACE", None)
        result = subprocess.run(
            [sys.executable, "-m", "chaos.cli", *args],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        return result, [json.loads(line) for line in log.read_text().splitlines()]

    return run


FIND_STACK = [
    ["--context", "kind-x", "--namespace", "lab", "get", "deployment", "gateway", "-o", "json"],
    ["--context", "kind-x", "--namespace", "lab", "get", "configmap", "chaoslab-settings-abc", "-o", "json"],
    ["--context", "kind-x", "--namespace", "lab", "get", "secret", "chaoslab-secrets-xyz", "-o", "json"],
]


def test_status_lists_pods_and_fails_while_one_is_not_ready(cluster):
    result, calls = cluster("--context", "kind-x", "--namespace", "lab", "status", "--target", "k8s")
    assert calls == [
        *FIND_STACK,
        [*FIND_STACK[0][:4], "get", "pods", "-l", "app.kubernetes.io/part-of=chaoslab", "-o", "json"],
    ]
    assert "payments-7d9f-b" in result.stdout and "namespace 'lab' of context 'kind-x'" in result.stdout
    assert result.returncode == 1, "payments-7d9f-a is not ready"


def test_kill_deletes_one_running_pod(cluster):
    result, calls = cluster("--context", "kind-x", "--namespace", "lab", "kill", "payments", "--target", "k8s")
    assert result.returncode == 0, result.stderr
    assert calls[-1] == [*FIND_STACK[0][:4], "delete", "pod", "payments-7d9f-a", "--wait=false"]
    assert "Deleted pod payments-7d9f-a" in result.stdout


def test_scale_scales_the_deployment_and_refuses_a_silly_count(cluster):
    result, calls = cluster("scale", "payments", "3", "--target", "k8s")
    assert result.returncode == 0, result.stderr
    assert calls[-1] == ["--namespace", "chaoslab", "scale", "deployment/payments", "--replicas=3"]
    result, calls = cluster("scale", "payments", "99", "--target", "k8s")
    assert result.returncode == 2 and "between 0 and 20" in result.stderr
    assert not any("scale" in call for call in calls)


def test_stop_remembers_the_replicas_and_start_scales_back(cluster):
    result, calls = cluster("stop", "redis", "--target", "k8s")
    assert result.returncode == 0, result.stderr
    assert calls[-2:] == [
        ["--namespace", "chaoslab", "annotate", "--overwrite", "deployment/redis", f"{STOPPED_REPLICAS}=1"],
        ["--namespace", "chaoslab", "scale", "deployment/redis", "--replicas=0"],
    ]


def test_logs_filter_one_request_across_pods(cluster):
    result, calls = cluster("logs", "orders", "--correlation-id", "c-9", "--target", "k8s")
    assert result.returncode == 0, result.stderr
    assert calls[-1][:7] == [
        "--namespace",
        "chaoslab",
        "logs",
        "-l",
        "app.kubernetes.io/name=orders",
        "--all-containers",
        "--prefix",
    ]
    assert "order.placed" in result.stdout


def test_no_cluster_is_a_clear_error_not_a_traceback(cluster):
    result, _calls = cluster("--namespace", "elsewhere", "chaos", "list", "--target", "k8s")
    assert result.returncode == 1
    assert "no chaoslab gateway in namespace 'elsewhere'" in result.stderr and "Traceback" not in result.stderr


def test_monkey_refuses_the_cluster_saying_what_to_use(cluster):
    result, _calls = cluster("monkey", "--target", "k8s")
    assert result.returncode == 2 and "chaoslab kill --target k8s" in result.stderr
