"""A real Alertmanager with the stack's routing (chaos/alertmanager_config.py), fed alerts
through its API as Prometheus would send them, its webhooks caught by a small HTTP server:
a cause alert goes out as a ticket, an SLO page as a page, and while the page fires the
cause is attached to it (inhibited) instead of being sent again. No stack is needed."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
import yaml

from chaos import alertmanager_config
from chaos.layout import free_ports
from tests.support.stack import wait_until

BINARY = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
pytestmark = pytest.mark.skipif(BINARY is None, reason="prometheus-alertmanager is not installed")

PAGE = {"alertname": "OrdersAvailabilityFastBurn", "severity": "critical", "slo": "orders-availability"}
CAUSE = {"alertname": "PaymentsErrors", "severity": "critical", "incident": "payments-errors"}
UNSEEN = {"alertname": "MonitoringDown", "severity": "critical", "incident": "monitoring-down"}


class Webhook(ThreadingHTTPServer):
    """Keeps every (receiver, status, alertname) Alertmanager posts."""

    def __init__(self) -> None:
        self.received: list[tuple[str, str, str]] = []
        super().__init__(("127.0.0.1", 0), _Handler)


class _Handler(BaseHTTPRequestHandler):
    server: Webhook

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        for alert in body["alerts"]:
            self.server.received.append((body["receiver"], alert["status"], alert["labels"]["alertname"]))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def webhook() -> Iterator[Webhook]:
    server = Webhook()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def alertmanager(webhook: Webhook, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    directory: Path = tmp_path_factory.mktemp("alertmanager")
    (directory / "token").write_text("test-service-token")
    config = alertmanager_config.config(
        webhook=f"http://127.0.0.1:{webhook.server_address[1]}/alerts",
        group_wait="1s",
        group_interval="1s",
        token_file=str(directory / "token"),
    )
    (directory / "alertmanager.yml").write_text(yaml.safe_dump(config))
    [port] = free_ports(1)
    assert BINARY is not None
    proc = subprocess.Popen(
        [
            BINARY,
            f"--config.file={directory / 'alertmanager.yml'}",
            f"--storage.path={directory}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: _ready(url), timeout_s=30, message="Alertmanager ready")
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/-/ready", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def fire(alertmanager: str, *alerts: dict[str, str]) -> None:
    """Send alerts as Prometheus does: firing, with an end a few minutes ahead."""
    now = datetime.now(UTC)
    ends = (now + timedelta(minutes=5)).isoformat()
    payload = [{"labels": labels, "startsAt": now.isoformat(), "endsAt": ends} for labels in alerts]
    httpx.post(f"{alertmanager}/api/v2/alerts", json=payload, timeout=5).raise_for_status()


def listed(alertmanager: str, name: str) -> dict:
    [alert] = httpx.get(f"{alertmanager}/api/v2/alerts", params={"filter": f'alertname="{name}"'}, timeout=5).json()
    return alert


def test_a_cause_alert_is_a_ticket_until_its_slo_pages_then_it_is_attached_to_the_page(alertmanager, webhook):
    fire(alertmanager, CAUSE)
    wait_until(lambda: ("ticket", "firing", "PaymentsErrors") in webhook.received, timeout_s=20, message="a ticket")
    fire(alertmanager, PAGE, CAUSE)
    wait_until(lambda: ("page", "firing", PAGE["alertname"]) in webhook.received, timeout_s=20, message="a page")
    page = listed(alertmanager, PAGE["alertname"])
    cause = wait_until(
        lambda: (a := listed(alertmanager, "PaymentsErrors"))["status"]["inhibitedBy"] and a,
        timeout_s=20,
        message="PaymentsErrors inhibited by the page",
    )
    assert cause["status"]["state"] == "suppressed"
    assert cause["status"]["inhibitedBy"] == [page["fingerprint"]]
    assert [r for r in webhook.received if r[2] == "PaymentsErrors" and r[0] == "page"] == []


def test_a_critical_alert_no_slo_covers_pages_on_its_own(alertmanager, webhook):
    fire(alertmanager, UNSEEN)
    wait_until(lambda: ("page", "firing", "MonitoringDown") in webhook.received, timeout_s=20, message="a page")
    assert listed(alertmanager, "MonitoringDown")["status"]["inhibitedBy"] == []
