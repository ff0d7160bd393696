"""The services' schema versions seen from outside: where each schema stands, applying
what is pending, stepping back (`chaoslab db status|migrate|rollback`).

Each service's revisions live in services/<svc>/migrations/; `extra` names a folder
with more of them, one sub-folder per service, as a release that brought them ships
them (chaos/drills/migrations/ holds the migration-failure drill's): a schema migrated
by another release can only be rolled back with that release's down migrations."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import services
from chaos.layout import SERVICES
from services.common.data.schema_versions import MigrationError, Migrations, Status, connect

# The services that own a schema (the gateway has none).
WITH_SCHEMA = tuple(s for s in SERVICES if (Path(services.__file__).parent / s / "migrations").is_dir())


def folders(service: str, extra: Path | None = None) -> list[Path]:
    """The folders holding `service`'s revisions: its own, then `extra`'s for it."""
    if service not in WITH_SCHEMA:
        raise MigrationError(f"no schema named {service!r}: choose from {', '.join(WITH_SCHEMA)}")
    found = [Path(services.__file__).parent / service / "migrations"]
    if extra is not None:
        if not extra.is_dir():
            raise MigrationError(f"--extra {extra}: no such folder")
        if (extra / service).is_dir():
            found.append(extra / service)
    return found


def status(dsn: str, schemas: Sequence[str], extra: Path | None = None) -> list[Status]:
    found = []
    for schema in schemas:
        migrations = Migrations(schema, folders(schema, extra))
        with connect(dsn, schema) as conn:
            found.append(migrations.status(conn))
    return found


def migrate(
    dsn: str, schemas: Sequence[str], extra: Path | None = None, progress: Callable[[str], None] = print
) -> list[Status]:
    """Apply every pending revision, schema after schema."""
    done = []
    for schema in schemas:
        migrations = Migrations(schema, folders(schema, extra))
        progress(f"{schema}: migrating to {migrations.latest}")
        with connect(dsn, schema) as conn:
            done.append(migrations.upgrade(conn))
    return done


def rollback(dsn: str, schema: str, to: str | None = None, extra: Path | None = None) -> tuple[Status, Status]:
    """Undo the schema's last revision, or every one after `to` ("base": all of them);
    answers the status before and after."""
    migrations = Migrations(schema, folders(schema, extra))
    if to is not None and to != "base" and not migrations.knows(to):
        raise MigrationError(f"{schema} has no version {to!r}: its versions are {_ids(migrations)}")
    with connect(dsn, schema) as conn:
        before = migrations.status(conn)
        if before.known and before.current is None:
            raise MigrationError(f"{schema} has no version applied: nothing to roll back")
        if (
            to is not None
            and before.known
            and _ids(migrations).index(to) > _ids(migrations).index(before.current or "base")
        ):
            raise MigrationError(
                f"{schema} is at {before.current}, older than {to}: `chaoslab db migrate` goes forward"
            )
        return before, migrations.downgrade(conn, "-1" if to is None else to)


def _ids(migrations: Migrations) -> list[str]:
    return ["base", *(r.id for r in migrations.revisions())]
