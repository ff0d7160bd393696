"""The services' revision chains as shipped, read without a database: one straight line
per schema with a down for every step, the drill's migration on top of payments' latest,
and the plain logic around them (URLs, folders, messages)."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest

from chaos.db import migrations
from chaos.drills.catalog import PAYMENTS_LATEST
from services.common.data.schema_versions import MigrationError, Migrations, SchemaUnknown, sqlalchemy_url

DRILL_MIGRATIONS = Path(__file__).parents[2] / "chaos" / "drills" / "migrations"


@pytest.mark.parametrize("schema", migrations.WITH_SCHEMA)
def test_each_schema_has_one_straight_chain_with_downs(schema):
    script = Migrations(schema, migrations.folders(schema)).script
    revisions = list(script.walk_revisions())
    assert len(script.get_heads()) == 1, f"{schema} has branches: {script.get_heads()}"
    assert revisions[-1].down_revision is None, "the oldest revision starts from an empty schema"
    for newer, older in itertools.pairwise(revisions):
        assert newer.down_revision == older.revision
    for rev in revisions:
        assert callable(getattr(rev.module, "downgrade", None)), f"{schema} {rev.revision} has no down"
        assert (rev.doc or "").strip(), f"{schema} {rev.revision} does not say what it does"


def test_the_gateway_owns_no_schema():
    assert migrations.WITH_SCHEMA == ("orders", "payments", "inventory", "notifications")


def test_the_drills_migration_sits_on_payments_latest():
    """A new payments migration must move the drill's down_revision with it, or the drill
    would fork payments' chain instead of extending it."""
    own = Migrations("payments", migrations.folders("payments"))
    with_drill = Migrations("payments", migrations.folders("payments", DRILL_MIGRATIONS))
    assert with_drill.script.get_heads() == ["drill_rename_amount"]
    assert with_drill.script.get_revision("drill_rename_amount").down_revision == own.latest
    assert own.latest == PAYMENTS_LATEST, "the drill's rollback (catalog.py) goes back to payments' latest"


def test_extra_folders_only_add_the_services_own_subfolder():
    assert migrations.folders("orders", DRILL_MIGRATIONS) == migrations.folders("orders")
    assert migrations.folders("payments", DRILL_MIGRATIONS)[-1] == DRILL_MIGRATIONS / "payments"


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: migrations.folders("gateway"), "no schema named 'gateway'"),
        (lambda: migrations.folders("payments", Path("/no/such/dir")), "no such folder"),
        (lambda: Migrations("payments", []), "no migrations folder"),
    ],
)
def test_bad_input_is_named(call, message):
    with pytest.raises(MigrationError, match=message):
        call()


def test_sqlalchemy_url_keeps_everything_but_the_driver():
    assert sqlalchemy_url("postgresql://u:p@127.0.0.1:5432/db?sslmode=disable") == (
        "postgresql+psycopg://u:p@127.0.0.1:5432/db?sslmode=disable"
    )
    assert sqlalchemy_url("postgres://u@h/db") == "postgresql+psycopg://u@h/db"
    with pytest.raises(ValueError, match="not a PostgreSQL URL"):
        sqlalchemy_url("redis://127.0.0.1:6379")


def test_an_unknown_version_says_what_to_do():
    message = str(SchemaUnknown("payments", "drill_rename_amount", "0001"))
    for part in ("payments", "drill_rename_amount", "0001", "chaoslab db rollback payments --extra"):
        assert part in message
