"""The outbox relay (services/common/data/outbox.py) against the real stack.

- A slow receiver holds no PostgreSQL lock, transaction or connection of the relay's:
  it claims a batch in one short statement, delivers outside any transaction, marks it.
- The payments relay sends its voids as one batch (`POST /charges/voids`), same pattern.
- A poison event (one its destination refuses for good) goes to the dead letters, the
  events behind it are delivered, the metrics show it and `chaoslab verify` names it.
- Relay-level: refusals counted to `max_attempts`, a claim that expires when its relay
  died mid-delivery, two relays (replicas) never deliver one event twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

import services.orders
from chaos import verify as verifier
from chaos.layout import StackLayout
from services.common.data.db import Database, migration_dirs
from services.common.data.outbox import OutboxRelay, Refused
from tests.support.api import charges_for, events_for, place_order
from tests.support.chaos import clear_faults, metric, put_fault
from tests.support.stack import wait_until

pytestmark = pytest.mark.stack


def _sql(layout: StackLayout, statement: str, *args: Any) -> list[asyncpg.Record]:
    async def run() -> list[asyncpg.Record]:
        conn = await asyncpg.connect(layout.database_url, timeout=10)
        try:
            return await conn.fetch(statement, *args)
        finally:
            await conn.close()

    return asyncio.run(run())


@pytest.fixture()
def faults(stack: StackLayout, client: httpx.Client) -> Iterator[None]:
    clear_faults(client, stack)
    yield
    clear_faults(client, stack)


class _Streak:
    """How long, at the longest, a condition held over consecutive polls."""

    def __init__(self) -> None:
        self.since: float | None = None
        self.longest_s = 0.0

    def saw(self, now: float, held: bool) -> None:
        if not held:
            self.since = None
            return
        if self.since is None:
            self.since = now
        self.longest_s = max(self.longest_s, round(now - self.since, 3))


async def _watch(layout: StackLayout, event_ids: list[str], seconds: float) -> dict[str, Any]:
    """While the events are in flight: how long, at the longest, could another connection
    not lock their rows, and how long was a connection idle in a transaction on the outbox?
    The relay's claim is a short transaction a poll may catch; a delivery made inside it
    would show as a streak as long as the receiver's latency."""
    conn = await asyncpg.connect(layout.database_url, timeout=10)
    polls, lock, idle_in_transaction = 0, _Streak(), _Streak()
    queries: set[str] = set()
    ids = [uuid.UUID(i) for i in event_ids]
    try:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            pending = await conn.fetchval(
                "SELECT count(*) FROM orders.outbox_events WHERE event_id = ANY($1) AND published_at IS NULL", ids
            )
            if pending == 0:
                break
            polls += 1
            now = time.monotonic()
            try:
                async with conn.transaction():
                    await conn.execute("SET LOCAL lock_timeout = 0")
                    await conn.fetch(
                        "SELECT event_id FROM orders.outbox_events WHERE event_id = ANY($1) FOR UPDATE NOWAIT", ids
                    )
                lock.saw(now, held=False)
            except asyncpg.LockNotAvailableError:
                lock.saw(now, held=True)
            idle = [
                r["query"]
                for r in await conn.fetch(
                    """SELECT query FROM pg_stat_activity
                       WHERE state LIKE 'idle in transaction%' AND query ILIKE '%outbox_events%'
                         AND pid <> pg_backend_pid()"""
                )
            ]
            queries.update(idle)
            idle_in_transaction.saw(now, held=bool(idle))
            await asyncio.sleep(0.05)
        return {
            "polls_in_flight": polls,
            "longest_lock_s": lock.longest_s,
            "longest_idle_in_transaction_s": idle_in_transaction.longest_s,
            "idle_queries": sorted(queries),
        }
    finally:
        await conn.close()


def test_a_slow_receiver_holds_no_lock_and_no_transaction(stack, gateway, client, faults):
    put_fault(client, stack, "notifications", "latency_ms", 1000, route="/events")
    order = place_order(client, gateway, "SKU-004", 1).json()
    [event_id] = [
        str(r["event_id"])
        for r in _sql(stack, "SELECT event_id FROM orders.outbox_events WHERE order_id = $1", order["order_id"])
    ]
    seen = asyncio.run(_watch(stack, [event_id], seconds=8))

    assert seen["polls_in_flight"] >= 5, seen  # the delivery was held up while we looked
    # The receiver takes 1 s: a lock or a transaction held through delivery lasts that long.
    assert seen["longest_lock_s"] < 0.5, f"the relay held the outbox rows locked during delivery: {seen}"
    assert seen["longest_idle_in_transaction_s"] < 0.5, f"the relay held a transaction open during delivery: {seen}"
    wait_until(lambda: events_for(client, stack, order["order_id"]), timeout_s=10, message="event delivered")


def test_voids_go_as_one_batch_without_holding_locks(stack, gateway, client, faults):
    """Three declined orders, then a void event for each (as orders writes one when a
    charge's outcome is unknown): one call to payments, no lock held while it is slow."""
    orders = []
    for _ in range(3):
        resp = place_order(client, gateway, "SKU-010", 60)  # over the charge limit: declined
        assert resp.status_code == 402, resp.text
        orders.append(resp.json())
    event_ids = [str(uuid.uuid4()) for _ in orders]
    before = metric(client, stack.url("payments"), "http_requests_total", route="/charges/voids", method="POST")
    put_fault(client, stack, "payments", "latency_ms", 800, route="/charges")
    _sql(
        stack,
        """INSERT INTO orders.outbox_events (event_id, type, order_id, payload, destination)
           SELECT e, 'charge.void', o, jsonb_build_object('order_id', o, 'idempotency_key', k), 'payments'
           FROM unnest($1::uuid[], $2::text[], $3::text[]) AS t(e, o, k)""",
        event_ids,
        [o["order_id"] for o in orders],
        [
            _sql(stack, "SELECT idempotency_key FROM orders.orders WHERE order_id = $1::uuid", o["order_id"])[0][0]
            for o in orders
        ],
    )
    seen = asyncio.run(_watch(stack, event_ids, seconds=10))

    # Payments takes 0.8 s: a lock or a transaction held through the call lasts that long.
    assert seen["longest_lock_s"] < 0.4, f"the void relay held the outbox rows locked during delivery: {seen}"
    assert seen["longest_idle_in_transaction_s"] < 0.4, (
        f"the void relay held a transaction open during delivery: {seen}"
    )
    for order in orders:
        assert [c["status"] for c in charges_for(client, stack, order["order_id"])] == ["voided"]
    after = metric(client, stack.url("payments"), "http_requests_total", route="/charges/voids", method="POST")
    assert after - before == 1, f"{after - before} batch void calls for 3 voids"


def test_a_poison_event_is_dead_lettered_and_the_events_behind_it_go_on(stack, client, faults):
    """notifications refuses an event whose type is longer than 64 characters with a 422
    (a permanent refusal): it goes to the dead letters at once, the two behind it arrive."""
    order_ids = [f"poison-test-{uuid.uuid4().hex[:12]}" for _ in range(3)]
    event_ids = [str(uuid.uuid4()) for _ in order_ids]
    types = ["order." + "x" * 80, "order.confirmed", "order.confirmed"]
    dead_before = metric(client, stack.url("orders"), "outbox_dead_lettered_total", destination="notifications")
    # One statement: the poison first in line, the two others behind it in the same batch.
    _sql(
        stack,
        """INSERT INTO orders.outbox_events (event_id, type, order_id, payload, created_at)
           SELECT e, t, o, jsonb_build_object('order_id', o), now() - make_interval(secs => 3 - n)
           FROM unnest($1::uuid[], $2::text[], $3::text[], $4::int[]) AS x(e, t, o, n)""",
        event_ids,
        types,
        order_ids,
        [0, 1, 2],
    )
    try:
        for order_id in order_ids[1:]:
            wait_until(lambda o=order_id: events_for(client, stack, o), timeout_s=15, message=f"{order_id} delivered")
        [dead] = wait_until(
            lambda: _sql(
                stack, "SELECT * FROM orders.outbox_dead_letters WHERE event_id = $1", uuid.UUID(event_ids[0])
            ),
            timeout_s=10,
            message="the poison event dead-lettered",
        )
        assert dead["destination"] == "notifications" and dead["type"] == types[0]
        assert "422" in dead["last_error"] and dead["attempts"] >= 1
        assert json.loads(dead["payload"]) == {"order_id": order_ids[0]}
        assert not _sql(stack, "SELECT 1 FROM orders.outbox_events WHERE event_id = $1", uuid.UUID(event_ids[0]))
        assert events_for(client, stack, order_ids[0]) == []

        wait_until(
            lambda: metric(client, stack.url("orders"), "outbox_dead_letters", destination="notifications") >= 1,
            timeout_s=5,
            message="outbox_dead_letters shows it",
        )
        dead_after = metric(client, stack.url("orders"), "outbox_dead_lettered_total", destination="notifications")
        assert dead_after - dead_before == 1

        checks, _ = verifier.verify(stack.database_url, grace_s=0)
        [named] = [c for c in checks if c.name == "no_dead_letters"]
        assert not named.ok and any(event_ids[0] in e and "422" in e for e in named.examples), named
    finally:  # the other tests of this session expect a clean verify
        _sql(stack, "DELETE FROM orders.outbox_dead_letters WHERE event_id = ANY($1::uuid[])", event_ids)
        _sql(stack, "DELETE FROM orders.outbox_events WHERE event_id = ANY($1::uuid[])", event_ids)
        _sql(stack, "DELETE FROM notifications.inbox WHERE event_id = ANY($1::uuid[])", event_ids)


# --- the relay on its own, on the stack's database, with a receiver of the test's own ---------


async def _relay_db(layout: StackLayout) -> Database:
    db = Database(
        layout.database_url,
        "orders",
        migration_dirs(Path(services.orders.__file__).parent),
        min_size=1,
        max_size=4,
        timeout_s=5,
        acquire_timeout_s=5,
    )
    await db.start()
    return db


async def _insert(db: Database, destination: str, n: int) -> list[str]:
    ids = [str(uuid.uuid4()) for _ in range(n)]
    async with db.connection() as conn:
        await conn.execute(
            """INSERT INTO outbox_events (event_id, type, order_id, payload, destination, created_at)
               SELECT e, 'test.event', 'relay-test', '{}'::jsonb, $2, clock_timestamp() + make_interval(secs => i)
               FROM unnest($1::uuid[]) WITH ORDINALITY AS x(e, i)""",
            ids,
            destination,
        )
    return ids


async def _cleanup(db: Database, destination: str) -> None:
    async with db.connection() as conn:
        await conn.execute("DELETE FROM outbox_events WHERE destination = $1", destination)
        await conn.execute("DELETE FROM outbox_dead_letters WHERE destination = $1", destination)
    await db.close()


def test_refusals_count_to_the_limit_and_the_events_behind_go_on(stack):
    async def run() -> None:
        db = await _relay_db(stack)
        destination = f"test-{uuid.uuid4().hex[:8]}"
        try:
            ids = await _insert(db, destination, 4)
            poison = ids[0]
            received: list[str] = []

            async def deliver(events: list[dict[str, Any]]) -> None:
                if any(e["event_id"] == poison for e in events):
                    raise Refused(destination, 500, "this one breaks the receiver")
                received.extend(e["event_id"] for e in events)

            relay = OutboxRelay(
                db, destination, deliver, interval_s=0.01, retention_s=3600, max_backoff_s=0.05, max_attempts=3
            )
            for _ in range(40):
                with contextlib.suppress(Refused):
                    await relay.relay_once()
                await asyncio.sleep(0.06)
            assert sorted(received) == sorted(ids[1:])  # each once, behind the refused one
            async with db.connection() as conn:
                dead = await conn.fetchrow("SELECT * FROM outbox_dead_letters WHERE event_id = $1", uuid.UUID(poison))
                left = await conn.fetchval(
                    "SELECT count(*) FROM outbox_events WHERE destination = $1 AND published_at IS NULL", destination
                )
            assert dead is not None and "500" in dead["last_error"] and dead["attempts"] >= 3
            assert left == 0
        finally:
            await _cleanup(db, destination)

    asyncio.run(run())


def test_a_claim_left_by_a_relay_that_died_expires(stack):
    async def run() -> None:
        db = await _relay_db(stack)
        destination = f"test-{uuid.uuid4().hex[:8]}"
        try:
            ids = await _insert(db, destination, 3)
            received: list[str] = []

            async def hang(events: list[dict[str, Any]]) -> None:
                await asyncio.sleep(3600)

            async def deliver(events: list[dict[str, Any]]) -> None:
                received.extend(e["event_id"] for e in events)

            kwargs = {"interval_s": 0.01, "retention_s": 3600, "max_backoff_s": 0.05, "lease_s": 0.5}
            dying = asyncio.create_task(OutboxRelay(db, destination, hang, **kwargs).relay_once())
            await asyncio.sleep(0.2)
            other = OutboxRelay(db, destination, deliver, **kwargs)
            assert await other.relay_once() == 0  # claimed by the first relay
            dying.cancel()  # dies mid-delivery
            await asyncio.sleep(0.5)
            assert await other.relay_once() == 3
            assert sorted(received) == sorted(ids)
        finally:
            await _cleanup(db, destination)

    asyncio.run(run())


def test_two_relays_never_deliver_one_event_twice(stack):
    async def run() -> None:
        db = await _relay_db(stack)
        destination = f"test-{uuid.uuid4().hex[:8]}"
        try:
            ids = await _insert(db, destination, 30)
            received: list[list[str]] = [[], []]

            def receiver(i: int):
                async def deliver(events: list[dict[str, Any]]) -> None:
                    await asyncio.sleep(0.2)
                    received[i].extend(e["event_id"] for e in events)

                return deliver

            relays = [
                OutboxRelay(
                    db, destination, receiver(i), interval_s=0.01, retention_s=3600, max_backoff_s=0.05, batch_size=10
                )
                for i in range(2)
            ]
            for _ in range(3):
                await asyncio.gather(*(r.relay_once() for r in relays))
            assert not set(received[0]) & set(received[1])
            assert sorted(received[0] + received[1]) == sorted(ids)
        finally:
            await _cleanup(db, destination)

    asyncio.run(run())
