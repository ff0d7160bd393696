"""PostgreSQL access through asyncpg: one pool per service, one schema per service.

At start a service brings its schema to its latest migration (schema_versions.py), or
refuses to start when the schema is at a version it does not know, or a migration fails:
it logs `db.schema_refused` with the reason and exits with status 3, as uvicorn does when
an application's start-up fails.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import NoReturn, TypeAlias

import asyncpg
import orjson
from asyncpg.pool import PoolConnectionProxy
from prometheus_client import Gauge

from services.common.data.schema_versions import MigrationError, SchemaUnknown, migrate_at_start
from services.common.web.errors import DATABASE, DependencyUnavailable
from services.common.web.logging import get_logger
from services.common.web.metrics import db_pool_in_use, db_pool_size, db_pool_timeouts_total, db_pool_waiting, db_up

_logger = get_logger("db")

# What queries run on: a pooled connection (the pool hands out a proxy that forwards
# every method of Connection) or a plain one.
Connection: TypeAlias = asyncpg.Connection | PoolConnectionProxy

# What a database that is down, restarting or out of connections raises: answered as
# 503 and retried by background loops. (A shutdown kills queries in flight with
# AdminShutdownError, an OperatorInterventionError; a broken connection can surface as
# InternalClientError.)
DB_ERRORS = (
    OSError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.TooManyConnectionsError,
)


async def _init_connection(conn: asyncpg.Connection) -> None:
    for kind in ("json", "jsonb"):
        await conn.set_type_codec(
            kind, encoder=lambda v: orjson.dumps(v).decode(), decoder=orjson.loads, schema="pg_catalog"
        )


async def _keep_session(_conn: asyncpg.Connection) -> None:
    """What the pool does to a connection given back, after asyncpg has rolled back any
    transaction left open: nothing more. asyncpg's default sends one more query on every
    release (advisory unlock all, CLOSE ALL, UNLISTEN *, RESET ALL): a round trip, about
    as much work on both sides as the statement it follows, to undo session state that
    no code here leaves. Locks are taken per transaction (`pg_advisory_xact_lock`; the
    migrations' lock is held on a connection of their own); nothing sets, listens or keeps
    a cursor open outside a transaction."""


async def create_pool(dsn: str, schema: str, min_size: int, max_size: int, timeout_s: float) -> asyncpg.Pool:
    """A pool whose connections see `schema` first; raises DependencyUnavailable."""
    try:
        return await asyncpg.create_pool(
            dsn,
            min_size=min_size,
            max_size=max_size,
            init=_init_connection,
            reset=_keep_session,
            server_settings={"search_path": schema, "application_name": schema},
            timeout=timeout_s,
            command_timeout=timeout_s * 2,
        )
    except DB_ERRORS as exc:
        raise DependencyUnavailable(f"database unreachable: {exc}", dependency=DATABASE, retry_after_s=1) from exc


def migration_dirs(package_dir: Path) -> list[Path]:
    """A service's own migrations: the Alembic revisions in its package's migrations/."""
    return [package_dir / "migrations"]


# uvicorn's exit status for a failed application start-up.
REFUSED_EXIT_STATUS = 3


class Database:
    """A service's pool that survives a database that is down at start-up.

    Until PostgreSQL answers, `pool` raises DependencyUnavailable (a fast 503) while a
    background task keeps trying; once connected, the migrations run exactly once.
    `migrations` are the folders of the schema's revisions.
    """

    def __init__(
        self,
        dsn: str,
        schema: str,
        migrations: Sequence[Path],
        *,
        min_size: int,
        max_size: int,
        timeout_s: float,
        on_ready: Callable[[Connection], Awaitable[None]] | None = None,
        acquire_timeout_s: float,
    ) -> None:
        self.dsn, self.schema, self.migrations, self.on_ready = dsn, schema, migrations, on_ready
        self.acquire_timeout_s = acquire_timeout_s
        self._holding: asyncio.Task | None = None
        self._hold_target = 0
        self.min_size, self.max_size, self.timeout_s = min_size, max_size, timeout_s
        self._pool: asyncpg.Pool | None = None
        self._connecting: asyncio.Task | None = None
        self._waiting: Gauge | None = None  # db_pool_waiting{schema}, from the first acquire on

    @classmethod
    def for_service(cls, settings, package_dir: Path, *, on_ready=None) -> Database:
        """The service's own schema (named after it) with its package's migrations."""
        return cls(
            settings.database_url,
            settings.service,
            migration_dirs(package_dir),
            min_size=settings.db_pool_min,
            max_size=settings.db_pool_max,
            timeout_s=settings.downstream_timeout_s,
            on_ready=on_ready,
            acquire_timeout_s=settings.db_acquire_timeout_s,
        )

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[PoolConnectionProxy]:
        """A pooled connection, or a fast 503 when none frees up within the acquire
        timeout: a saturated pool makes requests fail, never wait for ever."""
        pool = self.pool
        if self._waiting is None:  # looked up once: `.labels()` validates and locks on every call
            self._waiting = db_pool_waiting.labels(self.schema)
        if pool.get_idle_size():
            # A free connection is handed over at once: there is no wait to count, and
            # asyncpg's timeout would cost a task and a timer for a wait that cannot happen.
            conn = await pool.acquire()
        else:
            conn = await self._wait_for_connection(pool, self._waiting)
        try:
            yield conn
        finally:
            await pool.release(conn)

    async def _wait_for_connection(self, pool: asyncpg.Pool, waiting: Gauge) -> PoolConnectionProxy:
        """Wait in `db_pool_waiting` for a connection to free up, at most the acquire timeout."""
        waiting.inc()
        try:
            return await pool.acquire(timeout=self.acquire_timeout_s)
        except TimeoutError as exc:
            db_pool_timeouts_total.labels(self.schema).inc()
            raise DependencyUnavailable(
                f"no database connection free within {self.acquire_timeout_s}s "
                f"(pool of {pool.get_max_size()} exhausted)",
                dependency=DATABASE,
                retry_after_s=1,
            ) from exc
        finally:
            waiting.dec()

    def hold(self, count: int | None) -> None:
        """The db_pool_hold fault: take `count` connections and keep them (0 gives back)."""
        self._hold_target = count or 0
        if self._holding is None or self._holding.done():
            self._holding = asyncio.create_task(self._hold())

    async def _hold(self) -> None:
        """Follow `_hold_target` up and down until it is 0 and everything is given back."""
        held: list[PoolConnectionProxy] = []
        try:
            while self._hold_target or held:
                while len(held) > self._hold_target:
                    await self.pool.release(held.pop())
                if len(held) < self._hold_target and self.ready:
                    try:
                        held.append(await self.pool.acquire(timeout=1.0))
                        continue
                    except (TimeoutError, *DB_ERRORS):
                        pass
                await asyncio.sleep(0.2)
        finally:
            for conn in held:
                await self.pool.release(conn)

    def measure(self) -> None:
        if self._pool is not None:
            db_pool_size.labels(self.schema).set(self._pool.get_size())
            db_pool_in_use.labels(self.schema).set(self._pool.get_size() - self._pool.get_idle_size())
            db_pool_timeouts_total.labels(self.schema)  # exported at 0 before the first timeout

    async def start(self, wait_s: float = 5.0) -> None:
        self._connecting = asyncio.create_task(self._connect_forever())
        try:
            await asyncio.wait_for(asyncio.shield(self._connecting), wait_s)
        except TimeoutError:
            _logger.warning("db.not_ready", schema=self.schema, waited_s=wait_s)

    async def _connect_forever(self) -> None:
        while True:
            try:
                await asyncio.to_thread(
                    migrate_at_start, self.dsn, self.schema, self.migrations, timeout_s=self.timeout_s
                )
                pool = await create_pool(self.dsn, self.schema, self.min_size, self.max_size, self.timeout_s)
                if self.on_ready:
                    async with pool.acquire() as conn:
                        await self.on_ready(conn)
            except (DependencyUnavailable, *DB_ERRORS) as exc:
                _logger.warning("db.connect_failed", schema=self.schema, error=str(exc))
                await asyncio.sleep(1.0)
                continue
            except (SchemaUnknown, MigrationError) as exc:
                self._refuse(exc)
            self._pool = pool
            _logger.info("db.connected", schema=self.schema)
            return

    def _refuse(self, exc: Exception) -> NoReturn:
        """Refuse to serve a schema this release cannot: say why in one log line and exit,
        whether the database answered during start-up or later (it was down then), so the
        supervisor sees a failed start either way (and the log holds no traceback)."""
        _logger.error("db.schema_refused", schema=self.schema, reason=str(exc))
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(REFUSED_EXIT_STATUS)

    @property
    def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise DependencyUnavailable("the database is not reachable yet", dependency=DATABASE, retry_after_s=1)
        return self._pool

    @property
    def ready(self) -> bool:
        return self._pool is not None

    async def watch(self, interval_s: float) -> None:
        """Keep `db_up` current for the scrapes, which must not wait on the database."""
        while True:
            try:
                await self.ping()
            except Exception as exc:  # noqa: BLE001 - a check that fails says "down", never dies
                db_up.labels(self.schema).set(0)
                _logger.warning("db.check_failed", error=repr(exc))
            await asyncio.sleep(interval_s)

    async def ping(self) -> bool:
        self.measure()
        if self._pool is None:
            db_up.labels(self.schema).set(0)
            return False
        try:
            async with asyncio.timeout(1.0):
                await self._pool.fetchval("SELECT 1")
        except (TimeoutError, *DB_ERRORS):
            db_up.labels(self.schema).set(0)
            return False
        db_up.labels(self.schema).set(1)
        return True

    async def close(self) -> None:
        if self._connecting and not self._connecting.done():
            self._connecting.cancel()
        if self._pool is not None:
            try:
                async with asyncio.timeout(5.0):
                    await self._pool.close()
            except TimeoutError:
                self._pool.terminate()
