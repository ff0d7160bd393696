"""Bringing lost data back, against a real stack of their own: `chaoslab db restore` to
the latest moment loses no committed order and the services come back on their own; to
a moment in the past it has exactly the orders committed before it, across every
service's schema; `chaoslab replay` re-delivers the events notifications lost, once
each; bad input is refused with a message."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import subprocess
import sys
import time
from collections.abc import Iterator

import asyncpg
import httpx
import pytest

from chaos import ledger as client_ledger
from chaos.layout import StackLayout
from tests.support.api import place_order
from tests.support.stack import start_stack, stop_stack, wait_until

pytestmark = pytest.mark.stack


@pytest.fixture(scope="module")
def own_stack() -> Iterator[StackLayout]:
    """A restore stops PostgreSQL and rewinds it: not on the stack the other tests share."""
    layout = start_stack()
    try:
        yield layout
    finally:
        stop_stack(layout)


def chaoslab(layout: StackLayout, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "chaos.cli", *args, "--run-dir", str(layout.run_dir)],
        capture_output=True,
        text=True,
        timeout=300,
    )


def db(layout: StackLayout, *args: str) -> subprocess.CompletedProcess[str]:
    return chaoslab(layout, "db", *args)


def sql(layout: StackLayout, query: str, *args: object) -> list[asyncpg.Record]:
    async def run() -> list[asyncpg.Record]:
        conn = await asyncpg.connect(layout.database_url, timeout=5)
        try:
            return await conn.fetch(query, *args)
        finally:
            await conn.close()

    return asyncio.run(run())


def orders(layout: StackLayout, count: int) -> list[str]:
    """`count` orders placed and confirmed through the gateway; their ids. Right after a
    restore the services are reconnecting: each order is retried until it is taken."""
    ids = []
    with httpx.Client(timeout=30) as client:
        for _ in range(count):
            resp = wait_until(
                lambda: (r := place_order(client, layout.url("gateway"))).status_code == 201 and r,
                timeout_s=60,
                message="an order taken",
            )
            ids.append(resp.json()["order_id"])
    return ids


def stored(layout: StackLayout, ids: list[str]) -> set[str]:
    """Which of `ids` the database holds, with the charge payments took for each."""

    async def query() -> set[str]:
        conn = await asyncpg.connect(layout.database_url, timeout=5)
        try:
            rows = await conn.fetch(
                "SELECT o.order_id::text FROM orders.orders o JOIN payments.charges c ON c.order_id = o.order_id::text "
                "WHERE o.order_id::text = ANY($1::text[])",
                ids,
            )
            return {r[0] for r in rows}
        finally:
            await conn.close()

    return asyncio.run(query())


def verify_clean(layout: StackLayout) -> None:
    result = chaoslab(layout, "verify")
    assert result.returncode == 0, result.stdout + result.stderr


def announced(layout: StackLayout, ids: list[str]) -> dict[str, int]:
    """How many times each order's event is in notifications' inbox (redeliveries absorbed)."""
    rows = sql(
        layout, "SELECT order_id, count(*) FROM notifications.inbox WHERE order_id = ANY($1::text[]) GROUP BY 1", ids
    )
    return {r[0]: r[1] for r in rows}


def test_replay_delivers_the_lost_events_once(own_stack: StackLayout) -> None:
    ids = orders(own_stack, 4)
    wait_until(lambda: len(announced(own_stack, ids)) == 4, timeout_s=30, message="every event delivered")
    lost = ids[:2]
    sql(own_stack, "DELETE FROM notifications.inbox WHERE order_id = ANY($1::text[])", lost)

    listed = chaoslab(own_stack, "replay", "--since", "10m ago", "--grace", "0", "--dry-run", "--json")
    assert listed.returncode == 0, listed.stdout + listed.stderr
    assert sorted(item["order_id"] for item in json.loads(listed.stdout)) == sorted(lost)
    assert set(announced(own_stack, ids)) == set(ids[2:]), "a dry run sent something"

    replayed = chaoslab(own_stack, "replay", "--since", "10m ago", "--grace", "0")
    assert replayed.returncode == 0, replayed.stdout + replayed.stderr
    assert announced(own_stack, ids) == dict.fromkeys(ids, 1)
    again = chaoslab(own_stack, "replay", "--since", "10m ago", "--grace", "0")
    assert again.returncode == 0 and "nothing to replay" in again.stdout
    verify_clean(own_stack)


def test_restore_to_latest_then_to_a_moment_in_the_past(own_stack: StackLayout) -> None:
    before_backup = orders(own_stack, 3)
    taken = db(own_stack, "backup")
    assert taken.returncode == 0, taken.stderr
    listed = db(own_stack, "backups", "--json")
    assert listed.returncode == 0 and '"name"' in listed.stdout

    after_backup = orders(own_stack, 3)
    latest = db(own_stack, "restore", "--yes")
    assert latest.returncode == 0, latest.stdout + latest.stderr
    # Nothing committed is lost: the WAL the old cluster had not archived is replayed too.
    assert stored(own_stack, before_backup + after_backup) == set(before_backup + after_backup)
    after_restore = orders(own_stack, 2)
    verify_clean(own_stack)

    moment = dt.datetime.now(dt.UTC)
    wait_until(lambda: dt.datetime.now(dt.UTC) > moment + dt.timedelta(seconds=1), timeout_s=5)
    too_late = orders(own_stack, 3)
    past = db(own_stack, "restore", "--yes", "--to", moment.isoformat())
    assert past.returncode == 0, past.stdout + past.stderr
    kept = before_backup + after_backup + after_restore
    assert stored(own_stack, kept + too_late) == set(kept)
    orders(own_stack, 1)
    verify_clean(own_stack)


def test_a_destroyed_cluster_is_restored_and_reconcile_counts_what_it_lost(own_stack: StackLayout, tmp_path) -> None:
    """The db-restore drill's fault, by hand: what a lost cluster loses is at most what
    came after the backup, and `db reconcile` names exactly the answered orders the
    restored database lacks."""
    ledger = tmp_path / "ledger.jsonl"
    writer = client_ledger.Writer(ledger)
    answered: list[str] = []

    def answered_orders(count: int) -> list[str]:
        ids = orders(own_stack, count)
        for order_id in ids:  # as the load generator writes it: the answer a client got
            writer.record(
                client_ledger.Entry(
                    t=time.time(),
                    key=f"k-{order_id}",
                    status=201,
                    order_id=order_id,
                    order_status="confirmed",
                    total_cents=None,
                )
            )
        answered.extend(ids)
        return ids

    before = answered_orders(2)
    assert db(own_stack, "backup").returncode == 0
    after = answered_orders(3)
    destroyed = db(own_stack, "destroy", "--yes")
    assert destroyed.returncode == 0, destroyed.stdout + destroyed.stderr
    again = db(own_stack, "destroy", "--yes")
    assert again.returncode == 1 and "already gone" in again.stderr, again.stderr
    restored = db(own_stack, "restore", "--yes")
    assert restored.returncode == 0, restored.stdout + restored.stderr
    writer.close()

    kept = stored(own_stack, answered)
    assert set(before) <= kept, "an order in the base backup was lost"
    found = db(own_stack, "reconcile", "--ledger", str(ledger), "--json")
    assert found.returncode == 0, found.stdout + found.stderr
    report = json.loads(found.stdout)
    assert sorted(item["order_id"] for item in report["lost"]) == sorted(set(after) - kept)
    assert report["rpo_orders"] == len(set(after) - kept) and report["answered"] == len(answered)
    orders(own_stack, 1)  # the stack takes orders again
    verify_clean(own_stack)


def test_bad_targets_are_refused_with_a_message(own_stack: StackLayout) -> None:
    future = db(own_stack, "restore", "--yes", "--to", "2999-01-01T00:00:00Z")
    assert future.returncode == 2 and "in the future" in future.stderr
    garbage = db(own_stack, "restore", "--yes", "--to", "yesterday-ish")
    assert garbage.returncode == 2 and "is not a time" in garbage.stderr
    ancient = db(own_stack, "restore", "--yes", "--to", "2001-01-01T00:00:00Z")
    assert ancient.returncode == 1 and "no backup ended before" in ancient.stderr
    bad_since = chaoslab(own_stack, "replay", "--since", "last tuesday")
    assert bad_since.returncode == 2 and "is not a time" in bad_since.stderr
    no_ledger = db(own_stack, "reconcile", "--ledger", "/nonexistent/ledger-*.jsonl")
    assert no_ledger.returncode == 2 and "no ledger file matches" in no_ledger.stderr
    for result in (future, garbage, ancient, bad_since, no_ledger):
        assert "Traceback" not in result.stdout + result.stderr
