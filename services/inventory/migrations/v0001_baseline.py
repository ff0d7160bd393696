"""inventory: the catalogue's stock, the reservations and the stock rules' functions.

The schema as it stood when versions began to be kept (v0001_baseline.sql). Every
statement in it is idempotent, so it also adopts a database made before then."""

from pathlib import Path

from services.common.data.schema_versions import execute_sql

revision = "0001"
down_revision = None


def upgrade() -> None:
    execute_sql(Path(__file__).with_suffix(".sql").read_text())


def downgrade() -> None:
    execute_sql("DROP FUNCTION stock_reserve, stock_settle; DROP TABLE reservations, products")
