"""deploy/k8s renders, validates, and agrees with the code and with the compose stack.

No cluster runs here, so every overlay is rendered for real (`kubectl kustomize`, the
command chaos/k8s.py gives users), checked strictly against the Kubernetes schemas
(`kubernetes-validate --strict`), and the rendered objects are compared with what the
services read (their Settings, ports and /health), with docker-compose.yml (images,
environment, Grafana) and with the files in grafana/ and prometheus/: a dashboard, rule
or setting that has no counterpart in the manifests fails a test here.
"""

from __future__ import annotations

import base64
import functools
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from chaos import prometheus_config
from chaos.k8s import NAME_LABEL, OVERLAYS, PART_OF, render_argv
from chaos.layout import StackLayout
from services.__main__ import SERVICES
from tests.unit.test_compose_file import CONTRACT_PORTS, SERVICES_IN_COMPOSE, settings_class

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
WORKLOADS = ("Deployment", "StatefulSet", "DaemonSet", "Job")
SECRET_NAMES = ("CHAOS_TOKEN", "DATABASE_URL", "POSTGRES_PASSWORD", "SERVICE_TOKEN")


@functools.cache
def render(overlay: str) -> str:
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    result = subprocess.run(render_argv(overlay), capture_output=True, text=True, timeout=60, env=env)
    assert result.returncode == 0, result.stderr
    return result.stdout


class Rendered:
    """The objects of one rendered overlay, by kind and name (generated names unhashed)."""

    def __init__(self, overlay: str, text: str) -> None:
        self.overlay, self.text = overlay, text
        self.objects = [o for o in yaml.safe_load_all(text) if o]

    def all(self, kind: str) -> list[dict[str, Any]]:
        return [o for o in self.objects if o["kind"] == kind]

    def one(self, kind: str, name: str) -> dict[str, Any]:
        """By name; a ConfigMap or Secret by the name before kustomize's hash suffix."""
        found = [
            o
            for o in self.all(kind)
            if o["metadata"]["name"] == name
            or (kind in ("ConfigMap", "Secret") and o["metadata"]["name"].rpartition("-")[0] == name)
        ]
        assert len(found) == 1, f"{self.overlay}: {len(found)} {kind} named {name!r}"
        return found[0]

    def container(self, deployment: str) -> dict[str, Any]:
        return self.one("Deployment", deployment)["spec"]["template"]["spec"]["containers"][0]

    def config(self, name: str) -> dict[str, str]:
        return self.one("ConfigMap", name)["data"]

    def secret(self, name: str) -> dict[str, str]:
        return {k: base64.b64decode(v).decode() for k, v in self.one("Secret", name)["data"].items()}

    def env(self, deployment: str) -> dict[str, Any]:
        """The container's environment: envFrom ConfigMaps expanded, then env entries
        (a value, or the valueFrom reference itself)."""
        container = self.container(deployment)
        out: dict[str, Any] = {}
        for source in container.get("envFrom", []):
            name = source["configMapRef"]["name"]
            out.update(next(o for o in self.all("ConfigMap") if o["metadata"]["name"] == name)["data"])
        for entry in container.get("env", []):
            out[entry["name"]] = entry.get("value", entry.get("valueFrom"))
        return out


@pytest.fixture(scope="module", params=OVERLAYS)
def rendered(request) -> Iterator[Rendered]:
    yield Rendered(request.param, render(request.param))


@pytest.fixture(scope="module")
def training() -> Rendered:
    return Rendered("training", render("training"))


def pod_specs(r: Rendered) -> Iterator[tuple[str, dict[str, Any]]]:
    for o in r.objects:
        if o["kind"] in WORKLOADS:
            yield o["metadata"]["name"], o["spec"]["template"]["spec"]


# --- rendered and valid ---------------------------------------------------------------


def test_every_object_passes_the_kubernetes_schemas_strictly(rendered, tmp_path):
    path = tmp_path / f"{rendered.overlay}.yaml"
    path.write_text(rendered.text)
    result = subprocess.run(
        [str(BIN / "kubernetes-validate"), "--strict", "--quiet", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    kinds = {o["kind"] for o in rendered.objects}
    assert {"Deployment", "Service", "PodDisruptionBudget", "NetworkPolicy", "Secret", "ConfigMap"} <= kinds


def test_everything_lands_in_the_overlays_namespace(rendered):
    [namespace] = rendered.all("Namespace")
    expected = namespace["metadata"]["name"]
    for o in rendered.objects:
        if o["kind"] != "Namespace":
            assert o["metadata"].get("namespace") == expected, f"{o['kind']}/{o['metadata']['name']}"


def test_every_configmap_and_secret_a_pod_uses_is_rendered(rendered):
    names = {(o["kind"], o["metadata"]["name"]) for o in rendered.objects}
    for workload, spec in pod_specs(rendered):
        refs = [("ConfigMap", v["configMap"]["name"]) for v in spec.get("volumes", []) if "configMap" in v]
        refs += [("PersistentVolumeClaim", v["persistentVolumeClaim"]["claimName"]) for v in spec.get("volumes", [])
                 if "persistentVolumeClaim" in v]  # fmt: skip
        for c in spec["containers"]:
            refs += [("ConfigMap", e["configMapRef"]["name"]) for e in c.get("envFrom", []) if "configMapRef" in e]
            refs += [
                ("Secret", e["valueFrom"]["secretKeyRef"]["name"])
                for e in c.get("env", [])
                if "secretKeyRef" in e.get("valueFrom", {})
            ]
        missing = [ref for ref in refs if ref not in names]
        assert not missing, f"{workload} uses {missing}, which the overlay does not render"


def test_every_pod_carries_the_labels_chaoslab_selects_it_by(rendered):
    """`chaoslab --target k8s` finds pods by PART_OF (status) and NAME_LABEL (kill, logs)."""
    key, _, value = PART_OF.partition("=")
    for o in rendered.objects:
        if o["kind"] in WORKLOADS:
            labels = o["spec"]["template"]["metadata"]["labels"]
            assert labels.get(key) == value and labels.get(NAME_LABEL) == o["metadata"]["name"], o["metadata"]["name"]


# --- our five services ----------------------------------------------------------------


@pytest.mark.parametrize("name", SERVICES)
def test_each_service_runs_from_the_one_image_on_its_contract_port(rendered, name):
    container = rendered.container(name)
    assert container["command"] == ["python", "-m", "services", name]
    assert container["image"] == SERVICES_IN_COMPOSE[name]["image"], "one image, as in compose"
    port = settings_class(name).default_port
    assert port == CONTRACT_PORTS[name]
    assert container["ports"] == [{"name": "http", "containerPort": port}]
    assert rendered.env(name)["PORT"] == str(port)
    [service_port] = rendered.one("Service", name)["spec"]["ports"]
    assert (service_port["port"], service_port["targetPort"]) == (port, "http")


@pytest.mark.parametrize("name", SERVICES)
def test_each_service_sets_what_compose_sets_and_only_settings_fields(rendered, name):
    env = rendered.env(name)
    fields = {field.upper() for field in settings_class(name).model_fields}
    assert set(env) <= fields, f"{name} sets {sorted(set(env) - fields)}, which its Settings do not read"
    # REPLICA=auto reads the number in a compose container's name; a Deployment's pods
    # are interchangeable and their names carry none. PROCESSOR_CONNECTIONS is compose's
    # pass-through from the shell (a small machine's cannot-scale); a cluster has room.
    compose_env = set(SERVICES_IN_COMPOSE[name]["environment"]) - {"REPLICA", "PROCESSOR_CONNECTIONS"}
    assert set(env) == compose_env, "the compose service sets other names"
    assert env["HOST"] == "0.0.0.0"  # the settings default, 127.0.0.1, is unreachable from other pods
    assert env["CHAOSLAB_PROFILE"] == rendered.overlay


@pytest.mark.parametrize("name", SERVICES)
def test_services_find_each_other_by_service_dns_name(rendered, name):
    services = {s["metadata"]["name"]: s for s in rendered.all("Service")}
    env = rendered.env(name)
    urls = {var: value for var, value in env.items() if var.endswith("_URL") and isinstance(value, str)}
    urls.setdefault("DATABASE_URL", rendered.secret("chaoslab-secrets")["DATABASE_URL"])
    for var, value in urls.items():
        target = urlsplit(value)
        assert target.hostname in services, f"{name}: {var}={value} names no Service"
        assert target.port in [p["port"] for p in services[target.hostname]["spec"]["ports"]], f"{var}={value}"
        if var.removesuffix("_URL").lower() in SERVICES:
            assert value == f"http://{var.removesuffix('_URL').lower()}:{target.port}"


@pytest.mark.parametrize("name", SERVICES)
def test_secrets_come_from_a_secret_never_a_configmap(rendered, name):
    env = rendered.env(name)
    assert env["CHAOS_TOKEN"] == {
        "secretKeyRef": {"name": env["CHAOS_TOKEN"]["secretKeyRef"]["name"], "key": "CHAOS_TOKEN"}
    }
    if "DATABASE_URL" in env:
        assert env["DATABASE_URL"]["secretKeyRef"]["key"] == "DATABASE_URL"
    for config in rendered.all("ConfigMap"):
        for key, value in (config.get("data") or {}).items():
            assert key not in SECRET_NAMES, f"ConfigMap {config['metadata']['name']} holds {key}"
            assert "dev-placeholder" not in value, f"ConfigMap {config['metadata']['name']} holds a secret"


def test_the_dev_secrets_agree_with_each_other(rendered):
    secret = rendered.secret("chaoslab-secrets")
    assert set(secret) == set(SECRET_NAMES)
    url = urlsplit(secret["DATABASE_URL"])
    assert (url.username, url.password) == ("chaoslab", secret["POSTGRES_PASSWORD"])
    postgres = {e["name"]: e for e in rendered.container("postgres")["env"]}
    assert postgres["POSTGRES_PASSWORD"]["valueFrom"]["secretKeyRef"]["key"] == "POSTGRES_PASSWORD"
    assert postgres["POSTGRES_USER"]["value"] == url.username and postgres["POSTGRES_DB"]["value"] == url.path[1:]


@pytest.mark.parametrize("name", SERVICES)
def test_readiness_is_health_and_liveness_means_something_else(rendered, name):
    container = rendered.container(name)
    ready, live = container["readinessProbe"]["httpGet"], container["livenessProbe"]["httpGet"]
    assert ready == {"path": "/health", "port": "http"}
    # /health fails while PostgreSQL or Redis does: as liveness, an outage would restart every pod.
    assert live["port"] == "http" and live["path"] != "/health"
    from services.common.faults.injection import EXEMPT_PREFIXES

    assert live["path"].startswith(EXEMPT_PREFIXES), "a fault must never fail the liveness probe"
    assert container["startupProbe"]["httpGet"] == live


def test_training_runs_several_replicas_each_kept_by_a_disruption_budget(training):
    budgets = {
        p["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"]: p for p in training.all("PodDisruptionBudget")
    }
    for name in SERVICES:
        deployment = training.one("Deployment", name)
        assert deployment["spec"]["replicas"] > 1, name
        assert deployment["spec"]["selector"]["matchLabels"] == {"app.kubernetes.io/name": name}
        assert 0 < budgets[name]["spec"]["minAvailable"] < deployment["spec"]["replicas"], name


def test_every_container_has_requests_and_limits(rendered):
    for workload, spec in pod_specs(rendered):
        for c in spec["containers"]:
            for kind in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(c.get("resources", {}).get(kind, {})), f"{workload}/{c['name']}"


def test_data_stores_are_marked_dev_only_or_stateful(rendered):
    for name in ("postgres", "redis"):
        found = [o for o in rendered.objects if o["kind"] in WORKLOADS and o["metadata"]["name"] == name]
        assert len(found) == 1, name
        o = found[0]
        assert o["kind"] == "StatefulSet" or "chaoslab/dev-only" in o["metadata"].get("annotations", {}), name
        assert o["spec"]["template"]["spec"]["containers"][0]["image"] == SERVICES_IN_COMPOSE[name]["image"]


# --- reachable from outside: the gateway only ------------------------------------------


def _opens_to_outside(rule: dict[str, Any]) -> bool:
    """An ingress rule lets traffic from outside the namespace in when it names no source,
    or a namespace selector or IP block."""
    sources = rule.get("from")
    return not sources or any("namespaceSelector" in s or "ipBlock" in s for s in sources)


def _selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    assert set(selector) <= {"matchLabels"}, f"this test reads matchLabels only: {selector}"
    return all(labels.get(k) == v for k, v in selector.get("matchLabels", {}).items())


def test_only_the_gateway_is_reachable_from_outside_the_namespace(rendered):
    policies = [p["spec"] for p in rendered.all("NetworkPolicy") if "Ingress" in p["spec"]["policyTypes"]]
    open_to_outside, unguarded = set(), set()
    for o in rendered.objects:
        if o["kind"] not in WORKLOADS:
            continue
        labels = o["spec"]["template"]["metadata"]["labels"]
        mine = [p for p in policies if _selects(p["podSelector"], labels)]
        if not mine:
            unguarded.add(o["metadata"]["name"])
        if any(_opens_to_outside(rule) for p in mine for rule in p.get("ingress", [])):
            open_to_outside.add(o["metadata"]["name"])
    assert not unguarded, f"no NetworkPolicy selects {sorted(unguarded)}: open to every source"
    assert open_to_outside == {"gateway"}


# --- Prometheus, Alertmanager, Grafana: the repository's files, not copies ------------


def test_prometheus_loads_the_profiles_rules_as_they_are_in_the_repository(rendered):
    rules_dir = REPO / "prometheus" / ("rules" if rendered.overlay == "training" else "compose/ci-rules")
    expected = {p.name: p.read_text() for p in sorted(rules_dir.glob("*.yml"))}
    assert expected, rules_dir
    assert rendered.config("prometheus-rules") == expected
    assert {p.name for p in (REPO / "prometheus" / "rules").glob("*.yml")} == set(expected)
    config = yaml.safe_load(rendered.config("prometheus-config")["prometheus.yml"])
    [pattern] = config["rule_files"]
    mounts = {m["name"]: m["mountPath"] for m in rendered.container("prometheus")["volumeMounts"]}
    assert pattern == f"{mounts['rules']}/*.yml"
    assert f"--config.file={mounts['config']}/prometheus.yml" in rendered.container("prometheus")["args"]


def test_prometheus_scrapes_the_native_jobs_at_the_profiles_interval(rendered, tmp_path):
    config = yaml.safe_load(rendered.config("prometheus-config")["prometheus.yml"])
    native = yaml.safe_load(
        prometheus_config.write(
            StackLayout.new(tmp_path, profile=rendered.overlay, chaos_token="t", pick_free_ports=False)
        ).read_text()
    )
    assert [j["job_name"] for j in config["scrape_configs"]] == [j["job_name"] for j in native["scrape_configs"]]
    assert config["global"]["scrape_interval"] == native["global"]["scrape_interval"]
    assert config["global"]["evaluation_interval"] == native["global"]["evaluation_interval"]
    for job in config["scrape_configs"]:
        if job["job_name"] in SERVICES:
            # Every replica behind the service's Service, on its `http` port.
            assert job["kubernetes_sd_configs"] == [{"role": "endpoints", "namespaces": {"own_namespace": True}}]
            keep = job["relabel_configs"][0]
            assert keep["action"] == "keep" and keep["regex"] == f"{job['job_name']};http"
    targets = [t for am in config["alerting"]["alertmanagers"] for sc in am["static_configs"] for t in sc["targets"]]
    assert targets == [f"alertmanager:{CONTRACT_PORTS['alertmanager']}"]


def test_prometheus_may_discover_endpoints_in_its_namespace(rendered):
    spec = rendered.one("Deployment", "prometheus")["spec"]["template"]["spec"]
    binding = rendered.one("RoleBinding", "prometheus-discovery")
    assert binding["subjects"] == [
        {
            "kind": "ServiceAccount",
            "name": spec["serviceAccountName"],
            "namespace": rendered.all("Namespace")[0]["metadata"]["name"],
        }
    ]
    role = rendered.one("Role", binding["roleRef"]["name"])
    assert any("endpoints" in r["resources"] and "list" in r["verbs"] for r in role["rules"])


def test_alerts_live_in_alertmanager_as_long_as_on_a_native_stack(rendered):
    args = rendered.container("prometheus")["args"]
    [delay] = [a.partition("=")[2] for a in args if a.startswith("--rules.alert.resend-delay=")]
    config = yaml.safe_load(rendered.config("prometheus-config")["prometheus.yml"])
    evaluation = prometheus_config.seconds(config["global"]["evaluation_interval"])
    assert 4 * max(evaluation, prometheus_config.seconds(delay)) == prometheus_config.alert_lifetime_s(rendered.overlay)


def test_monitoring_runs_the_compose_images_and_flags(rendered):
    for name in ("prometheus", "alertmanager", "grafana"):
        container = rendered.container(name)
        assert container["image"] == SERVICES_IN_COMPOSE[name]["image"], name
    compose_flags = [f for f in SERVICES_IN_COMPOSE["alertmanager"]["command"] if not f.startswith("--config.file")]
    assert compose_flags == [f for f in rendered.container("alertmanager")["args"] if not f.startswith("--config.file")]
    assert rendered.config("alertmanager-config") == {
        "alertmanager.yml": (REPO / "prometheus" / "alertmanager.yml").read_text()
    }


def test_grafana_gets_every_dashboard_and_provisioning_file_from_the_repository(rendered):
    dashboards = {p.name: p.read_text() for p in sorted((REPO / "grafana" / "dashboards").glob("*.json"))}
    assert rendered.config("grafana-dashboards") == dashboards
    for kind, configmap in (("datasources", "grafana-datasources"), ("dashboards", "grafana-dashboard-provider")):
        files = {p.name: p.read_text() for p in (REPO / "grafana" / "provisioning" / kind).glob("*.yml")}
        assert rendered.config(configmap) == files, configmap
    container = rendered.container("grafana")
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    provider = yaml.safe_load((REPO / "grafana/provisioning/dashboards/provider.yml").read_text())
    assert {p["options"]["path"] for p in provider["providers"]} <= mounts
    assert {"/etc/grafana/provisioning/datasources", "/etc/grafana/provisioning/dashboards"} <= mounts
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env == SERVICES_IN_COMPOSE["grafana"]["environment"]
    datasource = yaml.safe_load((REPO / "grafana/provisioning/datasources/prometheus.yml").read_text())
    url = urlsplit(datasource["datasources"][0]["url"])
    assert url.hostname in {s["metadata"]["name"] for s in rendered.all("Service")}
    assert json.loads(dashboards["overview.json"])  # the home dashboard is one of them


def test_locust_master_and_workers_drive_the_gateway(rendered):
    master, worker = rendered.container("locust"), rendered.container("locust-worker")
    assert master["image"] == worker["image"] == SERVICES_IN_COMPOSE["locust-master"]["image"]
    assert "--master" in master["command"] and "--worker" in worker["command"]
    assert master["command"][master["command"].index("--host") + 1] == f"http://gateway:{CONTRACT_PORTS['gateway']}"
    assert worker["command"][worker["command"].index("--master-host") + 1] == "locust"
    assert rendered.one("Deployment", "locust-worker")["spec"]["replicas"] >= 1
