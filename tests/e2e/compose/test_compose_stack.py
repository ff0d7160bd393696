"""`docker compose up` for real: orders, faults, alerts, a crash, verify and drills.

Every request goes to the ports the stack publishes on 127.0.0.1; the runbook's own
script and the `chaoslab` command (with `--target compose`) drive it, as a person would.
The tests share one stack (conftest.py) and run in file order.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
import yaml

from chaos.compose import ComposeStack
from tests.e2e.compose.conftest import REPO, STARTED, Engine
from tests.support.api import OrderStream, new_key, order_body, place_order, place_until_final
from tests.support.dashboards import dashboard_paths, load, panel_queries, panels
from tests.support.stack import wait_until

pytestmark = pytest.mark.timeout(300)


def prometheus(stack: ComposeStack, path: str, **params) -> dict:
    with httpx.Client(timeout=10) as client:
        body = client.get(f"{stack.url('prometheus')}{path}", params=params).json()
    assert body["status"] == "success", body
    return body["data"]


PAGE = "OrdersAvailabilityFastBurn"  # the order path's availability SLO page (prometheus/slos.yml)


def firing_in_alertmanager(stack: ComposeStack) -> set[str]:
    with httpx.Client(timeout=10) as client:
        alerts = client.get(f"{stack.url('alertmanager')}/api/v2/alerts", params={"active": "true"}).json()
    return {a["labels"]["alertname"] for a in alerts}


def delivered_to_notifications(stack: ComposeStack, status: str) -> set[str]:
    # notifications publishes no port (it may run replicas): asked inside its container.
    alerts = stack.service_json("notifications", f"/alerts?status={status}")["alerts"]  # type: ignore[index]
    return {a["alertname"] for a in alerts}


def test_orders_through_the_published_gateway(stack: ComposeStack):
    gateway = stack.url("gateway")
    key = new_key()
    with httpx.Client(timeout=30) as client:
        # As the API asks of a client: a 503 (here, a cold container slower than the ci
        # profile's 1.5 s timeout on a busy machine) is retried with the same key.
        first = place_until_final(client, gateway, key, body=order_body("SKU-001", 2))
        assert first.status_code == 201, first.text
        order = first.json()
        assert order["status"] == "confirmed"
        assert order["total_cents"] == 2 * order["items"][0]["unit_price_cents"]

        again = place_order(client, gateway, "SKU-001", 2, key=key)
        assert again.status_code == 201, again.text
        assert again.headers.get("Idempotency-Replayed") == "true"
        assert again.json() == order

        bad = place_order(client, gateway, body={"customer_id": "c-1", "items": [{"sku": "SKU-001", "quantity": 0}]})
        assert bad.status_code == 422, bad.text
        assert "quantity" in bad.json()["error"]["message"]


def test_prometheus_scrapes_every_target_and_loads_every_rule_file(stack: ComposeStack):
    def all_up() -> list[str] | None:
        targets = prometheus(stack, "/api/v1/targets")["activeTargets"]
        jobs = sorted(t["labels"]["job"] for t in targets if t["health"] == "up")
        return jobs if len(jobs) == len(targets) == 6 else None

    assert wait_until(all_up, timeout_s=30, interval_s=0.5, message="every target up") == sorted(
        [*STARTED[:5], "prometheus"]
    )
    # The ci profile's rules (CHAOSLAB_PROFILE=ci picks prometheus/compose/ci.yml).
    loaded = {g["file"].rsplit("/", 1)[1] for g in prometheus(stack, "/api/v1/rules")["groups"]}
    assert loaded == {p.name for p in (REPO / "prometheus" / "compose" / "ci-rules").glob("*.yml")}
    assert {g["file"] for g in prometheus(stack, "/api/v1/rules")["groups"]} <= {
        f"/etc/prometheus/compose/ci-rules/{name}" for name in loaded
    }
    active = prometheus(stack, "/api/v1/alertmanagers")["activeAlertmanagers"]
    assert [a["url"].split("/")[2] for a in active] == ["alertmanager:9093"]


def test_dashboards_name_the_provisioned_datasource_and_their_queries_run(stack: ComposeStack):
    [source] = yaml.safe_load((REPO / "grafana/provisioning/datasources/prometheus.yml").read_text())["datasources"]
    assert source["url"] == "http://prometheus:9090"  # the compose service Grafana reaches
    for path in dashboard_paths():
        for panel in panels(load(path)):
            assert panel["datasource"]["uid"] == source["uid"], f"{path.name}: {panel.get('title')}"
        for _title, expr in panel_queries(path):
            prometheus(stack, "/api/v1/query", query=expr)  # status success, else it fails with the body


def test_payment_errors_script_breaks_orders_fires_the_alert_and_recovers(engine: Engine, stack: ComposeStack):
    script = str(REPO / "chaos/scripts/payment_errors.sh")
    env = {**engine.env, "REDIS_URL": stack.redis_url}
    with OrderStream(stack.url("gateway"), workers=4, sku="SKU-002") as stream:
        stream.wait_for(20)
        # The steady state first: a cold container on a busy machine may miss ci's 1.5 s
        # call timeout once (a 503 with Retry-After), as in stop 24's and d065031's runs.
        wait_until(
            lambda: set(stream.latest(20)) == {201},
            timeout_s=60,
            interval_s=0.5,
            message="20 orders confirmed in a row",
        )
        subprocess.run([script, "enable", "0.9"], env=env, check=True, timeout=30)
        try:
            wait_until(
                lambda: stream.latest(10).count(402) >= 5, timeout_s=30, message="orders answered 402 payment_failed"
            )
            rate = 'sum(rate(downstream_requests_total{to_service="payments",outcome=~"error|breaker_open"}[10s]))'
            wait_until(
                lambda: prometheus(stack, "/api/v1/query", query=f"{rate} > 0")["result"],
                timeout_s=30,
                interval_s=0.5,
                message="payments errors in Prometheus",
            )
            wait_until(
                lambda: "PaymentsErrors" in firing_in_alertmanager(stack),
                timeout_s=60,
                interval_s=0.5,
                message="PaymentsErrors in Alertmanager",
            )
            # The cause goes out as a ticket, unless the availability page fired first: then
            # Alertmanager attaches it to the page (inhibits it) and the page is what arrives.
            delivered = wait_until(
                lambda: set(delivered_to_notifications(stack, "firing")) & {"PaymentsErrors", PAGE},
                timeout_s=60,
                interval_s=0.5,
                message="PaymentsErrors or its SLO page delivered to notifications",
            )
        finally:
            subprocess.run([script, "disable"], env=env, check=True, timeout=30)
        # The breaker half-opens after its wait, trial calls succeed, and it closes.
        wait_until(
            lambda: set(stream.latest(20)) == {201}, timeout_s=60, interval_s=0.5, message="orders confirmed again"
        )
    wait_until(
        lambda: delivered <= delivered_to_notifications(stack, "resolved"),
        timeout_s=120,
        interval_s=1,
        message=f"resolution of {sorted(delivered)} delivered",
    )


@pytest.mark.alone  # a kill under load: recovery timing
def test_kill_9_of_a_service_under_orders_and_the_restart_policy_brings_it_back(engine: Engine, stack: ComposeStack):
    def container() -> dict:
        # -a: between the kill and the restart the container is not running, yet it exists.
        [container_id] = engine.compose("ps", "-a", "-q", "orders", timeout_s=30).stdout.split()
        return json.loads(engine.run("inspect", container_id, timeout_s=30).stdout)[0]

    with OrderStream(stack.url("gateway"), workers=6, sku="SKU-003") as stream:
        stream.wait_for(30)
        before = container()["State"]
        os.kill(before["Pid"], signal.SIGKILL)

        def back() -> bool:
            state = container()["State"]
            return (
                state["Running"]
                and state["Pid"] not in (0, before["Pid"])
                and (state.get("Health") or {}).get("Status") == "healthy"
            )

        wait_until(back, timeout_s=60, interval_s=0.5, message="orders restarted and healthy")
        stream.wait_for(30)
        wait_until(
            lambda: set(stream.latest(10)) == {201},
            timeout_s=30,
            interval_s=0.5,
            message="orders confirmed after the restart",
        )

    # Clients whose request died with the process retry with the same key.
    def settle(key: str) -> None:
        with httpx.Client(timeout=30) as client:
            wait_until(
                lambda: (
                    place_order(client, stack.url("gateway"), body=order_body("SKU-003", 1), key=key).status_code
                    in (201, 402)
                ),
                timeout_s=30,
                interval_s=1,
                message=f"a final answer for {key}",
            )

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(settle, stream.unfinished))


def test_chaoslab_commands_drive_the_compose_stack(engine: Engine, stack: ComposeStack):
    stack.wait_healthy(timeout_s=90)
    status = engine.chaoslab("status", "--json")
    assert status.returncode == 0, status.stdout + status.stderr
    assert {row["name"] for row in json.loads(status.stdout)} == set(STARTED)

    set_fault = engine.chaoslab("chaos", "set", "payments", "latency_ms", "50", "--ttl", "30s")
    assert set_fault.returncode == 0, set_fault.stderr
    listed = json.loads(engine.chaoslab("chaos", "list", "--json").stdout)
    assert [(f["service"], f["fault"]) for f in listed] == [("payments", "latency_ms")]
    assert engine.chaoslab("chaos", "clear").returncode == 0
    assert json.loads(engine.chaoslab("chaos", "list", "--json").stdout) == []

    logs = engine.chaoslab("logs", "gateway", "--lines", "5")
    assert logs.returncode == 0 and logs.stdout.strip(), logs.stderr

    restarted = engine.chaoslab("restart", "notifications")
    assert restarted.returncode == 0, restarted.stderr
    stack.wait_healthy(timeout_s=60)

    unknown = engine.chaoslab("restart", "nosuch")
    assert unknown.returncode == 1 and "no service 'nosuch'" in unknown.stderr and "Traceback" not in unknown.stderr


def test_verify_finds_nothing_lost_or_doubled(engine: Engine):
    def clean():
        result = engine.chaoslab("verify", "--target", "compose", "--grace", "0")
        return result if result.returncode == 0 else None

    wait_until(clean, timeout_s=60, interval_s=2, message="chaoslab verify --target compose clean")


@pytest.mark.alone  # drill budgets
@pytest.mark.timeout(600)
def test_drills_run_against_compose(engine: Engine, tmp_path):
    """A Redis-key fault, a container that keeps crashing, an outbox backlog: the same
    drills, verdicts and report as natively."""
    engine.drill(("payments-errors", "crashloop", "outbox-backlog"), tmp_path, timeout_s=560)
