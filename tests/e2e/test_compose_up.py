"""`docker compose up` of our docker-compose.yml, for real: build, start, place an order.

Needs a container engine that answers `docker info` (Docker, or Podman behind the Docker
API: CI starts one in a set-up step); skipped otherwise, never started from here.
Grafana, Prometheus, Alertmanager and locust stay out: only the order path is checked.

Where no registry is reachable, redis and postgres run as stand-ins built from Debian
packages (tests/e2e/standins/<name>/Dockerfile) and tagged with the official names our
compose file uses; an official image already on the machine is used as it is.
"""
from __future__ import annotations

import os
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest
import yaml

from tests.support.api import new_key, place_order

REPO = Path(__file__).resolve().parents[2]
STANDINS = Path(__file__).resolve().parent / "standins"
STANDIN_BASE = "localhost/debian:bookworm"
PROJECT = "chaoslab-e2e"
INFRA = ("redis", "postgres")
APPS = ("gateway", "orders", "payments", "inventory", "notifications")

pytestmark = pytest.mark.timeout(360)


class Engine:
    """The `docker` CLI against whichever engine answers, with a bound on every call."""

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.timings: dict[str, float] = {}

    def run(self, *args: str, timeout_s: float, check: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run(["docker", *args], cwd=REPO, env=self.env, capture_output=True,
                                text=True, timeout=timeout_s)
        if check and result.returncode != 0:
            raise AssertionError(f"`docker {' '.join(args)}` exited {result.returncode}:\n"
                                 f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
        return result

    def compose(self, *args: str, timeout_s: float, check: bool = True) -> subprocess.CompletedProcess:
        return self.run("compose", "-p", PROJECT, "-f", str(REPO / "docker-compose.yml"), *args,
                        timeout_s=timeout_s, check=check)

    def timed(self, phase: str, *args: str, timeout_s: float) -> subprocess.CompletedProcess:
        started = time.monotonic()
        try:
            return self.compose(*args, timeout_s=timeout_s)
        finally:
            self.timings[phase] = round(time.monotonic() - started, 1)

    def image_label(self, image: str, label: str) -> str | None:
        """The label's value ('' when unset), or None when the image is not on the machine."""
        result = self.run("image", "inspect", "--format", f'{{{{index .Config.Labels "{label}"}}}}',
                          image, timeout_s=30, check=False)
        if result.returncode != 0:
            return None
        value = result.stdout.strip()
        return "" if value == "<no value>" else value

    def diagnostics(self) -> str:
        ps = self.compose("ps", "-a", timeout_s=30, check=False)
        logs = self.compose("logs", "--no-color", "--tail", "40", timeout_s=60, check=False)
        return f"{ps.stdout}\n{logs.stdout[-8000:]}{logs.stderr[-2000:]}"


@pytest.fixture(scope="module")
def engine() -> Engine:
    env = dict(os.environ)
    try:
        info = subprocess.run(["docker", "info", "--format", "{{.ServerVersion}} {{.OperatingSystem}}"],
                              env=env, capture_output=True, text=True, timeout=5)
    except FileNotFoundError:
        pytest.skip("no `docker` CLI on PATH")
    except subprocess.TimeoutExpired:
        pytest.skip("`docker info` did not answer within 5 s: no container engine running")
    if info.returncode != 0:
        pytest.skip(f"no container engine answers `docker info`: {info.stderr.strip()[:300]}")
    version = subprocess.run(["docker", "version"], env=env, capture_output=True, text=True, timeout=10)
    if "podman" in version.stdout.lower():
        # Podman serves no BuildKit: compose must use the classic builder.
        env.setdefault("DOCKER_BUILDKIT", "0")
        env.setdefault("COMPOSE_BAKE", "false")
    env["CHAOSLAB_PROFILE"] = "ci"
    return Engine(env)


def compose_file() -> dict:
    return yaml.safe_load((REPO / "docker-compose.yml").read_text())


def host_ports(services: tuple[str, ...]) -> dict[str, int]:
    spec = compose_file()["services"]
    return {name: int(str(entry).split(":")[1]) for name in services for entry in spec[name].get("ports", [])}


def port_in_use(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def provide_infra_images(engine: Engine) -> None:
    """Official redis/postgres images when present; else our Debian stand-ins, rebuilt
    (cached: ~1 s) so that they follow their Dockerfiles; else compose pulls."""
    spec = compose_file()["services"]
    started = time.monotonic()
    base_present = engine.image_label(STANDIN_BASE, "chaoslab.standin") is not None
    for name in INFRA:
        image = spec[name]["image"]
        label = engine.image_label(image, "chaoslab.standin")
        if label == "":
            continue  # an image that is not ours: the official one
        if base_present:
            engine.run("build", "-q", "-t", image, str(STANDINS / name), timeout_s=300)
    engine.timings["infra images"] = round(time.monotonic() - started, 1)


def test_compose_up_serves_an_idempotent_order(engine: Engine):
    services = INFRA + APPS
    busy = {name: port for name, port in host_ports(services).items() if port_in_use(port)}
    assert not busy, f"ports compose publishes are taken on 127.0.0.1 (another stack running?): {busy}"

    started = time.monotonic()
    engine.compose("down", "-v", "--remove-orphans", timeout_s=120)  # what a killed run left
    try:
        provide_infra_images(engine)
        engine.timed("build", "build", "gateway", timeout_s=240)  # the five share one image
        try:
            engine.timed("up --wait", "up", "-d", "--wait", "--wait-timeout", "150", *services,
                         timeout_s=180)
        except (AssertionError, subprocess.TimeoutExpired) as exc:
            raise AssertionError(f"{exc}\n{engine.diagnostics()}") from None

        gateway = f"http://127.0.0.1:{host_ports(('gateway',))['gateway']}"
        key = new_key()
        with httpx.Client(timeout=30) as client:
            first = place_order(client, gateway, "SKU-001", 2, key=key)
            assert first.status_code == 201, f"{first.status_code} {first.text}\n{engine.diagnostics()}"
            order = first.json()
            assert order["status"] == "confirmed"
            assert order["total_cents"] == 2 * order["items"][0]["unit_price_cents"]
            assert "Idempotency-Replayed" not in first.headers

            again = place_order(client, gateway, "SKU-001", 2, key=key)
            assert again.status_code == 201, again.text
            assert again.headers.get("Idempotency-Replayed") == "true"
            assert again.json() == order
    finally:
        down_started = time.monotonic()
        engine.compose("down", "-v", "--remove-orphans", timeout_s=120, check=False)
        engine.timings["down -v"] = round(time.monotonic() - down_started, 1)
        engine.timings["whole test"] = round(time.monotonic() - started, 1)
        print(f"compose e2e timings (s): {engine.timings}")
