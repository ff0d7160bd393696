"""Every invariant `chaoslab verify` checks can fail, and names what broke.

A database of our own on the stack's PostgreSQL server (the stack's `chaoslab`
database is the other tests'): the services' migrations run into a template, and the
services' own code (store, stock, charges, the outbox relay, the inbox) leaves a small
consistent dataset in it, as a run of the saga would:

- `confirmed`: reserved, charged, committed; its event delivered to notifications;
- `declined`: charged over the limit (declined), stock released, payment_failed;
- `voided`: charged, outcome taken as unknown, stock released, payment_failed with a
  void the relay delivered to payments;
- `sold_out`: more SKU-LIMITED than there is, out_of_stock.

Each test copies the template (`CREATE DATABASE ... TEMPLATE`), corrupts the copy the
way only one invariant catches, and asserts verify names exactly that check, with the
order in its examples. The client ledger's checks are proved the same way.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pytest

import services.inventory
import services.notifications
import services.orders
import services.payments
from chaos import ledger as client_ledger
from chaos import verify as verifier
from chaos.layout import StackLayout
from services.common.data.db import Database, migration_dirs
from services.common.data.idempotency import fingerprint
from services.common.data.outbox import OutboxRelay
from services.inventory import catalogue, stock
from services.notifications import inbox
from services.orders import store
from services.payments import charges

GRACE_S = 60.0  # the dataset is moved an hour into the past: all of it is judged
LIMIT_CENTS = 500_000


@dataclass(frozen=True)
class Order:
    order_id: str
    key: str
    customer_id: str
    status: str
    total_cents: int


@dataclass(frozen=True)
class Template:
    name: str
    server: StackLayout
    orders: dict[str, Order]


def _url(stack: StackLayout, database: str) -> str:
    return f"postgresql://chaoslab@127.0.0.1:{stack.ports['postgres']}/{database}"


async def _admin(stack: StackLayout) -> asyncpg.Connection:
    return await asyncpg.connect(_url(stack, "postgres"), timeout=10)


# --- the dataset, left by the services' own code --------------------------------------------


def _db(url: str, package: Any, *, on_ready: Any = None) -> Database:
    name = package.__name__.rsplit(".", 1)[-1]
    return Database(
        url,
        name,
        migration_dirs(Path(package.__file__).parent),
        min_size=1,
        max_size=2,
        timeout_s=5,
        acquire_timeout_s=5,
        on_ready=on_ready,
    )


async def _build(url: str) -> dict[str, Order]:
    dbs = {
        "orders": _db(url, services.orders),
        "payments": _db(url, services.payments),
        "inventory": _db(url, services.inventory, on_ready=lambda conn: catalogue.seed(conn, 100)),
        "notifications": _db(url, services.notifications),
    }
    for db in dbs.values():
        await db.start(wait_s=30)
        assert db.ready, f"{db.schema}: migrations did not run"
    try:
        placed = {
            "confirmed": await _place(dbs, "confirmed", [("SKU-001", 2), ("SKU-003", 1)]),
            "declined": await _place(dbs, "declined", [("SKU-010", 60)]),  # 599 940 > the 500 000 limit
            "voided": await _place(dbs, "voided", [("SKU-002", 3)], unknown_charge=True),
            "sold_out": await _place(dbs, "sold_out", [("SKU-LIMITED", 6)]),
        }
        await _relay(dbs)
    finally:
        for db in dbs.values():
            await db.close()
    return placed


async def _place(
    dbs: dict[str, Database], name: str, wanted: list[tuple[str, int]], *, unknown_charge: bool = False
) -> Order:
    """The saga's steps, in its order, through the services' own functions."""
    key, customer = f"key-{name}", f"c-{name}"
    items = [{"sku": sku, "quantity": qty} for sku, qty in wanted]
    async with dbs["orders"].connection() as conn:
        order, created = await store.insert_pending(
            conn,
            key=key,
            request_hash=fingerprint({"customer_id": customer, "items": items}),
            customer_id=customer,
            items=items,
            correlation_id=f"corr-{name}",
            lease_s=60,
        )
    assert created
    async with dbs["inventory"].connection() as conn:
        reservation = await stock.reserve(conn, order.order_id, items)
    void = False
    if reservation.status == "rejected":
        status, http_status = "out_of_stock", 409
    else:
        async with dbs["payments"].connection() as conn:
            charge = await charges.charge(
                conn,
                key=key,
                order_id=order.order_id,
                customer_id=customer,
                amount_cents=reservation.total_cents,
                limit_cents=LIMIT_CENTS,
                still_wanted=lambda: True,
            )
        paid = charge["status"] == "succeeded" and not unknown_charge
        async with dbs["inventory"].connection() as conn:
            await (stock.commit if paid else stock.release)(conn, order.order_id)
        status, http_status, void = ("confirmed", 201, False) if paid else ("payment_failed", 402, unknown_charge)
    body = {**order.view(), "status": status, "items": reservation.items, "total_cents": reservation.total_cents}
    async with dbs["orders"].connection() as conn:
        assert await store.finish(
            conn,
            order,
            status=status,
            http_status=http_status,
            body=body,
            items=reservation.items,
            total_cents=reservation.total_cents,
            void_charge=void,
        )
    return Order(order.order_id, key, customer, status, reservation.total_cents)


async def _relay(dbs: dict[str, Database]) -> None:
    """Both relays deliver once: events to notifications' inbox, voids to payments."""

    async def notify(events: list[dict[str, Any]]) -> None:
        async with dbs["notifications"].connection() as conn, conn.transaction():
            await inbox.accept(conn, events)

    async def void(events: list[dict[str, Any]]) -> None:
        async with dbs["payments"].connection() as conn:
            for event in events:
                await charges.void(conn, key=event["payload"]["idempotency_key"], order_id=event["order_id"])

    for destination, deliver in (("notifications", notify), ("payments", void)):
        relay = OutboxRelay(dbs["orders"], destination, deliver, interval_s=0.1, retention_s=3600, max_backoff_s=1)
        assert await relay.relay_once() > 0


async def _age(url: str) -> None:
    """Move every row an hour into the past, past verify's grace."""
    conn = await asyncpg.connect(url, timeout=10)
    try:
        await conn.execute(
            """UPDATE orders.orders SET created_at = created_at - interval '1 hour',
                                        updated_at = updated_at - interval '1 hour';
               UPDATE orders.outbox_events SET created_at = created_at - interval '1 hour',
                                               published_at = published_at - interval '1 hour';
               UPDATE inventory.reservations SET created_at = created_at - interval '1 hour',
                                                 updated_at = updated_at - interval '1 hour';
               UPDATE payments.charges SET created_at = created_at - interval '1 hour',
                                           updated_at = updated_at - interval '1 hour';
               UPDATE notifications.inbox SET created_at = created_at - interval '1 hour',
                                              received_at = received_at - interval '1 hour';"""
        )
    finally:
        await conn.close()


@pytest.fixture(scope="module")
def template(stack: StackLayout) -> Iterator[Template]:
    name = f"verify_tmpl_{uuid.uuid4().hex[:12]}"

    async def create() -> dict[str, Order]:
        admin = await _admin(stack)
        try:
            await admin.execute(f'CREATE DATABASE "{name}"')
        finally:
            await admin.close()
        placed = await _build(_url(stack, name))
        await _age(_url(stack, name))
        return placed

    orders = asyncio.run(create())
    try:
        yield Template(name, stack, orders)
    finally:
        asyncio.run(_drop(stack, name))


async def _drop(stack: StackLayout, name: str) -> None:
    admin = await _admin(stack)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@dataclass(frozen=True)
class Copy:
    url: str
    orders: dict[str, Order]

    def sql(self, statement: str, *args: Any) -> None:
        async def run() -> None:
            conn = await asyncpg.connect(self.url, timeout=10)
            try:
                await conn.execute(statement, *args)
            finally:
                await conn.close()

        asyncio.run(run())

    def report(self, ledger: client_ledger.Ledger | None = None) -> verifier.Report:
        return asyncio.run(verifier.snapshot(self.url, GRACE_S, ledger=ledger))

    def failed(self, ledger: client_ledger.Ledger | None = None) -> dict[str, list[str]]:
        return {c.name: c.examples for c in self.report(ledger).failed}


@pytest.fixture()
def db(template: Template) -> Iterator[Copy]:
    name = f"verify_{uuid.uuid4().hex[:12]}"

    async def create() -> None:
        admin = await _admin(template.server)
        try:
            await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template.name}"')
        finally:
            await admin.close()

    asyncio.run(create())
    try:
        yield Copy(_url(template.server, name), template.orders)
    finally:
        asyncio.run(_drop(template.server, name))


def assert_only(failed: dict[str, list[str]], check: str, *names: str) -> None:
    """Exactly `check` failed, and its examples name each of `names` (orders, keys)."""
    assert set(failed) == {check}, failed
    text = "\n".join(failed[check])
    for name in names:
        assert name in text, (name, failed[check])


# --- the consistent dataset ------------------------------------------------------------------


@pytest.mark.stack
def test_the_services_own_dataset_is_clean(db: Copy) -> None:
    report = db.report()
    assert report.failed == [], {c.name: c.examples for c in report.failed}
    assert report.counts == {"confirmed": 1, "payment_failed": 2, "out_of_stock": 1}
    names = [c.name for c in report.checks]
    assert len(names) == len(set(names))
    assert all(c.description for c in report.checks)


# --- one corruption per invariant -------------------------------------------------------------


@pytest.mark.stack
def test_a_confirmed_order_without_its_charge(db: Copy) -> None:
    order = db.orders["confirmed"]
    db.sql("DELETE FROM payments.charges WHERE order_id = $1", order.order_id)
    assert_only(db.failed(), "confirmed_charged_once", order.order_id)


@pytest.mark.stack
def test_a_successful_charge_off_by_one(db: Copy) -> None:
    order = db.orders["confirmed"]
    db.sql("UPDATE payments.charges SET amount_cents = amount_cents + 1 WHERE order_id = $1", order.order_id)
    assert_only(db.failed(), "confirmed_charged_once", order.order_id)


@pytest.mark.stack
def test_a_failed_order_keeps_a_successful_charge(db: Copy) -> None:
    order = db.orders["declined"]
    db.sql("UPDATE payments.charges SET status = 'succeeded', reason = NULL WHERE order_id = $1", order.order_id)
    assert_only(db.failed(), "failed_not_charged", order.order_id)


@pytest.mark.stack
def test_a_successful_charge_for_an_order_that_does_not_exist(db: Copy) -> None:
    ghost = str(uuid.uuid4())
    db.sql(
        """INSERT INTO payments.charges (idempotency_key, order_id, customer_id, amount_cents, status, created_at)
           VALUES ('key-ghost', $1, 'c-ghost', 100, 'succeeded', now() - interval '1 hour')""",
        ghost,
    )
    assert_only(db.failed(), "charges_have_orders", ghost)


@pytest.mark.stack
def test_a_void_behind_a_confirmed_order(db: Copy) -> None:
    order = db.orders["confirmed"]
    db.sql(
        """INSERT INTO payments.charges (idempotency_key, order_id, customer_id, amount_cents, status, reason,
                                         created_at)
           VALUES ('key-confirmed-2', $1, $2, $3, 'voided', 'voided by the caller', now() - interval '1 hour')""",
        order.order_id,
        order.customer_id,
        order.total_cents,
    )
    assert_only(db.failed(), "failed_charges_not_confirmed", order.order_id)


@pytest.mark.stack
def test_a_void_delivered_to_a_confirmed_order_breaks_two_invariants(db: Copy) -> None:
    """The realistic fault (a void for the wrong order) is both: the confirmed order is
    no longer paid, and a voided charge sits behind a confirmed order."""
    order = db.orders["confirmed"]
    db.sql("UPDATE payments.charges SET status = 'voided' WHERE order_id = $1", order.order_id)
    failed = db.failed()
    assert set(failed) == {"confirmed_charged_once", "failed_charges_not_confirmed"}, failed
    assert all(order.order_id in "\n".join(examples) for examples in failed.values())


@pytest.mark.stack
def test_a_declined_charge_off_by_one(db: Copy) -> None:
    order = db.orders["declined"]
    db.sql("UPDATE payments.charges SET amount_cents = amount_cents + 1 WHERE order_id = $1", order.order_id)
    assert_only(db.failed(), "charge_amounts_match", order.order_id, order.key)


@pytest.mark.stack
def test_a_charge_for_another_customer(db: Copy) -> None:
    order = db.orders["voided"]
    db.sql("UPDATE payments.charges SET customer_id = 'c-someone-else' WHERE order_id = $1", order.order_id)
    assert_only(db.failed(), "charge_amounts_match", order.order_id)


@pytest.mark.stack
def test_a_confirmed_order_whose_stock_is_still_only_reserved(db: Copy) -> None:
    order = db.orders["confirmed"]
    db.sql("UPDATE inventory.reservations SET status = 'reserved' WHERE order_id = $1", order.order_id)
    db.sql(  # the products agree with the reservation, so stock is still conserved
        """UPDATE inventory.products p SET reserved = p.reserved + w.qty, committed = p.committed - w.qty
           FROM (SELECT i->>'sku' AS sku, (i->>'quantity')::int AS qty
                 FROM inventory.reservations r, jsonb_array_elements(r.items) i WHERE r.order_id = $1) w
           WHERE p.sku = w.sku""",
        order.order_id,
    )
    assert_only(db.failed(), "reservations_match_orders", order.order_id)


@pytest.mark.stack
def test_a_quantity_changed_in_a_reservation(db: Copy) -> None:
    order = db.orders["confirmed"]
    # SKU-001: 2 ordered, 3 committed; the reservation's total and the stock agree with it.
    db.sql(
        """UPDATE inventory.reservations
           SET items = (SELECT jsonb_agg(CASE WHEN i->>'sku' = 'SKU-001' THEN jsonb_set(i, '{quantity}', '3')
                                              ELSE i END)
                        FROM jsonb_array_elements(items) i),
               total_cents = total_cents + 1999
           WHERE order_id = $1""",
        order.order_id,
    )
    db.sql("UPDATE inventory.products SET initial = initial + 1, committed = committed + 1 WHERE sku = 'SKU-001'")
    failed = db.failed()
    assert_only(failed, "order_items_match_reservation", order.order_id, "SKU-001 2 unit(s) at 1999 in the order, 3")


@pytest.mark.stack
def test_a_unit_price_changed_in_an_order(db: Copy) -> None:
    order = db.orders["sold_out"]
    db.sql(
        """UPDATE orders.orders SET items = jsonb_set(items, '{0,unit_price_cents}', '1') WHERE order_id = $1""",
        uuid.UUID(order.order_id),
    )
    assert_only(db.failed(), "order_items_match_reservation", order.order_id, "SKU-LIMITED")


@pytest.mark.stack
def test_a_reservation_total_that_is_not_its_items(db: Copy) -> None:
    order = db.orders["sold_out"]
    db.sql("UPDATE inventory.reservations SET total_cents = total_cents + 1 WHERE order_id = $1", order.order_id)
    assert_only(db.failed(), "order_items_match_reservation", order.order_id)


@pytest.mark.stack
def test_stock_held_for_an_order_that_does_not_exist(db: Copy) -> None:
    ghost = str(uuid.uuid4())
    db.sql(
        """INSERT INTO inventory.reservations (order_id, status, items, total_cents, created_at)
           VALUES ($1, 'reserved', '[{"sku": "SKU-005", "quantity": 1, "unit_price_cents": 1299}]', 1299,
                   now() - interval '1 hour')""",
        ghost,
    )
    db.sql("UPDATE inventory.products SET available = available - 1, reserved = reserved + 1 WHERE sku = 'SKU-005'")
    assert_only(db.failed(), "no_orphan_reservations", ghost)


@pytest.mark.stack
def test_stock_not_conserved(db: Copy) -> None:
    db.sql("UPDATE inventory.products SET available = available - 1 WHERE sku = 'SKU-001'")
    assert_only(db.failed(), "stock_conserved", "SKU-001")


@pytest.mark.stack
def test_an_order_stuck_pending(db: Copy) -> None:
    stuck = str(uuid.uuid4())
    db.sql(
        """INSERT INTO orders.orders (order_id, idempotency_key, request_hash, customer_id, requested_items,
                                      status, created_at, updated_at)
           VALUES ($1::uuid, 'key-stuck', 'h', 'c-stuck', '[{"sku": "SKU-001", "quantity": 1}]', 'pending',
                   now() - interval '1 hour', now() - interval '1 hour')""",
        stuck,
    )
    assert_only(db.failed(), "no_stuck_pending", stuck)


@pytest.mark.stack
def test_an_old_outbox_event_never_published(db: Copy) -> None:
    order = db.orders["declined"]  # its charge is declined, not voided: the void never arrived
    db.sql(
        """INSERT INTO orders.outbox_events (event_id, type, order_id, payload, destination, created_at, attempts)
           VALUES (gen_random_uuid(), 'charge.void', $1, jsonb_build_object('order_id', $1::text,
                   'idempotency_key', $2::text), 'payments', now() - interval '1 hour', 7)""",
        order.order_id,
        order.key,
    )
    assert_only(db.failed(), "outbox_delivered", order.order_id, "not delivered after 7 attempt(s)")


@pytest.mark.stack
def test_an_outbox_event_marked_delivered_that_never_arrived(db: Copy) -> None:
    order = db.orders["declined"]
    db.sql(
        """INSERT INTO orders.outbox_events (event_id, type, order_id, payload, destination, created_at,
                                             published_at, attempts)
           VALUES (gen_random_uuid(), 'charge.void', $1, jsonb_build_object('order_id', $1::text,
                   'idempotency_key', $2::text), 'payments', now() - interval '1 hour',
                   now() - interval '59 minutes', 1)""",
        order.order_id,
        order.key,
    )
    assert_only(db.failed(), "outbox_delivered", order.order_id, "marked delivered but not found there")


@pytest.mark.stack
def test_a_doubled_inbox_row(db: Copy) -> None:
    order = db.orders["confirmed"]
    db.sql(
        """INSERT INTO notifications.inbox (event_id, type, order_id, correlation_id, payload, created_at)
           SELECT gen_random_uuid(), type, order_id, correlation_id, payload, created_at
           FROM notifications.inbox WHERE order_id = $1""",
        order.order_id,
    )
    assert_only(db.failed(), "final_orders_announced", order.order_id, "2 event(s)")


@pytest.mark.stack
def test_an_event_lost_after_the_outbox_purged_it(db: Copy) -> None:
    """The purge keeps nothing: a lost event whose outbox row is gone is still caught,
    from the inbox side."""
    order = db.orders["voided"]
    db.sql("DELETE FROM notifications.inbox WHERE order_id = $1", order.order_id)
    db.sql("DELETE FROM orders.outbox_events WHERE published_at IS NOT NULL")  # OutboxRelay.purge
    assert_only(db.failed(), "final_orders_announced", order.order_id, "0 event(s)")


@pytest.mark.stack
def test_an_inbox_payload_with_the_wrong_total(db: Copy) -> None:
    order = db.orders["confirmed"]
    db.sql(
        """UPDATE notifications.inbox
           SET payload = jsonb_set(payload, '{total_cents}', to_jsonb((payload->>'total_cents')::bigint + 1))
           WHERE order_id = $1""",
        order.order_id,
    )
    assert_only(db.failed(), "inbox_matches_orders", order.order_id, f"total {order.total_cents + 1}")


@pytest.mark.stack
def test_an_inbox_event_of_the_wrong_type(db: Copy) -> None:
    order = db.orders["sold_out"]
    db.sql("UPDATE notifications.inbox SET type = 'order.confirmed' WHERE order_id = $1", order.order_id)
    assert_only(db.failed(), "inbox_matches_orders", order.order_id, "order.confirmed")


@pytest.mark.stack
def test_an_event_for_an_order_that_does_not_exist(db: Copy) -> None:
    ghost = str(uuid.uuid4())
    db.sql(
        """INSERT INTO notifications.inbox (event_id, type, order_id, payload, created_at)
           VALUES (gen_random_uuid(), 'order.confirmed', $1, '{}', now() - interval '1 hour')""",
        ghost,
    )
    assert_only(db.failed(), "events_have_orders", ghost)


@pytest.mark.stack
def test_recent_activity_is_not_judged(db: Copy) -> None:
    """Inside the grace period an undelivered event or a pending order is still in flight."""
    db.sql(
        """INSERT INTO orders.orders (order_id, idempotency_key, request_hash, customer_id, requested_items, status)
           VALUES (gen_random_uuid(), 'key-new', 'h', 'c-new', '[{"sku": "SKU-001", "quantity": 1}]', 'pending')"""
    )
    assert db.failed() == {}


# --- the client ledger ---------------------------------------------------------------------


def _said(order: Order, *, t: float, status: int | None = None, replayed: bool = False, **change: Any) -> Any:
    http = {"confirmed": 201, "payment_failed": 402, "out_of_stock": 409}[order.status]
    entry = {
        "t": t,
        "key": order.key,
        "status": http if status is None else status,
        "order_id": order.order_id,
        "order_status": order.status,
        "total_cents": order.total_cents,
        "replayed": replayed,
    }
    return client_ledger.Entry(**{**entry, **change})


def _ledger(tmp_path: Path, entries: list[client_ledger.Entry]) -> client_ledger.Ledger:
    """Written and read back through the ledger's own writer and reader."""
    writer = client_ledger.Writer(tmp_path / "ledger.jsonl")
    for entry in entries:
        writer.record(entry)
    writer.close()
    return client_ledger.read([tmp_path / "ledger.jsonl"])


def _honest(db: Copy) -> list[client_ledger.Entry]:
    o = db.orders
    busy = client_ledger.Entry(t=1.0, key=o["confirmed"].key, status=503)
    shed = client_ledger.Entry(t=1.5, key=o["declined"].key, status=429)
    lost = client_ledger.Entry(t=1.6, key=o["voided"].key, status=0)
    return [
        busy,
        _said(o["confirmed"], t=2.0),
        _said(o["confirmed"], t=3.0, replayed=True),
        shed,
        _said(o["declined"], t=4.0),
        lost,
        _said(o["voided"], t=5.0),
        _said(o["sold_out"], t=6.0),
    ]


@pytest.mark.stack
def test_an_honest_ledger_is_clean_and_counted(db: Copy, tmp_path: Path) -> None:
    report = db.report(_ledger(tmp_path, _honest(db)))
    assert report.failed == [], {c.name: c.examples for c in report.failed}
    assert {"ledger_answers_match_orders", "ledger_one_order_per_key", "ledger_repeats_first_answer"} <= {
        c.name for c in report.checks
    }
    assert report.ledger is not None
    assert report.ledger.answers == 8 and report.ledger.final_answers == 5 and report.ledger.replayed == 1
    assert report.ledger.status_5xx == 1 and report.ledger.no_answer == 1
    assert report.ledger.by_class == {"2xx": 2, "4xx": 4, "5xx": 1, "none": 1}


@pytest.mark.stack
def test_a_201_for_an_order_that_does_not_exist(db: Copy, tmp_path: Path) -> None:
    ghost = str(uuid.uuid4())
    lie = client_ledger.Entry(
        t=9.0, key="key-ghost", status=201, order_id=ghost, order_status="confirmed", total_cents=100
    )
    assert_only(db.failed(_ledger(tmp_path, [*_honest(db), lie])), "ledger_answers_match_orders", ghost, "key-ghost")


@pytest.mark.stack
def test_a_201_with_another_total(db: Copy, tmp_path: Path) -> None:
    order = db.orders["confirmed"]
    entries = [e for e in _honest(db) if e.key != order.key]
    entries.append(_said(order, t=9.0, total_cents=order.total_cents + 1))
    assert_only(db.failed(_ledger(tmp_path, entries)), "ledger_answers_match_orders", order.order_id, order.key)


@pytest.mark.stack
def test_one_key_answered_with_two_orders(db: Copy, tmp_path: Path) -> None:
    first, other = db.orders["confirmed"], db.orders["declined"]
    # The second answer is `other`, told truthfully, but under `first`'s key.
    crossed = _said(other, t=9.0, key=first.key)
    failed = db.failed(_ledger(tmp_path, [*_honest(db), crossed]))
    assert_only(failed, "ledger_one_order_per_key", first.key, first.order_id, other.order_id)


@pytest.mark.stack
def test_a_replay_with_a_different_answer(db: Copy, tmp_path: Path) -> None:
    """A repeat told something else than the first answer: the repeat check names the
    key; the answer is also untrue of the order, so the answers check names it too."""
    order = db.orders["confirmed"]
    changed = _said(order, t=9.0, status=402, order_status="payment_failed", replayed=True)
    failed = db.failed(_ledger(tmp_path, [*_honest(db), changed]))
    assert set(failed) == {"ledger_repeats_first_answer", "ledger_answers_match_orders"}, failed
    assert order.key in "\n".join(failed["ledger_repeats_first_answer"])
    assert "then 402" in "\n".join(failed["ledger_repeats_first_answer"])


@pytest.mark.stack
def test_the_verify_command_runs_the_ledger_checks(db: Copy, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from chaos.cli import app

    ghost = str(uuid.uuid4())
    lie = client_ledger.Entry(
        t=9.0, key="key-ghost", status=201, order_id=ghost, order_status="confirmed", total_cents=100
    )
    _ledger(tmp_path, [*_honest(db), lie])
    args = ["verify", "--database-url", db.url, "--grace", str(GRACE_S), "--json"]
    result = CliRunner().invoke(app, [*args, "--ledger", str(tmp_path / "ledger.jsonl")])
    assert result.exit_code == 1, result.output
    out = json.loads(result.output)
    failed = {c["name"]: c["examples"] for c in out["checks"] if not c["ok"]}
    assert set(failed) == {"ledger_answers_match_orders"} and ghost in failed["ledger_answers_match_orders"][0]
    assert out["ledger"]["answers"] == 9 and out["ledger"]["no_answer"] == 1
    plain = CliRunner().invoke(app, args)  # without --ledger: verify as before, no ledger checks
    assert plain.exit_code == 0, plain.output
    assert "ledger" not in json.loads(plain.output)
    assert not any(c["name"].startswith("ledger_") for c in json.loads(plain.output)["checks"])
