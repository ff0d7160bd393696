"""orders: the orders with their idempotency keys and leases, and the transactional outbox.

The schema as it stood when versions began to be kept (v0001_baseline.sql). Every
statement in it is idempotent, so it also adopts a database made before then."""

from pathlib import Path

from services.common.data.outbox import OUTBOX_SQL
from services.common.data.schema_versions import execute_sql

revision = "0001"
down_revision = None


def upgrade() -> None:
    for path in (Path(__file__).with_suffix(".sql"), OUTBOX_SQL):
        execute_sql(path.read_text())


def downgrade() -> None:
    execute_sql("DROP TABLE outbox_dead_letters, outbox_events, orders")
