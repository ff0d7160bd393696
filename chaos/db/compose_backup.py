"""Backups and point-in-time restore of the compose stack's PostgreSQL, the same steps as
natively (chaos/db/backup.py, chaos/db/restore.py) run inside its containers.

docker-compose.yml archives every finished WAL segment to the `postgres-wal` volume and
keeps base backups in `postgres-backups`. A backup is pg_basebackup run in the postgres
container; a restore stops it, rebuilds the cluster in a one-off container of the same
service (same volumes) from the backup, the old cluster's unarchived WAL and the
recovery settings, starts it again and waits until it has replayed and been promoted.
The cluster it replaced is kept in the backups volume as `replaced/`.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path

from chaos.compose import ComposeError, ComposeStack
from chaos.db.backup import STAMP, Backup, BackupError, for_target
from chaos.db.restore import RECOVERY_KEYS, RestoreError, recovery_conf, wait_promoted

HOME = Path("/var/lib/postgresql")
DATA, ARCHIVE, BACKUPS = HOME / "data", HOME / "wal-archive", HOME / "backups"

# Run in a one-off container of the postgres service, as root, with the cluster stopped.
# $1 the backup folder, $2 the recovery settings to append.
REBUILD = f"""
set -eu
data={DATA} archive={ARCHIVE} replaced={BACKUPS}/replaced
rm -rf "$replaced" && mkdir -p "$replaced"
find "$data" -mindepth 1 -maxdepth 1 -exec mv -t "$replaced" {{}} +
cp -a "$1"/. "$data"/
# The old cluster's WAL that never reached the archive: replayed too.
for f in "$replaced"/pg_wal/????????????????????????; do
  [ -f "$f" ] && [ ! -f "$archive/$(basename "$f")" ] && cp "$f" "$data/pg_wal/"
done
grep -vE '^[[:space:]]*({"|".join(RECOVERY_KEYS)})[[:space:]]*=' "$data/postgresql.auto.conf" > /tmp/auto || true
printf '%s' "$2" >> /tmp/auto && cp /tmp/auto "$data/postgresql.auto.conf"
touch "$data/recovery.signal"
chown -R postgres:postgres "$data" && chmod 700 "$data"
"""


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _in_postgres(stack: ComposeStack, script: str, *args: str, timeout_s: float = 600) -> str:
    """A shell script run as the postgres user in the running postgres container."""
    result = stack.compose(
        "exec", "-T", "-u", "postgres", "postgres", "bash", "-c", script, "--", *args, timeout_s=timeout_s
    )
    return result.stdout


def take(stack: ComposeStack, timeout_s: float = 600) -> Backup:
    """A base backup into the backups volume, with its JSON beside it."""
    started = _now()
    name = started.strftime(STAMP)
    path = BACKUPS / name
    try:
        _in_postgres(
            stack,
            'pg_basebackup -U "$POSTGRES_USER" -D "$1" --checkpoint=fast --wal-method=stream --no-password',
            str(path),
            timeout_s=timeout_s,
        )
        size = int(_in_postgres(stack, 'du -sb "$1" | cut -f1', str(path)).strip() or 0)
        backup = Backup(name, path, started, _now(), size)
        _in_postgres(stack, 'printf "%s" "$2" > "$1"', f"{path}.json", json.dumps(backup.as_dict(), indent=2))
    except ComposeError as exc:
        raise BackupError(f"the compose backup failed: {exc}") from exc
    return backup


def listing(stack: ComposeStack) -> list[Backup]:
    """Every complete backup in the backups volume, oldest first."""
    script = f'for f in {BACKUPS}/*.json; do [ -f "$f" ] && [ -d "${{f%.json}}" ] && cat "$f" && echo; done; true'
    try:
        text = _in_postgres(stack, script, timeout_s=60)
    except ComposeError as exc:
        raise BackupError(f"the backups cannot be listed (is postgres running?): {exc}") from exc
    found = []
    decoder, at = json.JSONDecoder(), 0
    while (at := _skip_space(text, at)) < len(text):
        info, at = decoder.raw_decode(text, at)
        found.append(
            Backup(
                info["name"],
                Path(info["path"]),
                dt.datetime.fromisoformat(info["started_at"]),
                dt.datetime.fromisoformat(info["ended_at"]),
                int(info["size_bytes"]),
            )
        )
    return sorted(found, key=lambda b: b.started_at)


def _skip_space(text: str, at: int) -> int:
    while at < len(text) and text[at].isspace():
        at += 1
    return at


def restore(
    stack: ComposeStack,
    target: dt.datetime | None,
    progress: Callable[[str], None] = lambda _msg: None,
    timeout_s: float = 300,
) -> Backup:
    """Rebuild the compose cluster from the newest usable backup and the archive, up to
    `target` (None: as far as the archive and the old cluster's WAL go)."""
    backup = for_target(listing(stack), target)
    try:
        progress("stopping PostgreSQL")
        stack.compose("stop", "postgres", timeout_s=120)
        progress(f"rebuilding the cluster from backup {backup.name} ({backup.size_bytes / 1e6:.0f} MB)")
        conf = recovery_conf(ARCHIVE, target, "")
        rebuild = ["run", "--rm", "--no-deps", "-T", "-u", "root", "--entrypoint", "bash", "postgres"]
        stack.compose(*rebuild, "-c", REBUILD, "--", str(backup.path), conf, timeout_s=timeout_s)
        goal = "the end of the archive" if target is None else target.isoformat(timespec="seconds")
        progress(f"replaying WAL to {goal}")
        stack.compose("start", "postgres", timeout_s=120)
    except ComposeError as exc:
        raise RestoreError(f"the compose restore failed: {exc}; the replaced cluster is in {BACKUPS}/replaced") from exc
    try:
        wait_promoted(stack.database_url, timeout_s)
    except RestoreError as exc:
        raise RestoreError(f"{exc}; its log: `docker compose logs postgres`") from exc
    return backup
