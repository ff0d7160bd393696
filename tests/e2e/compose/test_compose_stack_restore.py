"""`chaoslab db backup|restore --target compose`: docker-compose.yml's PostgreSQL archives
its WAL to a volume, a base backup goes to another, and a restore to the latest moment
brings back every order committed, after which the stack is healthy and takes orders."""

from __future__ import annotations

import asyncio

import asyncpg
import httpx
import pytest

from chaos.compose import ComposeStack
from tests.e2e.compose.conftest import Engine
from tests.support.api import place_order
from tests.support.stack import wait_until

# Named to run after test_compose_stack.py, on the stack it leaves; run alone, the first
# test also carries the stack's build and start (minutes on a busy machine).
pytestmark = pytest.mark.timeout(600)


def orders(stack: ComposeStack, count: int) -> list[str]:
    """`count` orders confirmed through the gateway (each retried while the services
    reconnect after a restore); their ids."""
    ids = []
    with httpx.Client(timeout=30) as client:
        for _ in range(count):
            resp = wait_until(
                lambda: (r := place_order(client, stack.url("gateway"))).status_code == 201 and r,
                timeout_s=90,
                message="an order taken",
            )
            ids.append(resp.json()["order_id"])
    return ids


def held(stack: ComposeStack, ids: list[str]) -> set[str]:
    async def query() -> set[str]:
        conn = await asyncpg.connect(stack.database_url, timeout=5)
        try:
            rows = await conn.fetch("SELECT order_id::text FROM orders.orders WHERE order_id::text = ANY($1)", ids)
            return {r[0] for r in rows}
        finally:
            await conn.close()

    return asyncio.run(query())


def test_backup_then_restore_to_the_latest_moment(engine: Engine, stack: ComposeStack):
    stack.wait_healthy(timeout_s=90)
    before = orders(stack, 3)
    taken = engine.chaoslab("db", "backup", timeout_s=300)
    assert taken.returncode == 0, taken.stdout + taken.stderr
    listed = engine.chaoslab("db", "backups", "--json")
    assert listed.returncode == 0 and '"name"' in listed.stdout, listed.stdout + listed.stderr

    after = orders(stack, 3)
    restored = engine.chaoslab("db", "restore", "--yes", timeout_s=300)
    assert restored.returncode == 0, restored.stdout + restored.stderr
    # The WAL since the backup is replayed, the part the archive lacked from the old cluster.
    assert held(stack, before + after) == set(before + after)
    stack.wait_healthy(timeout_s=90)
    orders(stack, 1)
    wait_until(
        lambda: engine.chaoslab("verify", "--grace", "0").returncode == 0,
        timeout_s=60,
        interval_s=2,
        message="chaoslab verify clean after the restore",
    )


def test_a_restore_before_any_backup_is_refused(engine: Engine):
    refused = engine.chaoslab("db", "restore", "--yes", "--to", "2001-01-01T00:00:00Z")
    assert refused.returncode == 1 and "no backup ended before" in refused.stderr, refused.stderr
    assert "Traceback" not in refused.stdout + refused.stderr
