"""Every fault on the live stack: its effect is visible, and it ends when cleared or
when its TTL runs out. Faults go in through the services' own /chaos/config."""

from __future__ import annotations

import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from chaos import runner, supervision
from services.common.web.settings import PROFILE_DEFAULTS
from tests.support.api import new_key, place_order, stock_of
from tests.support.chaos import clear_faults, metric, put_fault, wait_breakers_closed
from tests.support.stack import assert_verify_clean, execute_sql, wait_restarted, wait_until


@pytest.fixture(autouse=True)
def no_faults_left(stack, client):
    yield
    clear_faults(client, stack)
    wait_breakers_closed(client, stack)
    # The probes' charges belong to no order, which `chaoslab verify` rightly reports:
    # this module's own test data, taken away after each test.
    execute_sql(stack, "DELETE FROM payments.charges WHERE customer_id = 'c-probe'")


def _charge(client, stack, **extra):
    """A probe that reaches payments' handler: declined (402), for an order that does not
    exist (removed after the test, see `no_faults_left`)."""
    return client.post(
        f"{stack.url('payments')}/charges",
        headers={"Idempotency-Key": new_key()},
        json={"order_id": f"probe-{new_key()}", "customer_id": "c-probe", "amount_cents": 100_000_000},
        **extra,
    )


def test_put_and_delete_need_the_token(stack, client):
    url = f"{stack.url('payments')}/chaos/config"
    body = {"fault": "latency_ms", "value": 10}
    assert client.put(url, json=body).status_code == 401
    assert client.put(url, json=body, headers={"X-Chaos-Token": "wrong"}).status_code == 401
    assert client.delete(url).status_code == 401
    assert client.get(url).json()["faults"] == []

    applied = client.put(url, json=body, headers={"X-Chaos-Token": stack.chaos_token})
    assert applied.status_code == 200
    [fault] = applied.json()["faults"]
    assert (fault["fault"], fault["value"], fault["key"]) == ("latency_ms", 10, "chaos:payments:latency_ms")
    assert 590 < fault["ttl_s"] <= 600 or 110 < fault["ttl_s"] <= 120  # the profile's default TTL
    assert client.delete(url, headers={"X-Chaos-Token": stack.chaos_token}).json()["faults"] == []


@pytest.mark.parametrize(
    "fault, value, bound",
    [
        ("error_rate", 1.01, "between 0 and 1"),
        ("error_rate", -0.01, "between 0 and 1"),
        ("latency_ms", 30001, "30000"),
        ("error_status", 501, "500, 502, 503, 504"),
        ("lock_contention_ms", 10, "applies to inventory"),
        ("nonsense", 1, "unknown fault"),
    ],
)
def test_bad_faults_get_422_naming_the_bound(stack, client, fault, value, bound):
    resp = client.put(
        f"{stack.url('payments')}/chaos/config",
        json={"fault": fault, "value": value},
        headers={"X-Chaos-Token": stack.chaos_token},
    )
    assert resp.status_code == 422, resp.text
    assert bound in resp.json()["error"]["message"]


def test_error_rate_and_status_then_cleared(stack, client):
    put_fault(client, stack, "payments", "error_rate", 1.0)
    put_fault(client, stack, "payments", "error_status", 503)
    assert _charge(client, stack).status_code == 503
    assert client.get(f"{stack.url('payments')}/health").status_code == 200  # ops paths untouched
    assert metric(client, stack.url("payments"), "chaos_active", fault="error_rate") == 1
    clear_faults(client, stack)
    assert _charge(client, stack).status_code == 402


def test_payment_errors_end_orders_as_payment_failed_with_stock_released(stack, gateway, client):
    before = stock_of(client, stack, "SKU-007")
    put_fault(client, stack, "payments", "error_rate", 1.0)
    resp = place_order(client, gateway, "SKU-007", 1)
    assert resp.status_code == 402 and resp.json()["status"] == "payment_failed"
    assert stock_of(client, stack, "SKU-007") == before
    clear_faults(client, stack)
    assert_verify_clean(stack)


def test_error_first_n_fails_exactly_n_requests(stack, client):
    put_fault(client, stack, "payments", "error_first_n", 3)
    url = f"{stack.url('payments')}/charges?order_id=x"
    assert [client.get(url).status_code for _ in range(5)] == [500, 500, 500, 200, 200]


def test_latency_with_jitter(stack, client):
    url = f"{stack.url('inventory')}/inventory/SKU-001"
    put_fault(client, stack, "inventory", "latency_ms", 300)
    put_fault(client, stack, "inventory", "latency_jitter_ms", 100)
    started = time.perf_counter()
    assert client.get(url).status_code == 200
    assert time.perf_counter() - started >= 0.3  # held at least the injected latency
    clear_faults(client, stack)

    def latency_off() -> bool:  # what the injection reads, as the service shows it
        inventory = stack.url("inventory")
        return all(metric(client, inventory, "chaos_active", fault=f) == 0 for f in ("latency_ms", "latency_jitter_ms"))

    wait_until(latency_off, timeout_s=10, interval_s=0.2, message="inventory dropped the latency faults")
    assert client.get(url).status_code == 200  # how long it takes now: bench/chaos_timings.py


def test_hang_answers_nothing_until_the_callers_deadline(stack, client):
    put_fault(client, stack, "notifications", "hang_rate", 1.0)
    with pytest.raises(httpx.ReadTimeout):
        client.get(f"{stack.url('notifications')}/events", timeout=1.0)
    deadline_ms = int((time.time() + 0.5) * 1000)
    resp = client.get(f"{stack.url('notifications')}/events", headers={"X-Request-Deadline": str(deadline_ms)})
    assert resp.status_code == 504


def test_reset_drops_the_connection(stack, client):
    put_fault(client, stack, "inventory", "reset_rate", 1.0)
    with pytest.raises(httpx.RemoteProtocolError):
        client.get(f"{stack.url('inventory')}/inventory/SKU-001")


def test_route_scoped_fault_spares_other_routes(stack, client):
    put_fault(client, stack, "inventory", "error_rate", 1.0, route="/reservations")
    assert client.get(f"{stack.url('inventory')}/inventory/SKU-001").status_code == 200
    assert (
        client.post(
            f"{stack.url('inventory')}/reservations",
            json={"order_id": new_key(), "items": [{"sku": "SKU-001", "quantity": 1}]},
        ).status_code
        == 500
    )


def test_lock_contention_serialises_reservations(stack, gateway):
    put_fault_client = httpx.Client(timeout=30)
    put_fault(put_fault_client, stack, "inventory", "lock_contention_ms", 400)

    def order(_):
        with httpx.Client(timeout=30) as c:
            started = time.perf_counter()
            status = place_order(c, gateway, "SKU-008", 1).status_code
            return status, time.perf_counter() - started

    with ThreadPoolExecutor(3) as pool:
        results = list(pool.map(order, range(3)))
    put_fault_client.close()
    assert all(status == 201 for status, _ in results), results
    assert max(t for _, t in results) >= 3 * 0.4  # each waited for the locks of the others


def test_unhealthy_fails_health_while_serving(stack, client):
    put_fault(client, stack, "payments", "unhealthy", True)
    health = client.get(f"{stack.url('payments')}/health")
    assert health.status_code == 503 and "chaos:unhealthy" in health.json()["error"]["message"]
    assert _charge(client, stack).status_code == 402


def test_crash_exits_once_and_supervision_restarts(stack, client):
    sup = supervision.Supervisor(stack)
    old = sup.process("notifications")["pid"]
    put_fault(client, stack, "notifications", "crash", True)
    wait_restarted(stack, "notifications", old)
    assert client.get(f"{stack.url('notifications')}/chaos/config").json()["faults"] == []


def test_crashloop_until_cleared(stack, client):
    sup = supervision.Supervisor(stack)
    pids = {sup.process("notifications")["pid"]}
    put_fault(client, stack, "notifications", "crashloop", True)

    def restarted_twice():
        pid = sup.process("notifications")["pid"]
        if pid:
            pids.add(pid)
        return len(pids) >= 3

    wait_until(restarted_twice, timeout_s=30, message="two restarts in the loop")
    subprocess.run(
        [sys.executable, "-m", "chaos.cli", "chaos", "clear", "notifications", "--run-dir", str(stack.run_dir)],
        check=True,
        capture_output=True,
        timeout=30,
    )
    wait_until(
        lambda: (
            supervision.Supervisor(stack).process("notifications")["statename"] == "RUNNING"
            and runner.http_ok(f"{stack.url('notifications')}/health")
        ),
        timeout_s=30,
        message="notifications healthy after the rollback",
    )
    # No longer looping: the process outlives the life a crashloop grants it (its
    # CRASHLOOP_AFTER_S, plus one chaos refresh to notice), and keeps its pid.
    profile = PROFILE_DEFAULTS[stack.profile]
    life_s = profile["crashloop_after_s"] + profile["chaos_refresh_s"]
    settled = sup.process("notifications")["pid"]

    def outlived_a_crashloop_life() -> bool:
        info = sup.process("notifications")
        assert info["pid"] == settled, "notifications restarted after the crashloop was cleared"
        return info["statename"] == "RUNNING" and info["now"] - info["start"] > life_s

    wait_until(outlived_a_crashloop_life, timeout_s=30, interval_s=0.5, message=f"a life longer than {life_s} s")


def _rss_mb(stack, program: str) -> float:
    pid = supervision.Supervisor(stack).process(program)["pid"]
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def test_memory_leak_grows_until_restart(stack, client):
    start = _rss_mb(stack, "inventory")
    put_fault(client, stack, "inventory", "memory_leak_mb_s", 40)
    wait_until(lambda: _rss_mb(stack, "inventory") > start + 60, timeout_s=15, message="RSS grew 60 MB")
    clear_faults(client, stack)
    grown = _rss_mb(stack, "inventory")
    supervision.Supervisor(stack).restart("inventory")
    wait_until(lambda: runner.http_ok(f"{stack.url('inventory')}/health"), timeout_s=30)
    assert _rss_mb(stack, "inventory") < grown - 40


def test_cpu_burn_shows_in_process_cpu(stack, client):
    url = stack.url("payments")
    before = metric(client, url, "process_cpu_seconds_total")
    put_fault(client, stack, "payments", "cpu_burn_pct", 80)
    wait_until(
        lambda: metric(client, url, "process_cpu_seconds_total") > before + 1.0,
        timeout_s=10,
        message="a CPU-second burnt",
    )


def test_db_pool_hold_makes_requests_fail_fast_not_hang(stack, client):
    put_fault(client, stack, "payments", "db_pool_hold", 10)  # the whole pool (DB_POOL_MAX=10)
    wait_until(lambda: metric(client, stack.url("payments"), "db_pool_in_use") >= 10, timeout_s=10)
    timeouts = metric(client, stack.url("payments"), "db_pool_timeouts_total")
    resp = _charge(client, stack)
    # Not a hang: the request gave up waiting for a connection (its own acquire timeout)
    # and said so, while the pool was still held. How fast: bench/chaos_timings.py.
    assert resp.status_code == 503 and "pool" in resp.json()["error"]["message"]
    assert resp.headers["X-Failed-Dependency"] == "postgres"
    assert metric(client, stack.url("payments"), "db_pool_timeouts_total") >= timeouts + 1
    assert metric(client, stack.url("payments"), "db_pool_in_use") >= 10
    clear_faults(client, stack)
    wait_until(lambda: _charge(client, stack).status_code == 402, timeout_s=10, message="pool given back")


def test_stuck_relay_grows_the_outbox_until_orders_restarts(stack, gateway, client):
    put_fault(client, stack, "orders", "outbox_paused", True)
    for _ in range(5):
        assert place_order(client, gateway).status_code == 201
    pending = lambda: metric(client, stack.url("orders"), "outbox_pending", destination="notifications")  # noqa: E731
    wait_until(lambda: pending() >= 5, timeout_s=10, message="outbox_pending grows")
    clear_faults(client, stack)
    time.sleep(1.5)  # several relay intervals: a hung relay stays hung once the trigger is gone
    assert pending() >= 5
    supervision.Supervisor(stack).restart("orders")
    wait_until(lambda: runner.http_ok(f"{stack.url('orders')}/health"), timeout_s=30)
    wait_until(lambda: pending() == 0, timeout_s=10, message="outbox drained after the restart")
    assert_verify_clean(stack)


def test_block_refuses_the_downstream(stack, gateway, client):
    put_fault(client, stack, "orders", "block", "payments")
    before = metric(
        client, stack.url("orders"), "downstream_requests_total", to_service="payments", outcome="unreachable"
    )
    resp = place_order(client, gateway, "SKU-009", 1)
    assert resp.status_code == 402 and resp.json()["status"] == "payment_failed"
    assert (
        metric(client, stack.url("orders"), "downstream_requests_total", to_service="payments", outcome="unreachable")
        > before
    )
    assert_verify_clean(stack)


def test_a_503_through_the_gateway_names_the_dependency_that_could_not_answer(stack, gateway, client):
    put_fault(client, stack, "orders", "block", "inventory")
    refused = place_order(client, gateway, "SKU-009", 1)
    assert refused.status_code == 503 and refused.headers["X-Failed-Dependency"] == "inventory", refused.text
    clear_faults(client, stack)
    put_fault(client, stack, "gateway", "block", "orders")
    refused = place_order(client, gateway, "SKU-009", 1)
    assert refused.status_code == 503 and refused.headers["X-Failed-Dependency"] == "orders", refused.text
    clear_faults(client, stack)
    assert place_order(client, gateway, "SKU-009", 1).status_code == 201
    assert_verify_clean(stack)


def test_rate_limit_is_per_client(stack, gateway, client):
    put_fault(client, stack, "gateway", "rate_limit_rps", 0.5)
    a = {"X-Client-ID": f"client-a-{new_key()}"}
    assert place_order(client, gateway, headers=a).status_code == 201
    limited = place_order(client, gateway, headers=a)
    assert limited.status_code == 429 and limited.json()["error"]["code"] == "rate_limited"
    assert int(limited.headers["Retry-After"]) >= 1
    assert place_order(client, gateway, headers={"X-Client-ID": f"client-b-{new_key()}"}).status_code == 201


def test_fault_ends_by_itself_when_its_ttl_passes(stack, client):
    subprocess.run(
        [
            sys.executable,
            "-m",
            "chaos.cli",
            "chaos",
            "set",
            "payments",
            "error_rate",
            "1",
            "--ttl",
            "2s",
            "--run-dir",
            str(stack.run_dir),
        ],
        check=True,
        capture_output=True,
        timeout=30,
    )
    wait_until(lambda: _charge(client, stack).status_code == 500, timeout_s=5, message="fault applied")
    wait_until(lambda: _charge(client, stack).status_code == 402, timeout_s=10, message="fault expired")


def test_redis_down_means_no_faults_and_orders_still_flow(stack, gateway, client):
    sup = supervision.Supervisor(stack)
    put_fault(client, stack, "payments", "error_rate", 1.0)
    sup.stop("redis")
    try:
        wait_until(
            lambda: all(
                metric(client, stack.url(s), "chaos_store_up") == 0
                for s in ("gateway", "orders", "payments", "inventory", "notifications")
            ),
            timeout_s=10,
            message="every service sees the store down",
        )
        for _ in range(3):
            assert place_order(client, gateway).status_code == 201
        put = client.put(
            f"{stack.url('payments')}/chaos/config",
            json={"fault": "latency_ms", "value": 1},
            headers={"X-Chaos-Token": stack.chaos_token},
        )
        assert put.status_code == 503
    finally:
        sup.start("redis")
    wait_until(lambda: metric(client, stack.url("payments"), "chaos_store_up") == 1, timeout_s=10)


def test_cli_lists_and_clears(stack, client):
    put_fault(client, stack, "inventory", "latency_ms", 5, replica=0)
    listed = subprocess.run(
        [sys.executable, "-m", "chaos.cli", "chaos", "list", "--json", "--run-dir", str(stack.run_dir)],
        check=True,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert '"key": "chaos:inventory:latency_ms:replica=0"' in listed.stdout
    bad = subprocess.run(
        [
            sys.executable,
            "-m",
            "chaos.cli",
            "chaos",
            "set",
            "inventory",
            "latency_ms",
            "30001",
            "--run-dir",
            str(stack.run_dir),
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert bad.returncode == 2 and "between 0 and 30000" in bad.stderr.replace("\n", " ")
    subprocess.run(
        [sys.executable, "-m", "chaos.cli", "chaos", "clear", "--run-dir", str(stack.run_dir)],
        check=True,
        capture_output=True,
        timeout=30,
    )
    assert client.get(f"{stack.url('inventory')}/chaos/config").json()["faults"] == []
