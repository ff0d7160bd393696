"""The rendered training overlay, as Podman 4.3's `kube play` can run it.

`kube play` is no cluster. It runs Pods, Deployments, PersistentVolumeClaims and
ConfigMaps, and silently skips every other kind: Namespace, Service, ServiceAccount,
Role, RoleBinding, PodDisruptionBudget, NetworkPolicy. So what it proves is that the
Deployments' containers, environment, ConfigMaps, Secret, volumes, commands and liveness
probes work with our images, and nothing about Services, budgets, policies or RBAC.
Each change below stands in for one thing the engine lacks or gets wrong; nothing else
of the rendered objects is touched.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

# What runs here: the services and what they need. Prometheus is left out (the Debian
# Prometheus standing in for prom/prometheus has no Kubernetes service discovery, and
# there is no API server to discover), Grafana (no image on these machines) and locust.
PLAYED = ("postgres", "redis", "alertmanager", "inventory", "payments", "notifications", "orders", "gateway")
# Probes run as commands inside the container here, each a process start on a shared
# machine: kubelet's HTTP and TCP probes cost far less. A floor on their timeout.
PROBE_TIMEOUT_FLOOR_S = 10


@dataclass
class Plan:
    yaml_docs: list[dict[str, Any]]
    ips: list[str]  # `--ip`, one per pod in the order of the Deployments
    secrets: dict[str, str]  # Podman secret name -> its content (JSON of the Secret's data)
    ports: dict[str, int] = field(default_factory=dict)  # deployment -> host port on 127.0.0.1
    pods: list[str] = field(default_factory=list)
    volumes: list[str] = field(default_factory=list)


def _probe_command(probe: dict[str, Any], ports: dict[str, int]) -> str | None:
    """HTTP and TCP probes as a bash command (Podman 4.3 turns them into `curl` and `nc`
    calls, which our images lack, on port 0 when the port is named)."""
    if "httpGet" in probe:
        get = probe.pop("httpGet")
        port = ports.get(get["port"], get["port"])
        request = f'printf "GET {get["path"]} HTTP/1.0\\r\\n\\r\\n" >&3'
        return f"bash -c 'exec 3<>/dev/tcp/127.0.0.1/{port} && {request} && head -1 <&3 | grep -q \" 200 \"'"
    if "tcpSocket" in probe:
        socket = probe.pop("tcpSocket")
        return f"bash -c 'exec 3<>/dev/tcp/127.0.0.1/{ports.get(socket['port'], socket['port'])}'"
    return None


def for_podman(objects: Iterable[dict[str, Any]], *, suffix: str, subnet: str, free_port: Callable[[], int]) -> Plan:
    """The played objects, renamed with `suffix` so that runs side by side do not meet."""
    objects = [o for o in objects if o]
    deployments = [o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"] in PLAYED]
    # No Services: each Service name points at its one pod by a static address instead.
    ips = {d["metadata"]["name"]: f"{subnet}.{10 + i}" for i, d in enumerate(deployments)}
    aliases = [{"ip": ip, "hostnames": [name]} for name, ip in ips.items()]
    secrets: dict[str, str] = {}
    secrets_data: dict[str, dict[str, str]] = {}  # Secret name -> its data (base64)
    plan = Plan([], list(ips.values()), secrets)
    for o in objects:
        if o["kind"] == "Secret":
            # Podman 4.3 stores a Secret of the YAML as YAML and reads it back as JSON
            # ("is not valid JSON"): it goes to Podman's secret store as JSON instead.
            secrets[f"{o['metadata']['name']}-{suffix}"] = json.dumps(o["data"])
            secrets_data[o["metadata"]["name"]] = o["data"]
        elif o["kind"] == "ConfigMap":
            # Podman keeps a ConfigMap mounted as a volume as a named volume: one per run.
            o["metadata"]["name"] += f"-{suffix}"
            plan.volumes.append(o["metadata"]["name"])
            plan.yaml_docs.append(o)
        elif o["kind"] == "PersistentVolumeClaim":
            o["metadata"]["name"] += f"-{suffix}"
            plan.volumes.append(o["metadata"]["name"])
            plan.yaml_docs.append(o)
    for d in deployments:
        name = d["metadata"]["name"]
        d["metadata"]["name"] = f"{name}-{suffix}"
        plan.pods.append(f"{name}-{suffix}-pod-0")
        # One pod each: every replica of a Deployment would claim the same host port.
        d["spec"]["replicas"] = 1
        spec = d["spec"]["template"]["spec"]
        spec["hostAliases"] = aliases
        for volume in spec.get("volumes", []):
            if "persistentVolumeClaim" in volume:
                volume["persistentVolumeClaim"]["claimName"] += f"-{suffix}"
            if "configMap" in volume:
                volume["configMap"]["name"] += f"-{suffix}"
            if "secret" in volume:
                # Podman 4.3 panics on a Secret mounted as a volume (kube/volume.go): the
                # keys it mounts become a ConfigMap of the same files, played like the others.
                volume["configMap"] = _secret_as_config_map(volume.pop("secret"), secrets_data, suffix, plan)
        for c in spec["containers"]:
            for source in c.get("envFrom", []):
                source["configMapRef"]["name"] += f"-{suffix}"
            for env in c.get("env", []):
                if "secretKeyRef" in env.get("valueFrom", {}):
                    env["valueFrom"]["secretKeyRef"]["name"] += f"-{suffix}"
            named = {p["name"]: p["containerPort"] for p in c.get("ports", [])}
            # Podman publishes every containerPort on the host, on all interfaces unless
            # told: on 127.0.0.1, on a free port.
            for port in c.get("ports", []):
                port["hostIP"], port["hostPort"] = "127.0.0.1", free_port()
                plan.ports.setdefault(name, port["hostPort"])
            # Podman 4.3 runs the liveness probe only (it ignores readiness, and the startup
            # probe): the startup probe's budget becomes the liveness probe's initial delay.
            startup = c.pop("startupProbe", None)
            probe = c.get("livenessProbe")
            if probe:
                command = _probe_command(probe, named)
                if command:
                    probe["exec"] = {"command": [command]}
                probe["timeoutSeconds"] = max(probe.get("timeoutSeconds", 1), PROBE_TIMEOUT_FLOOR_S)
                if startup:
                    probe["initialDelaySeconds"] = startup.get("failureThreshold", 3) * startup.get("periodSeconds", 10)
        plan.yaml_docs.append(d)
    return plan


def _secret_as_config_map(
    volume: dict[str, Any], secrets_data: dict[str, dict[str, str]], suffix: str, plan: Plan
) -> dict[str, Any]:
    """A ConfigMap holding the files a Secret volume mounts (its `items`, else every key),
    added to the plan; the configMap volume source that mounts it."""
    data = secrets_data[volume["secretName"]]
    items = volume.get("items") or [{"key": key, "path": key} for key in data]
    name = f"{volume['secretName']}-files-{suffix}"
    files = {item["path"]: base64.b64decode(data[item["key"]]).decode() for item in items}
    plan.yaml_docs.append({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": files})
    plan.volumes.append(name)
    return {"name": name}
