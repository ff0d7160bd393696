"""The training console against a live ci stack: its JSON API over plain HTTP (a fault
refused as the chaos API refuses it, 401 without the token, the audit naming the
console user, faults hidden during a game), then the page in headless Chromium: set a
payments fault through the form, see the orders→payments breaker open and the alert
arrive on the page, clear it through the page. Screenshots go to reports/console/."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis

from chaos import runner
from chaos.gameday.secrecy import GAME_KEY, HIDDEN, token_digest
from chaos.layout import StackLayout
from tests.support.api import OrderStream
from tests.support.browser import BINARY, Browser
from tests.support.stack import stop_stack, wait_until

pytestmark = pytest.mark.stack
REPO = Path(__file__).resolve().parents[2]
SHOTS = REPO / "reports" / "console"
TOKEN = "test-token"


@pytest.fixture(scope="module")
def stack() -> Iterator[StackLayout]:
    """A ci stack started as `chaoslab up` starts it: the console supervised beside it."""
    base = Path(tempfile.mkdtemp(prefix="chaoslab-test-"))
    base.chmod(0o755)  # PostgreSQL runs as another user and must reach its data
    layout = runner.up(
        base / "run",
        profile="ci",
        chaos_token=TOKEN,
        pick_free_ports=True,
        timeout_s=120,
        progress=lambda _msg: None,
        with_console=True,
    )
    try:
        yield layout
    finally:
        stop_stack(layout)


@pytest.fixture(scope="module")
def console(stack: StackLayout) -> str:
    """The console `chaoslab up` started (`chaoslab console` under supervisord)."""
    url = stack.url("console")
    wait_until(lambda: _answers(url + "/api/snapshot"), timeout_s=60, message="the console answering")
    assert "console" in {row.name for row in runner.status(stack)}
    return url


@pytest.fixture()
def chaos_redis(stack: StackLayout) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(stack.redis_url, decode_responses=True)
    try:
        yield client
    finally:
        client.delete(GAME_KEY)
        client.delete(*client.keys("chaos:*:*") or ["-"])
        client.close()


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def test_a_change_needs_the_stacks_chaos_token(console: str, chaos_redis: redis.Redis) -> None:
    body = {"service": "payments", "fault": "error_rate", "value": 0.5}
    missing = httpx.put(console + "/api/faults", json=body)
    wrong = httpx.put(console + "/api/faults", json=body, headers={"X-Chaos-Token": "nope"})
    cleared = httpx.delete(console + "/api/faults")
    drill = httpx.post(console + "/api/drills", json={"incident": "payments-errors"})
    for resp in (missing, wrong, cleared, drill):
        assert resp.status_code == 401, resp.text
        assert resp.json()["error"]["code"] == "chaos_token_invalid"
    assert chaos_redis.keys("chaos:*:*") == []


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"service": "payments", "fault": "error_rate", "value": 1.5}, "fault_value_out_of_range"),
        ({"service": "payments", "fault": "error_rate", "value": "lots"}, "fault_value_invalid"),
        ({"service": "payments", "fault": "no_such_fault", "value": 1}, "fault_unknown"),
        ({"service": "gateway", "fault": "error_rate", "value": 0.5, "ttl_s": 0}, "fault_ttl_invalid"),
        ({"service": "payments", "fault": "error_rate"}, "invalid_request"),
    ],
)
def test_a_bad_fault_is_refused_as_the_chaos_api_refuses_it(
    console: str, chaos_redis: redis.Redis, body: dict, code: str
) -> None:
    resp = httpx.put(console + "/api/faults", json=body, headers={"X-Chaos-Token": TOKEN})
    assert resp.status_code == 422, resp.text
    assert resp.json()["error"]["code"] == code
    assert resp.json()["error"]["message"]
    assert chaos_redis.keys("chaos:*:*") == []


def test_the_audit_names_the_console_user(console: str, chaos_redis: redis.Redis) -> None:
    headers = {"X-Chaos-Token": TOKEN}
    body = {"service": "inventory", "fault": "latency_ms", "value": 50, "ttl_s": 60, "who": "alice"}
    resp = httpx.put(console + "/api/faults", json=body, headers=headers)
    assert resp.status_code == 200, resp.text
    assert [f["key"] for f in resp.json()["faults"]] == ["chaos:inventory:latency_ms"]
    assert 0 < chaos_redis.pttl("chaos:inventory:latency_ms") <= 60_000
    resp = httpx.delete(console + "/api/faults", params={"service": "inventory", "who": "bob"}, headers=headers)
    assert resp.json()["cleared"] == 1
    audit = httpx.get(console + "/api/faults").json()["audit"]
    assert [(e["action"], e["who"]) for e in audit[:2]] == [
        ("clear", "console:bob@127.0.0.1"),
        ("set", "console:alice@127.0.0.1"),
    ]
    unknown = httpx.delete(console + "/api/faults", params={"service": "billing"}, headers=headers)
    assert unknown.status_code == 422 and unknown.json()["error"]["code"] == "service_unknown"


def test_a_game_in_progress_hides_the_faults_but_from_the_game_master(console: str, chaos_redis: redis.Redis) -> None:
    httpx.put(
        console + "/api/faults",
        json={"service": "payments", "fault": "latency_ms", "value": 10, "ttl_s": 60},
        headers={"X-Chaos-Token": TOKEN},
    ).raise_for_status()
    chaos_redis.set(GAME_KEY, json.dumps({"master_token_sha256": token_digest("master-token")}))
    for token in (None, TOKEN):
        view = httpx.get(console + "/api/faults", headers={"X-Chaos-Token": token} if token else {}).json()
        assert view == {"hidden": True, "message": HIDDEN, "faults": [], "audit": []}
    master = httpx.get(console + "/api/faults", headers={"X-Chaos-Token": "master-token"}).json()
    assert [f["key"] for f in master["faults"]] == ["chaos:payments:latency_ms"]

    def streamed(token: str | None) -> dict:
        params = {"token": token} if token else {}
        with httpx.stream("GET", console + "/api/stream", params=params, timeout=10) as resp:
            for line in resp.iter_lines():
                if line.startswith("data: "):
                    return json.loads(line[6:])["faults"]
        raise AssertionError("the stream ended without a snapshot")

    # The feed's snapshot is shared and refreshed every interval: the hiding shows at the next one.
    wait_until(lambda: streamed(None)["hidden"] is True, timeout_s=10, message="the stream hides the faults")
    assert wait_until(lambda: streamed("master-token")["faults"], timeout_s=10, message="the master's faults")


def test_a_scaled_service_shows_its_replicas(stack: StackLayout, console: str) -> None:
    def payments() -> dict:
        boxes = httpx.get(console + "/api/snapshot", timeout=10).json()["boxes"]
        return next(b for b in boxes if b["name"] == "payments")

    runner.scale(stack, "payments", 2)
    try:
        wait_until(lambda: payments()["running"] == 2, timeout_s=30, message="payments' second replica on the console")
    finally:
        runner.scale(stack, "payments", 1)
    wait_until(lambda: payments()["replicas"] == 1, timeout_s=30, message="payments back to one replica")


@pytest.mark.skipif(BINARY is None, reason="chromium is not installed (apt-get install -y chromium)")
def test_the_page_breaks_payments_and_shows_the_breaker_and_the_alert(
    stack: StackLayout, console: str, chaos_redis: redis.Redis, record_property
) -> None:
    shots: list[Path] = []
    with Browser() as page:
        page.open(console + "/")
        page.wait_for("document.querySelector('#link').textContent === 'live'", timeout_s=30, message="the feed")
        page.wait_for(
            "document.querySelector('[data-edge=\"orders-payments\"]')?.dataset.state === 'closed'",
            timeout_s=30,
            message="orders→payments closed",
        )
        shots.append(page.screenshot(SHOTS / "1-steady.png"))

        page.fill("#who", "trainer")
        page.fill("#token", TOKEN)
        page.fill("#f-service", "payments")
        page.fill("#f-fault", "error_rate")
        page.fill("#f-value", "1")
        page.fill("#f-ttl", "120")
        page.click("#f-set")
        page.wait_for(
            "document.querySelector('tr[data-key=\"chaos:payments:error_rate\"]')",
            timeout_s=15,
            message="the fault listed on the page",
        )
        assert chaos_redis.get("chaos:payments:error_rate") is not None
        with OrderStream(stack.url("gateway"), workers=4):
            page.wait_for(
                "document.querySelector('[data-edge=\"orders-payments\"]').dataset.state === 'open'",
                timeout_s=60,
                message="the orders→payments breaker open on the page",
            )
            shots.append(page.screenshot(SHOTS / "2-breaker-open.png"))
            page.wait_for(
                "document.querySelector('#alerts li[data-alert=\"PaymentsErrors\"]')",
                timeout_s=90,
                message="PaymentsErrors arriving from Alertmanager",
            )
            shots.append(page.screenshot(SHOTS / "3-alert.png"))
            page.click("tr[data-key='chaos:payments:error_rate'] button.clear")
            page.wait_for(
                "!document.querySelector('tr[data-key=\"chaos:payments:error_rate\"]')"
                " && document.querySelector('#fault-msg').textContent.startsWith('cleared 1')",
                timeout_s=15,
                message="the fault cleared on the page",
            )
            page.wait_for(
                "document.querySelector('[data-edge=\"orders-payments\"]').dataset.state === 'closed'",
                timeout_s=60,
                message="the breaker closed again",
            )
        shots.append(page.screenshot(SHOTS / "4-cleared.png"))
        audit = page.js("[...document.querySelectorAll('#audit tbody tr')].map(r => r.textContent)")
    assert chaos_redis.get("chaos:payments:error_rate") is None
    assert any("clear" in row and "console:trainer@127.0.0.1" in row for row in audit), audit
    for shot in shots:
        record_property("screenshot", str(shot))
        print(f"screenshot: {shot}")


@pytest.mark.skipif(BINARY is None, reason="chromium is not installed (apt-get install -y chromium)")
def test_the_page_launches_a_drill_shows_its_steps_and_stops_it(
    stack: StackLayout, console: str, chaos_redis: redis.Redis, record_property
) -> None:
    with Browser() as page:
        page.open(console + "/")
        page.wait_for("document.querySelector('#link').textContent === 'live'", timeout_s=30, message="the feed")
        page.fill("#who", "trainer")
        page.fill("#token", TOKEN)
        page.wait_for("document.querySelector('#d-incident').options.length > 0", timeout_s=15, message="incidents")
        page.fill("#d-incident", "payments-errors")
        page.click("#d-launch")
        page.wait_for(
            "(document.querySelector('#drill-steps li')?.dataset.status || '') !== ''",
            timeout_s=60,
            message="the drill's first step on the page",
        )
        shot = page.screenshot(SHOTS / "5-drill.png")
        page.click("#d-stop")
        page.wait_for(
            "document.querySelector('#drill-result').textContent.startsWith('payments-errors: interrupted')",
            timeout_s=90,
            message="the drill interrupted and rolled back",
        )
    assert chaos_redis.keys("chaos:*:*") == []
    record_property("screenshot", str(shot))
    print(f"screenshot: {shot}")
