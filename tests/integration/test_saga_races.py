"""Races inside the order saga, made deterministic by calling its plain functions in a
chosen order against the real stack (its PostgreSQL, inventory and payments).

Nothing of ours is mocked: the saga runs on the orders schema of the stack's database,
and inventory is made unreachable with the partition fault (`Downstream.blocked`), so
the call is refused before anything is sent, as with an open breaker or a full bulkhead.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

import services.orders
from chaos.layout import StackLayout
from services.common.data.contracts import OrderRequest
from services.common.data.db import Database
from services.common.data.idempotency import fingerprint
from services.common.resilience.policy import Policy, policy_config
from services.common.web.errors import DependencyUnavailable
from services.common.web.http import Downstream, make_transport
from services.common.web.middleware import request_deadline
from services.orders import saga, store
from services.orders.settings import Settings
from tests.support.api import SERVICE_HEADERS, new_key, order_body


@asynccontextmanager
async def saga_deps(stack: StackLayout, partition: list[str]) -> AsyncIterator[saga.SagaDeps]:
    """The orders service's saga dependencies, pointed at the stack. `partition` names
    the downstreams refused before sending (the `block` fault), and can change."""
    settings = Settings(
        chaoslab_profile="ci",
        database_url=stack.database_url,
        inventory_url=stack.url("inventory"),
        payments_url=stack.url("payments"),
    )
    db = Database.for_service(settings, Path(services.orders.__file__).parent)
    transport = make_transport("aiohttp")

    def client(name: str, url: str) -> Downstream:
        policy = Policy(name, [url], policy_config(settings, name, settings.downstream_timeout_s))
        return Downstream(name, policy, transport, blocked=lambda: partition, credential=lambda: SERVICE_HEADERS)

    await db.start(wait_s=30)
    try:
        yield saga.SagaDeps(
            db=db,
            inventory=client("inventory", settings.inventory_url),
            payments=client("payments", settings.payments_url),
            lease_s=60,  # long enough that nobody may claim the first request's order
            call_budget_s=settings.request_timeout_s,
        )
    finally:
        await transport.close()
        await db.close()


async def _orders_under(deps: saga.SagaDeps, key: str) -> int:
    async with deps.db.connection() as conn:
        return await conn.fetchval("SELECT count(*) FROM orders WHERE idempotency_key = $1", key)


@pytest.mark.stack
def test_duplicate_waiting_on_a_withdrawn_order_gets_503_and_the_key_still_makes_one_order(stack):
    """The first request for a key finds inventory unreachable before anything is sent
    and withdraws its pending order (503). A duplicate already waiting on that order
    must get the same kind of answer (503 with Retry-After), not a 500; a retry with the
    key then places exactly one order."""
    key = new_key()
    request = OrderRequest.model_validate(order_body("SKU-001", 1, customer="c-saga-race"))
    body = request.model_dump()

    async def scenario() -> None:
        partition = ["inventory"]
        async with saga_deps(stack, partition) as deps:
            # The first request, as saga.place_order runs it: its pending order, under its lease ...
            async with deps.db.connection() as conn:
                first, created = await store.insert_pending(
                    conn,
                    key=key,
                    request_hash=fingerprint(body),
                    customer_id=request.customer_id,
                    items=body["items"],
                    correlation_id=None,
                    lease_s=deps.lease_s,
                )
            assert created

            # ... while a duplicate comes in, finds it in flight and waits for it.
            async def duplicate() -> saga.Answer:
                request_deadline.set(time.time() + 60)  # its client waits long enough
                return await saga.place_order(deps, key=key, request=request, correlation_id=None)

            waiting = asyncio.create_task(duplicate())
            for _ in range(500):
                if first.order_id in saga.finished._events or waiting.done():
                    break
                await asyncio.sleep(0.01)
            assert first.order_id in saga.finished._events, "the duplicate never waited on the first order"

            # The first request's saga: inventory refused before sending, the order withdrawn.
            with pytest.raises(DependencyUnavailable) as refused:
                await saga.run(deps, first, resumed=False)
            assert refused.value.http_status == 503 and refused.value.retry_after_s
            assert await _orders_under(deps, key) == 0

            # The duplicate gets the same kind of answer: retry later with the same key.
            with pytest.raises(DependencyUnavailable) as told:
                await asyncio.wait_for(waiting, 10)
            assert told.value.http_status == 503
            assert told.value.headers()["Retry-After"] == "1"
            assert "Idempotency-Key" in told.value.message

            # Inventory back: the retry places the order, and the key keeps that one order.
            partition.clear()
            placed = await saga.place_order(deps, key=key, request=request, correlation_id=None)
            assert (placed.http_status, placed.body["status"], placed.replayed) == (201, "confirmed", False)
            assert placed.body["order_id"] != first.order_id
            again = await saga.place_order(deps, key=key, request=request, correlation_id=None)
            assert (again.http_status, again.body, again.replayed) == (201, placed.body, True)
            assert await _orders_under(deps, key) == 1

    asyncio.run(scenario())


class _WithdrawnAfterConflict:
    """An orders connection on which, right after an INSERT lost to the key's order, the
    first request withdraws that order (the DELETE of `store.forget`, on its own
    connection): the window between insert_pending's two statements, made certain."""

    def __init__(self, conn: Any, withdraw: Callable[[], Awaitable[Any]]) -> None:
        self.conn, self.withdraw, self.withdrawn = conn, withdraw, False

    async def fetchrow(self, query: str, *args: Any) -> Any:
        row = await self.conn.fetchrow(query, *args)
        if query.lstrip().startswith("INSERT") and row is None and not self.withdrawn:
            self.withdrawn = True
            await self.withdraw()
        return row


@pytest.mark.stack
def test_a_request_whose_key_is_withdrawn_between_insert_and_select_places_the_order(stack):
    key = new_key()
    request = OrderRequest.model_validate(order_body("SKU-001", 1, customer="c-saga-race"))
    body = request.model_dump()
    pending = {
        "key": key,
        "request_hash": fingerprint(body),
        "customer_id": request.customer_id,
        "items": body["items"],
        "correlation_id": None,
    }

    async def scenario() -> None:
        async with saga_deps(stack, partition=[]) as deps:
            async with deps.db.connection() as conn:
                first, created = await store.insert_pending(conn, **pending, lease_s=deps.lease_s)
            assert created

            async def withdraw() -> None:
                async with deps.db.connection() as other:
                    await store.forget(other, first)

            async with deps.db.connection() as conn:
                racing = _WithdrawnAfterConflict(conn, withdraw)
                second, created = await store.insert_pending(racing, **pending, lease_s=deps.lease_s)
            assert racing.withdrawn
            assert created and second.order_id != first.order_id and second.status == "pending"
            assert await _orders_under(deps, key) == 1
            async with deps.db.connection() as conn:  # nothing was sent for it: withdrawn, it leaves
                await store.forget(conn, second)  # no order under a 60 s lease for the next verify

    asyncio.run(scenario())
