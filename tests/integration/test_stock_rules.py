"""Inventory's stock rules (services/inventory/stock.py, run by the database's functions in
migrations/v0001_baseline.sql), called directly on a database of their own on the
test stack's PostgreSQL: every answer, every refusal, and what each leaves in stock."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import services.inventory
from chaos.layout import StackLayout
from services.common.data.db import Connection, Database, migration_dirs
from services.common.web.errors import BadInput, ChaoslabError, Conflict, NotFound
from services.inventory import catalogue, stock
from tests.support.stack import scratch_database

pytestmark = pytest.mark.stack

SEED = 100  # units of every SKU but SKU-LIMITED (5)


@pytest.fixture()
def inventory(stack: StackLayout) -> Iterator[Callable[[Callable[[Database], Awaitable[Any]]], Any]]:
    """Runs `scenario(db)` against a fresh, seeded inventory schema."""

    def run(scenario: Callable[[Database], Awaitable[Any]]) -> Any:
        async def go() -> Any:
            db = Database(
                url,
                "inventory",
                migration_dirs(Path(services.inventory.__file__).parent),
                min_size=1,
                max_size=20,
                timeout_s=5,
                acquire_timeout_s=10,
                on_ready=lambda conn: catalogue.seed(conn, SEED),
            )
            await db.start(wait_s=30)
            assert db.ready
            try:
                return await scenario(db)
            finally:
                await db.close()

        return asyncio.run(go())

    with scratch_database(stack, "stock") as url:
        yield run


async def _stock(conn: Connection, sku: str) -> tuple[int, int, int]:
    row = await conn.fetchrow("SELECT available, reserved, committed FROM products WHERE sku = $1", sku)
    assert row is not None
    return row["available"], row["reserved"], row["committed"]


def _items(*wanted: tuple[str, int]) -> list[dict[str, Any]]:
    return [{"sku": sku, "quantity": qty} for sku, qty in wanted]


def test_reserve_prices_every_line_and_a_repeat_answers_the_same(inventory):
    async def scenario(db: Database) -> None:
        async with db.connection() as conn:
            items = _items(("SKU-003", 1), ("SKU-002", 2), ("SKU-003", 4))  # SKU-003 twice
            first = await stock.reserve(conn, "o-1", items)
            again = await stock.reserve(conn, "o-1", _items(("SKU-001", 1)))
            assert first == again
            assert first.status == "reserved"
            assert first.items == [
                {"sku": "SKU-003", "quantity": 1, "unit_price_cents": 899},
                {"sku": "SKU-002", "quantity": 2, "unit_price_cents": 499},
                {"sku": "SKU-003", "quantity": 4, "unit_price_cents": 899},
            ]
            assert first.total_cents == 5 * 899 + 2 * 499
            assert await _stock(conn, "SKU-003") == (SEED - 5, 5, 0)
            assert await _stock(conn, "SKU-002") == (SEED - 2, 2, 0)
            assert await _stock(conn, "SKU-001") == (SEED, 0, 0)

    inventory(scenario)


def test_unknown_skus_are_refused_by_name_and_nothing_is_taken(inventory):
    async def scenario(db: Database) -> None:
        async with db.connection() as conn:
            items = _items(("SKU-zzz", 1), ("SKU-001", 1), ("SKU-AAA", 1))
            with pytest.raises(BadInput) as refused:
                await stock.reserve(conn, "o-1", items)
            assert refused.value.code == "unknown_sku"
            assert refused.value.message == "unknown SKU: SKU-AAA, SKU-zzz"
            assert await _stock(conn, "SKU-001") == (SEED, 0, 0)
            with pytest.raises(NotFound):
                await stock.get_reservation(conn, "o-1")

    inventory(scenario)


def test_short_stock_rejects_the_whole_order(inventory):
    async def scenario(db: Database) -> None:
        async with db.connection() as conn:
            rejected = await stock.reserve(conn, "o-1", _items(("SKU-001", 1), ("SKU-LIMITED", 6)))
            assert (rejected.status, rejected.total_cents) == ("rejected", 1999 + 6 * 4999)
            assert await _stock(conn, "SKU-001") == (SEED, 0, 0)
            assert await _stock(conn, "SKU-LIMITED") == (5, 0, 0)
            with pytest.raises(Conflict) as refused:
                await stock.commit(conn, "o-1")
            assert refused.value.code == "reservation_not_active"
            assert (await stock.release(conn, "o-1")).status == "rejected"  # nothing to give back

    inventory(scenario)


def test_commit_sells_the_stock_once_and_a_paid_order_cannot_be_released(inventory):
    async def scenario(db: Database) -> None:
        async with db.connection() as conn:
            await stock.reserve(conn, "o-1", _items(("SKU-001", 2)))
            assert (await stock.commit(conn, "o-1")).status == "committed"
            assert (await stock.commit(conn, "o-1")).status == "committed"
            assert await _stock(conn, "SKU-001") == (SEED - 2, 0, 2)
            with pytest.raises(Conflict) as refused:
                await stock.release(conn, "o-1")
            assert refused.value.code == "reservation_committed"
            with pytest.raises(NotFound):
                await stock.commit(conn, "o-unknown")

    inventory(scenario)


def test_release_gives_the_stock_back_and_a_release_first_leaves_a_tombstone(inventory):
    async def scenario(db: Database) -> None:
        async with db.connection() as conn:
            await stock.reserve(conn, "o-1", _items(("SKU-001", 3)))
            released = await stock.release(conn, "o-1")
            assert (released.status, released.total_cents) == ("released", 3 * 1999)
            assert (await stock.release(conn, "o-1")).status == "released"
            assert await _stock(conn, "SKU-001") == (SEED, 0, 0)
            # A release before any reserve: the late reserve finds the tombstone, takes nothing.
            assert await stock.release(conn, "o-2") == stock.Reservation("o-2", "released", [], 0)
            assert (await stock.reserve(conn, "o-2", _items(("SKU-001", 1)))).status == "released"
            assert await _stock(conn, "SKU-001") == (SEED, 0, 0)

    inventory(scenario)


def test_concurrent_operations_neither_oversell_nor_deadlock(inventory):
    async def scenario(db: Database) -> None:
        async def call(op: Callable[..., Awaitable[stock.Reservation]], *args: Any) -> str:
            async with db.connection() as conn:
                try:
                    return (await op(conn, *args)).status
                except ChaoslabError as exc:
                    return exc.code

        # One order asked for many times at once: one reservation.
        same = await asyncio.gather(*(call(stock.reserve, "o-same", _items(("SKU-005", 1))) for _ in range(12)))
        assert same == ["reserved"] * 12
        # Two SKUs locked by many orders, listed in both orders: all served, none deadlocked.
        pairs = [_items(("SKU-006", 1), ("SKU-007", 1)), _items(("SKU-007", 1), ("SKU-006", 1))]
        assert (
            await asyncio.gather(*(call(stock.reserve, f"o-{i}", pairs[i % 2]) for i in range(16))) == ["reserved"] * 16
        )
        settled = await asyncio.gather(
            *(call(stock.commit if i % 2 else stock.release, f"o-{i}") for i in range(16)),
            *(call(stock.reserve, f"o-limited-{i}", _items(("SKU-LIMITED", 1))) for i in range(8)),
        )
        assert settled[:16] == ["released", "committed"] * 8
        assert sorted(settled[16:]) == ["rejected"] * 3 + ["reserved"] * 5
        async with db.connection() as conn:
            assert await _stock(conn, "SKU-005") == (SEED - 1, 1, 0)
            assert await _stock(conn, "SKU-006") == (SEED - 8, 0, 8)
            assert await _stock(conn, "SKU-LIMITED") == (0, 5, 0)

    inventory(scenario)


def test_the_lock_contention_fault_holds_the_rows_for_its_time(inventory):
    async def scenario(db: Database) -> None:
        async with db.connection() as slow, db.connection() as fast:
            loop = asyncio.get_running_loop()
            started = loop.time()
            holding = asyncio.create_task(stock.reserve(slow, "o-1", _items(("SKU-004", 1)), hold_locks_s=0.5))
            await asyncio.sleep(0.1)
            await stock.reserve(fast, "o-2", _items(("SKU-004", 1)))  # waits for o-1's row lock
            assert loop.time() - started >= 0.45
            await holding
            assert await _stock(fast, "SKU-004") == (SEED - 2, 2, 0)

    inventory(scenario)
