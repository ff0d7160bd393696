"""Point-in-time restore of the native stack's PostgreSQL: stop it, put a base backup in
place of the cluster, and let PostgreSQL replay the archived WAL up to the target time
(or to the end of the archive), then promote it and start serving again.

The cluster it replaces is kept as `pgdata.replaced` (one, the last), and the WAL
segments it had not archived yet are replayed too (PostgreSQL's documented procedure):
what a restore to the latest moment loses is only what never left the old cluster.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import shutil
import subprocess
import time
import xmlrpc.client
from collections.abc import Callable
from pathlib import Path

import asyncpg

from chaos import infra, supervision
from chaos.db.backup import Backup, for_target, listing
from chaos.layout import StackLayout

# Recovery settings written into the restored cluster's postgresql.auto.conf (and taken
# out of the one a backup carries: a backup taken after a restore holds the old ones).
RECOVERY_KEYS = ("restore_command", "recovery_target_time", "recovery_target_action")
WAL_NAME_LENGTH = 24  # a WAL segment file's name: 24 hex digits


class RestoreError(RuntimeError):
    """The restore could not finish; the message says why and where to look."""


def recovery_conf(archive: Path, target: dt.datetime | None, current: str) -> str:
    """postgresql.auto.conf for a restore: `current` without any earlier recovery
    settings, plus where to fetch archived WAL, the target, and promotion at the end."""
    kept = [line for line in current.splitlines() if line.split("=")[0].strip() not in RECOVERY_KEYS]
    lines = [*kept, f'restore_command = \'cp "{archive}/%f" "%p"\'', "recovery_target_action = 'promote'"]
    if target is not None:
        lines.append(f"recovery_target_time = '{target.isoformat(sep=' ')}'")
    return "\n".join(lines) + "\n"


def unarchived_segments(pg_wal: Path, archive: Path) -> list[Path]:
    """The old cluster's WAL segments that never reached the archive."""
    if not pg_wal.is_dir():
        return []
    return sorted(
        f
        for f in pg_wal.iterdir()
        if len(f.name) == WAL_NAME_LENGTH and f.is_file() and not (archive / f.name).exists()
    )


def restore(
    layout: StackLayout,
    target: dt.datetime | None,
    progress: Callable[[str], None] = lambda _msg: None,
    timeout_s: float = 300,
) -> Backup:
    """Rebuild the cluster from the newest usable backup and the archive, up to `target`
    (None: as far as the archive and the old cluster's WAL go); returns the backup used."""
    backup = for_target(listing(layout), target)
    data = infra.postgres_files(layout, "pgdata")
    replaced = infra.postgres_files(layout, "pgdata.replaced")
    archive = infra.postgres_files(layout, "wal-archive")
    sup = supervision.Supervisor(layout)
    progress("stopping PostgreSQL")
    sup.stop_if_running("postgres")  # a cluster that was destroyed has left it stopped
    leftovers = unarchived_segments(data / "pg_wal", archive)
    shutil.rmtree(replaced, ignore_errors=True)
    if data.exists():
        data.rename(replaced)
    progress(f"copying base backup {backup.name} ({backup.size_bytes / 1e6:.0f} MB)")
    subprocess.run(["cp", "-a", str(backup.path), str(data)], check=True)
    for segment in leftovers:
        shutil.copy2(replaced / "pg_wal" / segment.name, data / "pg_wal" / segment.name)
    auto = data / "postgresql.auto.conf"
    auto.write_text(recovery_conf(archive, target, auto.read_text() if auto.exists() else ""))
    (data / "recovery.signal").touch()
    infra.give_to_postgres(auto, data / "recovery.signal", *(data / "pg_wal" / s.name for s in leftovers))
    goal = "the end of the archive" if target is None else target.isoformat(timespec="seconds")
    progress(f"replaying WAL to {goal}")
    try:
        sup.start("postgres")
        wait_promoted(layout.database_url, timeout_s)
    except (xmlrpc.client.Fault, RestoreError) as exc:
        sup.stop_if_running("postgres")
        raise RestoreError(
            f"PostgreSQL did not come back from the restore ({getattr(exc, 'faultString', exc)}); "
            f"its log: {layout.log_file('postgres')}. The cluster it replaced is in {replaced}"
        ) from exc
    return backup


def wait_promoted(database_url: str, timeout_s: float) -> None:
    """Poll until PostgreSQL answers and has left recovery (the WAL replayed, promoted)."""
    deadline = time.monotonic() + timeout_s
    last = "no answer yet"
    while time.monotonic() < deadline:
        try:
            if asyncio.run(_in_recovery(database_url)) is False:
                return
            last = "still replaying WAL"
        except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
            last = str(exc) or type(exc).__name__
        time.sleep(0.5)
    raise RestoreError(f"recovery did not finish within {timeout_s:.0f}s ({last})")


async def _in_recovery(database_url: str) -> bool:
    conn = await asyncpg.connect(database_url, timeout=2)
    try:
        return bool(await conn.fetchval("SELECT pg_is_in_recovery()"))
    finally:
        await conn.close()
