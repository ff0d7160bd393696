"""Order leases: a saga that outlives its lease keeps it (a heartbeat renews it), the
sweeper still takes over an order whose owner died, and a renewal that comes too late
cannot give an order a second outcome.

The saga runs in this process with the orders service's own functions, on the stack's
database and against the stack's real inventory and payments; the payments step is made
slow with the `latency_ms` fault. Its calls get a timeout longer than that latency (as a
training-profile saga has: up to three attempts of 3 s per step, against a 15 s lease),
so the saga legitimately runs past the ci lease of 6 s. The sweeper that would take the
order over is the stack's own, in the orders service (every 2 s in ci): nothing of ours
is mocked.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import asyncpg
import httpx
import pytest

import services.orders
from chaos.layout import StackLayout
from services.common.data.contracts import OrderRequest
from services.common.data.db import Database
from services.common.data.idempotency import fingerprint
from services.common.resilience.policy import Policy, policy_config
from services.common.web.http import Downstream, make_transport
from services.orders import saga, store
from services.orders.settings import Settings
from tests.support.api import SERVICE_HEADERS, charges_for, new_key, order_body
from tests.support.chaos import clear_faults, metric, put_fault

pytestmark = pytest.mark.stack

CI = Settings(chaoslab_profile="ci")
LEASE_S = CI.order_lease_s  # 6 s: the lease the orders service gives an order in ci
# Long enough that, without renewal, the lease expires and the stack's sweeper passes
# at least twice before the charge is answered.
SLOW_CHARGE_MS = int((LEASE_S + 2 * CI.sweeper_interval_s + 1) * 1000)


@pytest.fixture(autouse=True)
def no_faults_left(stack, client):
    yield
    clear_faults(client, stack)


@asynccontextmanager
async def saga_deps(stack: StackLayout, lease_s: float) -> AsyncIterator[saga.SagaDeps]:
    """The orders service's saga dependencies, pointed at the stack, with call timeouts
    longer than the slow charge."""
    slow_s = SLOW_CHARGE_MS / 1000 + 10
    settings = Settings(
        chaoslab_profile="ci",
        database_url=stack.database_url,
        inventory_url=stack.url("inventory"),
        payments_url=stack.url("payments"),
        downstream_timeout_s=slow_s,
        request_timeout_s=slow_s,
    )
    db = Database.for_service(settings, Path(services.orders.__file__).parent)
    transport = make_transport("aiohttp")

    def client(name: str, url: str) -> Downstream:
        return Downstream(
            name,
            Policy(name, [url], policy_config(settings, name, slow_s)),
            transport,
            credential=lambda: SERVICE_HEADERS,
        )

    await db.start(wait_s=30)
    try:
        yield saga.SagaDeps(
            db=db,
            inventory=client("inventory", settings.inventory_url),
            payments=client("payments", settings.payments_url),
            lease_s=lease_s,
            call_budget_s=slow_s,
        )
    finally:
        await transport.close()
        await db.close()


async def _row(deps: saga.SagaDeps, key: str):
    async with deps.db.connection() as conn:
        return await conn.fetchrow(
            "SELECT order_id::text, status, attempts, lease_token::text, lease_until FROM orders "
            "WHERE idempotency_key = $1",
            key,
        )


async def _poll(condition, *, timeout_s: float, message: str):
    deadline = time.monotonic() + timeout_s
    while True:
        found = await condition()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"{message} not met within {timeout_s}s (last: {found!r})")
        await asyncio.sleep(0.1)


def _resumed(client: httpx.Client, stack: StackLayout) -> float:
    return metric(client, stack.url("orders"), "orders_resumed_total")


def test_a_saga_that_outlives_its_lease_is_not_taken_over(stack, client):
    put_fault(client, stack, "payments", "latency_ms", SLOW_CHARGE_MS, route="/charges")
    key = new_key()
    request = OrderRequest.model_validate(order_body("SKU-002", 1, customer="c-lease"))
    resumed_before = _resumed(client, stack)

    async def scenario() -> tuple[saga.Answer, float, object]:
        async with saga_deps(stack, LEASE_S) as deps:
            started = time.monotonic()
            answer = await saga.place_order(deps, key=key, request=request, correlation_id=None)
            return answer, time.monotonic() - started, await _row(deps, key)

    answer, took_s, row = asyncio.run(scenario())
    assert took_s > LEASE_S, "the saga was meant to outlive its lease"
    assert (answer.http_status, answer.body["status"]) == (201, "confirmed"), answer
    assert (row["status"], row["attempts"]) == ("confirmed", 1)  # run once, by its owner
    [charge] = charges_for(client, stack, row["order_id"])
    assert charge["status"] == "succeeded"
    assert _resumed(client, stack) == resumed_before


def test_the_sweeper_still_takes_over_an_order_whose_owner_died(stack, client):
    put_fault(client, stack, "payments", "latency_ms", SLOW_CHARGE_MS, route="/charges")
    key = new_key()
    request = OrderRequest.model_validate(order_body("SKU-003", 1, customer="c-lease-dead"))
    resumed_before = _resumed(client, stack)

    async def scenario():
        async with saga_deps(stack, LEASE_S) as deps:
            owner = asyncio.create_task(saga.place_order(deps, key=key, request=request, correlation_id=None))
            first = await _poll(lambda: _row(deps, key), timeout_s=30, message="the order is pending")

            async def renewed():
                row = await _row(deps, key)
                return row if row["lease_until"] > first["lease_until"] else None

            # The owner is alive and slow: its heartbeat keeps the lease.
            await _poll(renewed, timeout_s=LEASE_S, message="the lease renewed by its owner")
            owner.cancel()  # the owner dies mid-charge, and its heartbeat with it
            await asyncio.gather(owner, return_exceptions=True)
            at_death = await _row(deps, key)
            assert at_death["status"] == "pending"
            with httpx.Client(timeout=30) as c:
                clear_faults(c, stack)

            async def finished():
                row = await _row(deps, key)
                return row if row["status"] != "pending" else None

            return at_death, await _poll(finished, timeout_s=LEASE_S * 5, message="the order finished by the sweeper")

    at_death, done = asyncio.run(scenario())
    assert done["status"] == "confirmed" and done["attempts"] == 2
    assert done["lease_token"] is None and at_death["lease_token"] is not None
    assert _resumed(client, stack) == resumed_before + 1
    succeeded = [c for c in charges_for(client, stack, done["order_id"]) if c["status"] == "succeeded"]
    assert len(succeeded) == 1


def test_a_renewal_that_comes_too_late_cannot_give_a_second_outcome(stack):
    """Owner A's lease ran out and B claimed the order: A can neither renew nor finish it."""
    key = new_key()
    body = order_body("SKU-004", 1, customer="c-lease-late")

    async def scenario() -> tuple[bool, bool, bool, int, str]:
        async with saga_deps(stack, LEASE_S) as deps:
            async with deps.db.connection() as conn:
                a, created = await store.insert_pending(
                    conn,
                    key=key,
                    request_hash=fingerprint(body),
                    customer_id=body["customer_id"],
                    items=body["items"],
                    correlation_id=None,
                    lease_s=LEASE_S,
                )
                assert created
                await store.give_up_lease(conn, a)  # A's lease is over

                async def claimed():
                    return await store.claim(conn, a.order_id, 60)  # B, with a long lease

                b = await _poll(claimed, timeout_s=10, message="the expired order claimed")
                renewed = await store.renew_lease(conn, a, LEASE_S)
                kwargs = dict(http_status=201, body={}, items=None, total_cents=None)
                a_finished = await store.finish(conn, a, status="confirmed", **kwargs)
                b_finished = await store.finish(conn, b, status="payment_failed", **kwargs)
                events = await conn.fetchval(
                    "SELECT count(*) FROM outbox_events WHERE order_id = $1 AND type LIKE 'order.%'", a.order_id
                )
                status = await conn.fetchval("SELECT status FROM orders WHERE order_id = $1::uuid", a.order_id)
            return renewed, a_finished, b_finished, events, status

    try:
        assert asyncio.run(scenario()) == (False, False, True, 1, "payment_failed")
    finally:
        asyncio.run(_forget_order(stack, key))


async def _forget_order(stack, key: str) -> None:
    """The scenario's order was finished by hand, with no reservation behind it, which
    `chaoslab verify` rightly reports: take it away, with its event wherever the relay
    got it to, so the tests after this one start from a stack that verifies clean."""
    conn = await asyncpg.connect(stack.database_url)
    try:
        order_id = await conn.fetchval("SELECT order_id::text FROM orders.orders WHERE idempotency_key = $1", key)
        if order_id is None:
            return
        await conn.execute("DELETE FROM orders.outbox_events WHERE order_id = $1", order_id)
        await conn.execute("DELETE FROM orders.orders WHERE order_id = $1::uuid", order_id)
        deadline = time.monotonic() + 5  # a delivery the relay had already claimed may still land
        while time.monotonic() < deadline:
            await conn.execute("DELETE FROM notifications.inbox WHERE order_id = $1", order_id)
            await asyncio.sleep(0.5)
    finally:
        await conn.close()
