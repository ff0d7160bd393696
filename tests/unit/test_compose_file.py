"""docker-compose.yml, the Dockerfile and the Prometheus files agree with the code.

The compose stack cannot be run here in milliseconds, so these tests read the files and
compare them with what the services really read: their Settings fields, default ports,
`python -m services <name>` entry point and the native stack's Prometheus jobs.
"""

from __future__ import annotations

import importlib
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from services.__main__ import SERVICES

REPO = Path(__file__).resolve().parents[2]

# The ports fixed by the contracts (docs/contracts.md#ports): the runbook, dashboards and
# drills rely on them.
CONTRACT_PORTS = {
    "gateway": 8000,
    "orders": 8001,
    "payments": 8002,
    "inventory": 8003,
    "notifications": 8004,
    "postgres": 5432,
    "redis": 6379,
    "prometheus": 9090,
    "alertmanager": 9093,
    "grafana": 3000,
    "locust-master": 8089,
    "console": 8090,
}
# The published ports' override variables, where they are not <NAME>_PORT.
PORT_VARIABLES = {"locust-master": "LOCUST_PORT"}
# What the host reaches: the front door, and what the tools need (chaos keys, verify,
# alerts) and people look at. The other services publish nothing, so they can scale.
PUBLISHED = {"gateway", "redis", "postgres", "prometheus", "alertmanager", "grafana", "locust-master", "console"}
# Images whose tag cannot say which version runs.
UNPINNED_TAGS = {"latest", "stable", "main", "master", "edge", "nightly"}


def load_yaml(relative: str) -> dict[str, Any]:
    return yaml.safe_load((REPO / relative).read_text())


COMPOSE = load_yaml("docker-compose.yml")
SERVICES_IN_COMPOSE: dict[str, dict[str, Any]] = COMPOSE["services"]


def app_command(service: dict[str, Any]) -> list[str] | None:
    """The `python -m services <name>` command of one of our services, else None."""
    command = service.get("command")
    if isinstance(command, str):
        command = command.split()
    if command and command[:3] == ["python", "-m", "services"]:
        return command
    return None


APP_SERVICES = {name: spec for name, spec in SERVICES_IN_COMPOSE.items() if app_command(spec)}


def settings_class(service: str):
    return importlib.import_module(f"services.{service}.settings").Settings


_PORT_ENTRY = re.compile(
    r"^(?:(?P<ip>[\d.]+):)?(?:\$\{(?P<var>\w+):-(?P<default>\d+)\}|(?P<host>\d+))"
    r":(?P<container>\d+)(?:/\w+)?$"
)


def port_entries(spec: dict[str, Any]) -> list[re.Match[str]]:
    entries = [_PORT_ENTRY.match(str(entry)) for entry in spec.get("ports", [])]
    assert all(entries), f"unreadable ports: {spec.get('ports')}"
    return entries


def published(spec: dict[str, Any]) -> list[tuple[str, int, int]]:
    """(host ip, host port by default, container port) of each `ports:` entry."""
    return [(m["ip"] or "", int(m["default"] or m["host"]), int(m["container"])) for m in port_entries(spec)]


def healthcheck_command(spec: dict[str, Any]) -> str:
    test = spec["healthcheck"]["test"]
    return test if isinstance(test, str) else " ".join(test)


def dockerfile_froms() -> list[tuple[str, str | None]]:
    """(image, stage name) of each FROM in the Dockerfile, ${ARG}s given their defaults."""
    text = (REPO / "Dockerfile").read_text()
    args = dict(re.findall(r"^\s*ARG\s+(\w+)=(\S+)", text, re.M | re.I))
    froms = []
    for line in text.splitlines():
        m = re.match(r"^\s*FROM\s+(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?", line, re.I)
        if m:
            image = re.sub(r"\$\{?(\w+)\}?", lambda a: args.get(a.group(1), a.group(0)), m.group(1))
            froms.append((image, m.group(2)))
    return froms


def is_pinned(image: str) -> bool:
    name, _, digest = image.partition("@")
    if digest:
        return True
    last = name.rsplit("/", 1)[-1]
    return ":" in last and last.rsplit(":", 1)[1] not in UNPINNED_TAGS


# --- our five services ----------------------------------------------------------------


def test_every_service_of_the_design_runs_in_compose():
    assert sorted(app_command(spec)[3] for spec in APP_SERVICES.values()) == sorted(SERVICES)


@pytest.mark.parametrize("name", sorted(APP_SERVICES))
def test_command_names_a_service_that_builds_an_app(name):
    command = app_command(APP_SERVICES[name])
    assert len(command) == 4, f"{name}: expected `python -m services <name>`, got {command}"
    service = command[3]
    assert service == name, f"compose service {name!r} runs {service!r}"
    assert service in SERVICES, f"{service!r} is not one of services/__main__.py's {SERVICES}"
    module = importlib.import_module(f"services.{service}.app")
    assert callable(getattr(module, "build_app", None)), f"services.{service}.app has no build_app()"


@pytest.mark.parametrize("name", sorted(APP_SERVICES))
def test_environment_sets_only_settings_fields(name):
    fields = {field.upper() for field in settings_class(name).model_fields}
    env = APP_SERVICES[name].get("environment", {})
    assert isinstance(env, dict), f"{name}: write environment as a mapping"
    unknown = sorted(set(env) - fields)
    assert not unknown, f"{name} sets {unknown}, which its Settings do not read"


@pytest.mark.parametrize("name", sorted(APP_SERVICES))
def test_service_listens_on_its_settings_and_contract_port(name):
    default_port = settings_class(name).default_port
    assert default_port == CONTRACT_PORTS[name]
    spec = APP_SERVICES[name]
    assert int(spec.get("environment", {}).get("PORT", default_port)) == default_port
    expected = [(default_port, default_port)] if name in PUBLISHED else []
    assert [(host, container) for _, host, container in published(spec)] == expected


def test_only_the_front_door_and_the_tools_infrastructure_publish_ports():
    # A published port is one container's: `--scale payments=3` would be refused.
    assert {name for name, spec in SERVICES_IN_COMPOSE.items() if spec.get("ports")} == PUBLISHED


def test_distributed_locust_is_one_image_in_two_roles_under_the_load_profile():
    master, worker = SERVICES_IN_COMPOSE["locust-master"], SERVICES_IN_COMPOSE["locust-worker"]
    assert master["profiles"] == worker["profiles"] == ["load"]
    assert master["image"] == worker["image"] and master["build"] == worker["build"]
    assert "--master" in master["command"] and "--host" in master["command"]
    command = worker["command"]
    assert "--worker" in command and command[command.index("--master-host") + 1] == "locust-master"
    assert not worker.get("ports"), "workers are scaled: they publish nothing"


@pytest.mark.parametrize("name", sorted(APP_SERVICES))
def test_service_urls_point_at_the_right_service_and_port(name):
    for var, value in APP_SERVICES[name].get("environment", {}).items():
        if var.endswith("_URL") and str(value).startswith("http"):
            target = var.removesuffix("_URL").lower()
            assert value == f"http://{target}:{CONTRACT_PORTS[target]}", f"{name}: {var}={value}"


@pytest.mark.parametrize("name", sorted(APP_SERVICES))
def test_service_listens_on_every_interface(name):
    # The settings default is 127.0.0.1, unreachable from other containers.
    env_host = APP_SERVICES[name].get("environment", {}).get("HOST")
    image_host = re.search(r"\bHOST=0\.0\.0\.0\b", (REPO / "Dockerfile").read_text())
    assert env_host == "0.0.0.0" or (env_host is None and image_host)


@pytest.mark.parametrize("name", sorted(APP_SERVICES))
def test_healthcheck_hits_health_on_its_own_port(name):
    command = healthcheck_command(APP_SERVICES[name])
    port = CONTRACT_PORTS[name]
    assert re.search(rf"//(127\.0\.0\.1|localhost):{port}/health\b", command), command


@pytest.mark.parametrize("name", sorted(APP_SERVICES))
def test_the_probe_gives_up_before_its_healthcheck_is_timed_out(name):
    # A probe that outlives the healthcheck's timeout is killed, and a slow /health reads
    # as a hung exec; seconds of exec start-up on a busy machine must fit in the gap too.
    spec = APP_SERVICES[name]
    probe_s = float(re.search(r"timeout=(\d+(?:\.\d+)?)", healthcheck_command(spec)).group(1))
    check_s = float(spec["healthcheck"]["timeout"].removesuffix("s"))
    assert probe_s + 1 < check_s, (probe_s, check_s)


@pytest.mark.parametrize("name", sorted(APP_SERVICES))
def test_service_restarts_and_is_built_from_our_dockerfile(name):
    spec = APP_SERVICES[name]
    assert spec.get("restart") == "unless-stopped"
    build = spec.get("build")
    context = build if isinstance(build, str) else build["context"]
    assert (REPO / context / "Dockerfile").exists()


# --- the whole file -------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(SERVICES_IN_COMPOSE))
def test_depends_on_waits_for_healthy(name):
    depends_on = SERVICES_IN_COMPOSE[name].get("depends_on", {})
    assert isinstance(depends_on, dict), f"{name}: the short list form starts before healthy"
    for dependency, rule in depends_on.items():
        assert rule.get("condition") == "service_healthy", f"{name} -> {dependency}"
        assert "healthcheck" in SERVICES_IN_COMPOSE[dependency], f"{dependency} has no healthcheck"


@pytest.mark.parametrize("name", sorted(SERVICES_IN_COMPOSE))
def test_ports_are_published_on_loopback_only(name):
    for entry in SERVICES_IN_COMPOSE[name].get("ports", []):
        assert str(entry).startswith("127.0.0.1:"), f"{name} publishes {entry} beyond this machine"


@pytest.mark.parametrize("name", sorted(SERVICES_IN_COMPOSE))
def test_published_ports_are_the_contract_ports(name):
    for _, host, container in published(SERVICES_IN_COMPOSE[name]):
        assert host == container == CONTRACT_PORTS[name]


@pytest.mark.parametrize("name", sorted(SERVICES_IN_COMPOSE))
def test_published_ports_are_overridable_from_the_environment(name):
    # So a test (or a second stack) can run compose beside a native stack on other ports.
    for entry in port_entries(SERVICES_IN_COMPOSE[name]):
        var = PORT_VARIABLES.get(name, f"{name.upper()}_PORT")
        assert entry["var"] == var, f"{name}: publish as ${{{var}:-port}}"


@pytest.mark.parametrize("name", sorted(SERVICES_IN_COMPOSE))
def test_every_container_has_a_healthcheck(name):
    assert SERVICES_IN_COMPOSE[name].get("healthcheck", {}).get("test"), f"{name} has no healthcheck"


@pytest.mark.parametrize("name", sorted(SERVICES_IN_COMPOSE))
def test_healthchecks_survive_podman_splitting_cmd_arguments(name):
    # Podman 4.3 splits ["CMD", ...] arguments at spaces: use CMD-SHELL.
    test = SERVICES_IN_COMPOSE[name].get("healthcheck", {}).get("test")
    if isinstance(test, list) and test and test[0] == "CMD":
        assert not any(" " in arg for arg in test[1:]), f"{name}: {test}"


@pytest.mark.parametrize("name", ["prometheus", "alertmanager", "grafana"])
def test_bind_mounted_files_exist_in_the_repo(name):
    for volume in SERVICES_IN_COMPOSE[name].get("volumes", []):
        source = str(volume).split(":")[0]
        if source.startswith("."):
            assert (REPO / source).exists(), f"{name} mounts {source}, which the repo lacks"


def test_images_are_pinned():
    for name, spec in SERVICES_IN_COMPOSE.items():
        if "image" in spec:
            assert is_pinned(spec["image"]), f"{name}: {spec['image']} is not pinned"
    stages = {stage for _, stage in dockerfile_froms() if stage}
    for image, _ in dockerfile_froms():
        assert image in stages or is_pinned(image), f"Dockerfile: FROM {image} is not pinned"


def test_dockerfile_default_image_runs_the_gateway_as_non_root():
    text = (REPO / "Dockerfile").read_text()
    assert dockerfile_froms()[0][0].partition("@")[0] == "python:3.11-slim"
    assert re.search(r"^USER\s+(?!root\b|0\b)\S+", text, re.M)
    assert 'CMD ["python", "-m", "services", "gateway"]' in text
    # Podman 4.3 splits ["CMD", ...] healthcheck arguments at spaces: shell form only.
    for line in re.findall(r"^HEALTHCHECK.*(?:\\\n.*)*", text, re.M):
        assert "NONE" in line or "CMD [" not in line


# --- Prometheus and Alertmanager ------------------------------------------------------

PROFILES = ("training", "ci")


def test_prometheus_files_are_generated_from_the_native_jobs_and_rules():
    from chaos import prometheus_config

    for path, text in prometheus_config.compose_files().items():
        assert path.exists() and path.read_text() == text, (
            f"{path.relative_to(REPO)}: run `python -m chaos.prometheus_config --write`"
        )


@pytest.mark.parametrize("profile", PROFILES)
def test_prometheus_scrapes_every_service_under_the_native_stacks_job_names(tmp_path, profile):
    from chaos import prometheus_config
    from chaos.layout import StackLayout

    compose = load_yaml(f"prometheus/compose/{profile}.yml")
    native = yaml.safe_load(
        prometheus_config.write(
            StackLayout.new(tmp_path, profile=profile, chaos_token="t", pick_free_ports=False)
        ).read_text()
    )
    assert [j["job_name"] for j in compose["scrape_configs"]] == [j["job_name"] for j in native["scrape_configs"]]
    for job in compose["scrape_configs"]:
        name = job["job_name"]
        if name in SERVICES:
            # Every replica: each A record of the service's name. No `service` target
            # label: it would clash with http_requests_total's own.
            [dns] = job["dns_sd_configs"]
            assert (dns["names"], dns["type"], dns["port"]) == ([name], "A", CONTRACT_PORTS[name])
            assert "static_configs" not in job
    assert compose["global"]["scrape_interval"] == native["global"]["scrape_interval"]


@pytest.mark.parametrize("profile", PROFILES)
def test_prometheus_loads_rules_of_the_profile_and_alerts_alertmanager(profile):
    compose = load_yaml(f"prometheus/compose/{profile}.yml")
    [pattern] = compose["rule_files"]
    assert pattern.startswith("/etc/prometheus/")
    rules = sorted((REPO / "prometheus" / pattern.removeprefix("/etc/prometheus/")).parent.glob("*.yml"))
    assert [r.name for r in rules] == [r.name for r in sorted((REPO / "prometheus" / "rules").glob("*.yml"))]
    targets = [t for am in compose["alerting"]["alertmanagers"] for sc in am["static_configs"] for t in sc["targets"]]
    assert targets == ["alertmanager:9093"]
    spec = SERVICES_IN_COMPOSE["prometheus"]
    assert any(str(v).startswith("./prometheus:/etc/prometheus") for v in spec["volumes"])
    assert "--config.file=/etc/prometheus/compose/${CHAOSLAB_PROFILE:-training}.yml" in spec["command"]


def test_alertmanager_sends_every_alert_to_the_notifications_webhook():
    """Pages and tickets alike (the routing itself: test_alertmanager_config.py). One
    exception: Watchdog, the dead man's switch, which always fires (its own test is in
    test_prometheus_rules.py)."""
    config = load_yaml("prometheus/alertmanager.yml")
    assert config["route"]["group_wait"] == "10s"
    for receiver in ("page", "ticket", config["route"]["receiver"]):
        [webhook] = next(r for r in config["receivers"] if r["name"] == receiver)["webhook_configs"]
        url = f"http://notifications:{CONTRACT_PORTS['notifications']}/alerts"
        assert {k: webhook[k] for k in ("url", "send_resolved")} == {"url": url, "send_resolved": True}
        # With the service credential, written where the file says by the container's entrypoint.
        token_file = webhook["http_config"]["authorization"]["credentials_file"]
        assert token_file in " ".join(SERVICES_IN_COMPOSE["alertmanager"]["entrypoint"])


@pytest.mark.parametrize("profile", PROFILES)
def test_alerts_live_in_alertmanager_as_long_as_on_a_native_stack(profile):
    """endsAt = 4 x max(evaluation interval, resend delay): the compose stack passes one
    resend delay for both profiles, which must give the native stack's alert lifetime."""
    from chaos import prometheus_config as pc

    flag = f"--rules.alert.resend-delay={pc.COMPOSE_RESEND_DELAY}"
    assert flag in SERVICES_IN_COMPOSE["prometheus"]["command"]
    evaluation = pc.seconds(load_yaml(f"prometheus/compose/{profile}.yml")["global"]["evaluation_interval"])
    assert 4 * max(evaluation, pc.seconds(pc.COMPOSE_RESEND_DELAY)) == pc.alert_lifetime_s(profile)


@pytest.mark.parametrize("profile", PROFILES)
def test_promtool_accepts_the_prometheus_config(profile):
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip("promtool is not on PATH (Debian package `prometheus`): config not checked")
    files = [REPO / "prometheus" / "compose" / f"{profile}.yml"]
    if profile == "ci":
        files += sorted((REPO / "prometheus" / "compose" / "ci-rules").glob("*.yml"))
    for path in files:
        kind = "config" if path.parent.name == "compose" else "rules"
        result = subprocess.run([promtool, "check", kind, str(path)], capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stdout + result.stderr


def test_grafana_opens_on_the_overview_for_anonymous_viewers():
    spec = SERVICES_IN_COMPOSE["grafana"]
    env = spec["environment"]
    assert env["GF_AUTH_ANONYMOUS_ENABLED"] == "true" and env["GF_AUTH_ANONYMOUS_ORG_ROLE"] == "Viewer"
    home = env["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    mount = next(str(v) for v in spec["volumes"] if str(v).startswith("./grafana/dashboards:"))
    assert home.startswith(mount.split(":")[1] + "/")
    assert (REPO / "grafana" / "dashboards" / home.rsplit("/", 1)[1]).exists()
