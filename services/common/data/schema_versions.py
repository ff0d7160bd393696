"""Versioned migrations: each service's schema has its own chain of Alembic revisions
(services/<svc>/migrations/v*.py, plain SQL up and down) and its own version table,
`<schema>.alembic_version`.

A service upgrades its schema to its latest revision at start, under an advisory lock so
that replicas starting together take turns. It refuses to start (`SchemaUnknown`) when the
schema is at a revision its migrations do not know: a newer release, or a deploy that went
wrong, applied it. Each revision runs in a transaction of its own, so one that fails
leaves the schema at the revision before it, never half-applied.

Synchronous (Alembic over psycopg): services call it in a thread, `chaoslab db` directly.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
import sqlalchemy
from alembic import op
from alembic.config import Config
from alembic.runtime.environment import EnvironmentContext
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy.engine import Connection
from sqlalchemy.pool import NullPool

from services.common.web.errors import DATABASE, DependencyUnavailable

VERSION_TABLE = "alembic_version"


class SchemaUnknown(Exception):
    """The schema is at a revision the migrations at hand do not know."""

    def __init__(self, schema: str, current: str, latest: str | None) -> None:
        self.schema, self.current, self.latest = schema, current, latest
        super().__init__(
            f"schema {schema!r} is at version {current}, which this release does not know "
            f"(its latest is {latest or 'none'}): a newer release or a failed deploy migrated it. "
            f"Roll it back with the migrations of the release that applied it "
            f"(`chaoslab db rollback {schema} --extra DIR`), or deploy that release."
        )


class MigrationError(Exception):
    """A revision failed, or the version asked for does not exist; the schema is left at
    the last revision that completed."""


def execute_sql(sql: str) -> None:
    """Run a revision's SQL as written (several statements, dollar-quoted bodies, `%`),
    inside the revision's transaction: for the revision files' upgrade() and downgrade()."""
    op.get_bind().connection.driver_connection.execute(sql)  # type: ignore[union-attr]


@dataclass(frozen=True)
class Revision:
    id: str
    doc: str


@dataclass(frozen=True)
class Status:
    """Where a schema stands against the migrations at hand."""

    schema: str
    current: str | None  # None: never migrated
    latest: str | None
    pending: tuple[Revision, ...]  # known revisions not applied yet, oldest first
    known: bool  # False: `current` is a revision the migrations do not know

    def as_dict(self) -> dict:
        return {
            "schema": self.schema,
            "current": self.current,
            "latest": self.latest,
            "pending": [r.id for r in self.pending],
            "known": self.known,
        }


class Migrations:
    """The revisions of one schema, read from one or more folders (the service's own,
    and those of a release being rolled back)."""

    def __init__(self, schema: str, folders: Sequence[Path]) -> None:
        missing = [str(f) for f in folders if not f.is_dir()]
        if missing or not folders:
            raise MigrationError(f"no migrations folder for {schema}: {', '.join(missing) or 'none given'}")
        self.schema = schema
        self.script = ScriptDirectory(str(folders[0]), version_locations=[str(f) for f in folders])

    @property
    def latest(self) -> str | None:
        return self.script.get_current_head()

    def revisions(self) -> list[Revision]:
        """Every revision, oldest first."""
        found = [Revision(r.revision, (r.doc or "").strip()) for r in self.script.walk_revisions()]
        return found[::-1]

    def knows(self, revision: str | None) -> bool:
        return revision is None or any(r.id == revision for r in self.revisions())

    def status(self, conn: Connection) -> Status:
        current = current_version(conn, self.schema)
        ids = [r.id for r in self.revisions()]
        known = current is None or current in ids
        pending = self.revisions()[ids.index(current) + 1 :] if current in ids else self.revisions()
        return Status(self.schema, current, self.latest, tuple(pending) if known else (), known)

    def upgrade(self, conn: Connection) -> Status:
        """Apply the pending revisions; SchemaUnknown when the schema is at one we do not know."""
        conn.exec_driver_sql(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"')
        conn.commit()
        before = self.status(conn)
        if not before.known:
            raise SchemaUnknown(self.schema, before.current or "", self.latest)
        # The plan as Alembic's own upgrade and downgrade commands make it.
        self._run(conn, lambda rev, _ctx: self.script._upgrade_revs("head", rev))  # noqa: SLF001
        return self.status(conn)

    def downgrade(self, conn: Connection, to: str) -> Status:
        """Undo revisions until the schema is at `to` (a revision, or "base": nothing)."""
        before = self.status(conn)
        if not before.known:
            raise SchemaUnknown(self.schema, before.current or "", self.latest)
        self._run(conn, lambda rev, _ctx: self.script._downgrade_revs(to, rev))  # noqa: SLF001
        return self.status(conn)

    def _run(self, conn: Connection, plan) -> None:
        env = EnvironmentContext(Config(), self.script, fn=plan)
        env.configure(
            connection=conn,
            version_table_schema=self.schema,
            transaction_per_migration=True,
        )
        try:
            with _search_path(conn, self.schema):
                env.run_migrations()
        except CommandError as exc:
            raise MigrationError(str(exc)) from exc
        except (psycopg.OperationalError, sqlalchemy.exc.OperationalError):
            raise  # the database went away, not the migration's fault: `connect` says so
        except (psycopg.Error, sqlalchemy.exc.DBAPIError) as exc:
            raise MigrationError(
                f"a migration of {self.schema} failed; the schema stays at the version before it: {exc}"
            ) from exc


@contextmanager
def _search_path(conn: Connection, schema: str) -> Iterator[None]:
    """The revisions' SQL names tables without their schema, like the services' queries."""
    conn.exec_driver_sql(f'SET search_path TO "{schema}"')
    conn.commit()
    try:
        yield
    finally:
        conn.rollback()
        conn.exec_driver_sql("RESET search_path")
        conn.commit()


def current_version(conn: Connection, schema: str) -> str | None:
    context = MigrationContext.configure(conn, opts={"version_table_schema": schema})
    version = context.get_current_revision()
    conn.commit()
    return version


def sqlalchemy_url(dsn: str) -> str:
    """asyncpg's DSN (postgresql://...) as SQLAlchemy's, on the psycopg driver."""
    scheme, sep, rest = dsn.partition("://")
    if not sep or scheme not in ("postgres", "postgresql"):
        raise ValueError(f"not a PostgreSQL URL: {dsn!r}")
    return f"postgresql+psycopg://{rest}"


@contextmanager
def connect(dsn: str, schema: str, *, timeout_s: float = 10) -> Iterator[Connection]:
    """A connection holding the schema's migration lock (the lock services take at start);
    DependencyUnavailable when the database cannot be reached or goes away."""
    engine = sqlalchemy.create_engine(
        sqlalchemy_url(dsn), poolclass=NullPool, connect_args={"connect_timeout": max(1, int(timeout_s))}
    )
    try:
        with engine.connect() as conn:  # closing it gives the session's lock back
            lock_id = zlib.crc32(f"chaoslab-migrate:{schema}".encode())
            conn.exec_driver_sql("SELECT pg_advisory_lock(%s)", (lock_id,))
            conn.commit()
            yield conn
    except (psycopg.OperationalError, sqlalchemy.exc.OperationalError) as exc:
        raise DependencyUnavailable(f"database unreachable: {exc}", dependency=DATABASE, retry_after_s=1) from exc
    finally:
        engine.dispose()


def migrate_at_start(dsn: str, schema: str, folders: Sequence[Path], *, timeout_s: float) -> Status:
    """What a service does at start: bring its schema to its latest revision, or refuse."""
    with connect(dsn, schema, timeout_s=timeout_s) as conn:
        return Migrations(schema, folders).upgrade(conn)
