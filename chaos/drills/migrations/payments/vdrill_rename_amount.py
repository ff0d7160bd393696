"""payments: rename `charges.amount_cents` to `amount_minor` (a release whose code was not changed with it).

The migration-failure drill deploys it (chaos/drills/catalog.py): payments' queries
still name `amount_cents`, and payments' code does not know this version, so it refuses
to start until `chaoslab db rollback payments --extra chaos/drills/migrations` undoes it."""

from services.common.data.schema_versions import execute_sql

revision = "drill_rename_amount"
down_revision = "0001"  # payments' latest: tests/unit/test_migrations.py holds it so


def upgrade() -> None:
    execute_sql("ALTER TABLE charges RENAME COLUMN amount_cents TO amount_minor")


def downgrade() -> None:
    execute_sql("ALTER TABLE charges RENAME COLUMN amount_minor TO amount_cents")
