"""The resilience patterns on the live stack: breakers, shedding, replica ejection."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from chaos import runner
from chaos.layout import free_ports
from tests.support.api import place_order
from tests.support.chaos import clear_faults, metric, put_fault, wait_breakers_closed
from tests.support.stack import assert_verify_clean, wait_until


@pytest.fixture(autouse=True)
def no_faults_left(stack, client):
    yield
    clear_faults(client, stack)
    wait_breakers_closed(client, stack)


OUTCOMES = ("success", "slow_success", "failure", "slow_failure")  # what a breaker records


def _breaker(client, stack, service: str, downstream: str) -> dict:
    view = client.get(f"{stack.url(service)}/status/breakers").json()
    [breaker] = [b for b in view["breakers"] if b["downstream"] == downstream]
    return breaker


def test_breaker_opens_fails_fast_half_opens_and_closes(stack, gateway, client):
    put_fault(client, stack, "orders", "error_rate", 1.0, route="/orders")
    # The gateway's breaker on orders sees the 500s and opens within its window.
    for _ in range(40):
        client.get(f"{gateway}/orders?limit=1")
        if _breaker(client, stack, "gateway", "orders")["state"] == "open":
            break
    breaker = _breaker(client, stack, "gateway", "orders")
    assert breaker["state"] == "open" and breaker["failure_rate"] >= 50, breaker

    # While open, calls fail at once: refused by the gateway itself, none reaches orders.
    # (How fast a refusal is belongs to the benchmark: bench/resilience.py.)
    reached = metric(client, stack.url("orders"), "http_requests_total", route="unmatched") + metric(
        client, stack.url("orders"), "http_requests_total", route="/orders"
    )
    with httpx.Client(timeout=5) as fast:
        for _ in range(100):
            resp = fast.get(f"{gateway}/orders?limit=1")
            assert resp.status_code == 503 and resp.json()["error"]["code"] == "breaker_open"
            assert int(resp.headers["Retry-After"]) >= 1
    assert (
        metric(client, stack.url("orders"), "http_requests_total", route="unmatched")
        + metric(client, stack.url("orders"), "http_requests_total", route="/orders")
        == reached
    )

    # After the wait in open it lets trial calls through; healed, they close it.
    clear_faults(client, stack)
    wait_until(
        lambda: _breaker(client, stack, "gateway", "orders")["seconds_until_half_open"] == 0,
        timeout_s=10,
        message="wait in open elapsed",
    )
    wait_until(
        lambda: (
            client.get(f"{gateway}/orders?limit=1").status_code == 200
            and _breaker(client, stack, "gateway", "orders")["state"] == "closed"
        ),
        timeout_s=10,
        interval_s=0.05,
        message="breaker closed after healthy trial calls",
    )
    transitions = metric(client, stack.url("gateway"), "breaker_transitions_total", downstream="orders")
    assert transitions >= 3  # closed→open, open→half_open, half_open→closed


@pytest.fixture()
def extra_gateway(stack):
    """Start more real gateways in front of the same orders, with settings of their own."""
    procs = []

    def start(**settings: str) -> str:
        port = free_ports(1)[0]
        env = {**os.environ, **stack.service_env("gateway"), "PORT": str(port), **settings}
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "services", "gateway"],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
        url = f"http://127.0.0.1:{port}"
        wait_until(lambda: runner.http_ok(url + "/health"), timeout_s=30, message="extra gateway up")
        return url

    try:
        yield start
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=10)


@pytest.fixture()
def small_gateway(extra_gateway):
    """A second gateway with room for 4 requests in flight."""
    return extra_gateway(MAX_INFLIGHT="4")


def test_shared_breaker_state_opens_every_replica_of_the_caller(stack, extra_gateway, client):
    first, second, alone = (extra_gateway(BREAKER_SHARED="true"), extra_gateway(BREAKER_SHARED="true"), extra_gateway())
    put_fault(client, stack, "orders", "error_rate", 1.0, route="/orders")

    def state(url: str) -> str:
        [breaker] = client.get(f"{url}/status/breakers").json()["breakers"]
        return breaker["state"]

    wait_until(
        lambda: client.get(f"{first}/orders?limit=1") and state(first) == "open",
        timeout_s=20,
        interval_s=0.05,
        message="the first gateway's breaker trips",
    )
    # The second never called orders, yet opens within a refresh; one without sharing does not.
    wait_until(lambda: state(second) == "open", timeout_s=5, message="the sharing replica opened too")
    assert state(alone) == "closed"


def test_gateway_sheds_past_max_inflight_at_once_and_admits_the_rest(stack, small_gateway, client):
    put_fault(client, stack, "inventory", "latency_ms", 600)

    def order(_):
        with httpx.Client(timeout=30) as c:
            started = time.perf_counter()
            resp = place_order(c, small_gateway, "SKU-001", 1)
            return resp, started, time.perf_counter()

    with ThreadPoolExecutor(12) as pool:
        results = list(pool.map(order, range(12)))
    shed = [(r, start, end) for r, start, end in results if r.status_code == 429]
    admitted = [(r, start, end) for r, start, end in results if r.status_code == 201]
    assert len(shed) >= 6 and 1 <= len(admitted) <= 4 and len(shed) + len(admitted) == 12, [
        r.status_code for r, *_ in results
    ]
    assert all(r.json()["error"]["code"] == "overloaded" and r.headers["Retry-After"] for r, *_ in shed)
    # Refused at once: every refusal is back before the first admitted order (which pays
    # the injected 600 ms) is done, so none waited in a queue behind the slow ones.
    assert max(end for *_, end in shed) < min(end for *_, end in admitted)
    assert all(end - start >= 0.6 for _, start, end in admitted)
    assert client.get(f"{small_gateway}/health").status_code == 200  # never shed
    assert metric(client, small_gateway, "load_shed_total") >= len(shed)


def test_a_door_that_sheds_far_more_than_it_admits_tells_clients_to_wait_longer(stack, small_gateway, client):
    """Reads held 2 s each (a latency fault inside the door) fill its four slots; every
    request past them is shed. Once a window of the door's pacing has shed many for none
    admitted, Retry-After says to wait longer.

    The wait before is read from the gauge, not from the first 429: when the test's own
    read takes a slot a holder had just freed, that holder is shed over and over for the
    2 s the read is held, and its sheds lengthen the wait before the test's first 429.
    Nor is the gauge read after the load: while the holders' last reads finish and nothing
    is shed, the pacing rightly brings the wait back towards 1 s (in CI it read 1.007)."""
    assert metric(client, small_gateway, "load_shed_retry_after_seconds") == 1  # the base wait
    put_fault(client, stack, "gateway", "latency_ms", 2000)
    said: list[str] = []
    done = threading.Event()

    def hold() -> None:
        with httpx.Client(timeout=30) as c:
            while not done.is_set():
                c.get(f"{small_gateway}/orders?limit=1")

    def told_to_wait_longer() -> bool:
        resp = client.get(f"{small_gateway}/orders?limit=1")
        if resp.status_code == 429:
            said.append(resp.headers["Retry-After"])
        return bool(said) and int(said[-1]) >= 2

    with ThreadPoolExecutor(4) as pool:
        for _ in range(4):
            pool.submit(hold)
        try:
            wait_until(
                lambda: metric(client, small_gateway, "http_inflight_requests") >= 4,
                timeout_s=10,
                message="four held reads fill the door",
            )
            wait_until(told_to_wait_longer, timeout_s=10, interval_s=0.01, message="a longer Retry-After")
        finally:
            done.set()


def _served(client, url: str) -> float:
    """Business requests a replica has answered (injected faults answer before routing)."""
    return sum(metric(client, url, "http_requests_total", route=r) for r in ("unmatched", "/charges", "/charges/void"))


def test_an_ejected_replica_stops_receiving_traffic(stack, gateway, client):
    urls = runner.scale(stack, "payments", 3)
    try:
        wait_until(
            lambda: len(client.get(f"{stack.url('orders')}/status/breakers").json()["breakers"]) >= 5,
            timeout_s=10,
            message="orders sees three payments replicas",
        )
        put_fault(client, stack, "payments", "error_rate", 1.0, replica=1)
        wait_until(
            lambda: client.post(f"{urls[1]}/charges", json={}).status_code == 500,
            timeout_s=5,
            message="replica 1 applies its fault",
        )
        wait_until(
            lambda: (
                place_order(client, gateway, "SKU-002", 1)
                and metric(client, stack.url("orders"), "replica_ejections_total", downstream="payments") >= 1
            ),
            timeout_s=20,
            message="the faulty replica ejected",
        )

        before = [_served(client, u) for u in urls]
        results = [place_order(client, gateway, "SKU-002", 1).status_code for _ in range(30)]
        served = [_served(client, u) - b for u, b in zip(urls, before, strict=True)]
        assert results.count(201) == 30, results  # the healthy two take the load (retries included)
        # Without ejection it would get a third of the calls; ejected, at most a probe or two.
        assert served[1] <= 0.1 * sum(served), served
    finally:
        clear_faults(client, stack)
        runner.scale(stack, "payments", 1)
    assert_verify_clean(stack)


def test_a_slow_leaf_is_slow_for_the_breaker_next_to_it_not_for_the_gateways(stack, gateway, client):
    # Each call under ci's 1.5 s timeout, the three of an order (reserve, charge, commit)
    # together over the gateway's 3 s slow-call threshold for orders.
    put_fault(client, stack, "inventory", "latency_ms", 1200)
    put_fault(client, stack, "payments", "latency_ms", 1200)
    gateway_sees = {o: metric(client, gateway, "breaker_calls_total", downstream="orders", outcome=o) for o in OUTCOMES}
    orders = stack.url("orders")
    slow_before = metric(client, orders, "breaker_calls_total", downstream="inventory", outcome="slow_success")

    started = time.perf_counter()
    resp = place_order(client, gateway, "SKU-003", 1)
    took_s = time.perf_counter() - started
    assert resp.status_code == 201, resp.text
    assert took_s > 3.6

    # The gateway says what it waited on orders; orders told it what it waited on the
    # leaves, so the gateway's breaker counts orders' own few milliseconds: not slow.
    name, _, dur = resp.headers["Server-Timing"].partition(";dur=")
    assert name == "downstream" and 3600 <= float(dur) <= took_s * 1000, resp.headers["Server-Timing"]
    changed = {
        o: metric(client, gateway, "breaker_calls_total", downstream="orders", outcome=o) - gateway_sees[o]
        for o in OUTCOMES
    }
    assert changed == {"success": 1, "slow_success": 0, "failure": 0, "slow_failure": 0}, changed
    # The breaker next to the slow leaf saw it slow: its calls took 1.2 s against 1 s.
    slow_after = metric(client, orders, "breaker_calls_total", downstream="inventory", outcome="slow_success")
    assert slow_after - slow_before == 2


def test_a_failing_leaf_opens_the_breaker_next_to_it_and_reads_through_the_gateway_go_on(stack, gateway, client):
    before = place_order(client, gateway, "SKU-004", 1)
    assert before.status_code == 201, before.text
    gateway_failures = metric(client, gateway, "breaker_calls_total", downstream="orders", outcome="failure")
    put_fault(client, stack, "inventory", "error_rate", 1.0)

    # Orders answers 503 naming inventory, until its breaker on inventory opens.
    answers = []
    for _ in range(60):
        resp = place_order(client, gateway, "SKU-004", 1)
        answers.append((resp.status_code, resp.headers.get("X-Failed-Dependency")))
        if _breaker(client, stack, "orders", "inventory")["state"] == "open":
            break
    assert _breaker(client, stack, "orders", "inventory")["state"] == "open", answers
    assert set(answers) == {(503, "inventory")}, answers

    # Orders is up and said so: the gateway's breaker on orders learnt nothing, and an
    # order's status still reads through the gateway while inventory is down.
    assert _breaker(client, stack, "gateway", "orders")["state"] == "closed"
    assert metric(client, gateway, "breaker_calls_total", downstream="orders", outcome="failure") == gateway_failures
    read = client.get(f"{gateway}/orders/{before.json()['order_id']}")
    assert read.status_code == 200 and read.json()["status"] == "confirmed", read.text
