"""Versioned migrations on a real PostgreSQL (the test stack's, a database of its own per
test): migrate, status, rollback and migrate again, a failing revision that leaves the
schema where it was, a real payments process that refuses a schema version it does not
know, and `chaoslab db` on the running stack."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from chaos.db import migrations
from chaos.layout import StackLayout
from services.common.data.db import REFUSED_EXIT_STATUS
from services.common.data.schema_versions import MigrationError, SchemaUnknown, connect
from tests.support.stack import scratch_database, wait_until

pytestmark = pytest.mark.stack

REPO = Path(__file__).parents[2]
DRILL = REPO / "chaos" / "drills" / "migrations"


async def _fetch(dsn: str, query: str) -> list:
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        return [tuple(r) for r in await conn.fetch(query)]
    finally:
        await conn.close()


def _columns(dsn: str, schema: str, table: str) -> set[str]:
    rows = asyncio.run(
        _fetch(
            dsn,
            f"SELECT column_name FROM information_schema.columns WHERE table_schema = '{schema}' "
            f"AND table_name = '{table}'",
        )
    )
    return {r[0] for r in rows}


@pytest.fixture()
def dsn(stack: StackLayout) -> Iterator[str]:
    """A fresh, empty database on the stack's PostgreSQL."""
    with scratch_database(stack, "migrations") as url:
        yield url


def test_migrate_brings_every_schema_to_its_latest_once(dsn):
    before = migrations.status(dsn, migrations.WITH_SCHEMA)
    assert [(s.current, bool(s.pending)) for s in before] == [(None, True)] * 4
    done = migrations.migrate(dsn, migrations.WITH_SCHEMA, progress=lambda _m: None)
    assert all(s.current == s.latest and not s.pending and s.known for s in done)
    assert {"orders", "outbox_events", "outbox_dead_letters", "alembic_version"} <= {
        r[0] for r in asyncio.run(_fetch(dsn, "SELECT tablename FROM pg_tables WHERE schemaname = 'orders'"))
    }
    again = migrations.migrate(dsn, migrations.WITH_SCHEMA, progress=lambda _m: None)
    assert [s.current for s in again] == [s.current for s in done]


def test_rollback_and_migrate_again(dsn):
    migrations.migrate(dsn, ["payments"], DRILL, progress=lambda _m: None)
    assert "amount_minor" in _columns(dsn, "payments", "charges")

    before, after = migrations.rollback(dsn, "payments", extra=DRILL)
    assert (before.current, after.current) == ("drill_rename_amount", "0001")
    assert "amount_cents" in _columns(dsn, "payments", "charges")
    _before, after = migrations.rollback(dsn, "payments", to="0001", extra=DRILL)  # the drill's undo: a no-op now
    assert after.current == "0001" and "amount_cents" in _columns(dsn, "payments", "charges")

    _before, after = migrations.rollback(dsn, "payments", to="base")
    assert after.current is None
    assert _columns(dsn, "payments", "charges") == set()
    with pytest.raises(MigrationError, match="nothing to roll back"):
        migrations.rollback(dsn, "payments")

    (status,) = migrations.migrate(dsn, ["payments"], progress=lambda _m: None)
    assert status.current == "0001"
    assert "amount_cents" in _columns(dsn, "payments", "charges")
    with pytest.raises(MigrationError, match="older than"):
        migrations.rollback(dsn, "payments", to="drill_rename_amount", extra=DRILL)


def test_a_schema_migrated_by_another_release_is_refused_until_rolled_back_with_it(dsn):
    migrations.migrate(dsn, ["payments"], DRILL, progress=lambda _m: None)
    (status,) = migrations.status(dsn, ["payments"])
    assert (status.current, status.known, status.pending) == ("drill_rename_amount", False, ())
    with pytest.raises(SchemaUnknown, match="drill_rename_amount"):
        migrations.migrate(dsn, ["payments"], progress=lambda _m: None)
    with pytest.raises(SchemaUnknown):
        migrations.rollback(dsn, "payments")  # its down migration is in the release that brought it


def test_a_failing_revision_leaves_the_schema_at_the_one_before(dsn, tmp_path):
    (tmp_path / "payments").mkdir()
    (tmp_path / "payments" / "vbroken.py").write_text(
        '"""Half a change: a table, then a statement that fails."""\n'
        "from services.common.data.schema_versions import execute_sql\n"
        'revision = "broken"\ndown_revision = "0001"\n'
        "def upgrade():\n"
        '    execute_sql("CREATE TABLE half_done (id int); ALTER TABLE charges DROP COLUMN no_such_column")\n'
        "def downgrade():\n"
        '    execute_sql("DROP TABLE half_done")\n'
    )
    with pytest.raises(MigrationError, match="no_such_column"):
        migrations.migrate(dsn, ["payments"], tmp_path, progress=lambda _m: None)
    (status,) = migrations.status(dsn, ["payments"], tmp_path)
    assert (status.current, [r.id for r in status.pending]) == ("0001", ["broken"])
    assert _columns(dsn, "payments", "half_done") == set()


def test_replicas_migrating_together_take_turns(dsn):
    """The migration lock: a second migrator waits on it while the first holds it."""
    with connect(dsn, "payments"):
        waiting = subprocess.Popen(
            [sys.executable, "-c", _MIGRATE_PAYMENTS, dsn], cwd=REPO, stdout=subprocess.PIPE, text=True
        )
        try:
            wait_until(
                lambda: asyncio.run(_fetch(dsn, _WAITING_ON_ADVISORY_LOCK)) == [(1,)],
                timeout_s=60,
                interval_s=0.5,
                message="the second migrator waits on the advisory lock",
            )
            assert waiting.poll() is None
        except BaseException:
            waiting.kill()
            raise
    out, _ = waiting.communicate(timeout=60)
    assert waiting.returncode == 0 and out.strip() == "0001"


_WAITING_ON_ADVISORY_LOCK = (
    "SELECT count(*)::int FROM pg_locks l JOIN pg_database d ON d.oid = l.database "
    "WHERE l.locktype = 'advisory' AND NOT l.granted AND d.datname = current_database()"
)
_MIGRATE_PAYMENTS = """
import sys
from chaos.db import migrations
(s,) = migrations.migrate(sys.argv[1], ["payments"], progress=lambda _m: None)
print(s.current)
"""


def test_payments_refuses_to_start_on_a_version_it_does_not_know(stack, dsn):
    migrations.migrate(dsn, ["payments"], DRILL, progress=lambda _m: None)
    env = {**os.environ, **stack.service_env("payments"), "DATABASE_URL": dsn, "PORT": "0"}
    proc = subprocess.run(
        [sys.executable, "-m", "services", "payments"],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    log = proc.stdout + proc.stderr
    assert proc.returncode == REFUSED_EXIT_STATUS, log
    assert "db.schema_refused" in log and "drill_rename_amount" in log
    assert "Traceback" not in log


def _chaoslab(stack: StackLayout, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "chaos.cli", "db", *args, "--run-dir", str(stack.run_dir)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_chaoslab_db_on_the_running_stack(stack):
    shown = _chaoslab(stack, "status", "--json")
    assert shown.returncode == 0, shown.stderr
    assert '"pending": []' in shown.stdout and '"known": false' not in shown.stdout
    for args, message in [
        (("rollback", "payments", "--to", "nope"), "payments has no version 'nope'"),
        (("rollback", "gateway"), "no schema named 'gateway'"),
    ]:
        refused = _chaoslab(stack, *args)
        assert refused.returncode == 1, refused
        assert message in " ".join(refused.stderr.split()) and "Traceback" not in refused.stderr
