"""Base backups of the native stack's PostgreSQL, taken with pg_basebackup while it runs.

A base backup plus the WAL archive (every WAL segment PostgreSQL finished since, see
chaos/infra.py) is enough to rebuild the database as it was at any moment after the
backup ended. Each backup is a folder under `backups/` named by its start time, with a
JSON file beside it saying when it started and ended.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

from chaos import infra
from chaos.layout import StackLayout

STAMP = "%Y%m%dT%H%M%S.%fZ"


class BackupError(RuntimeError):
    """A backup could not be taken or found; the message says why."""


@dataclass(frozen=True)
class Backup:
    name: str
    path: Path
    started_at: dt.datetime
    ended_at: dt.datetime
    size_bytes: int

    def as_dict(self) -> dict[str, str | int]:
        return {
            "name": self.name,
            "path": str(self.path),
            "started_at": self.started_at.isoformat(),
            "ended_at": self.ended_at.isoformat(),
            "size_bytes": self.size_bytes,
        }


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def take(layout: StackLayout, timeout_s: float = 600) -> Backup:
    """A base backup of the running cluster (a fast checkpoint, the WAL it needs streamed
    into it): consistent on its own, and the starting point of any restore after it."""
    root = infra.postgres_files(layout, "backups")
    started = _now()
    name = started.strftime(STAMP)
    path = root / name
    command = [infra.postgres_bin("pg_basebackup"), "-h", "127.0.0.1", "-p", str(layout.ports["postgres"])]
    command += ["-U", "chaoslab", "-D", str(path), "--checkpoint=fast", "--wal-method=stream", "--no-password"]
    try:
        result = subprocess.run(
            infra.as_postgres(command),
            capture_output=True,
            text=True,
            check=False,
            cwd=root,
            timeout=timeout_s,
        )
    except subprocess.TimeoutExpired as exc:
        raise BackupError(f"pg_basebackup did not finish within {timeout_s:.0f}s") from exc
    if result.returncode != 0:
        raise BackupError(f"pg_basebackup failed: {result.stderr.strip() or result.stdout.strip()}")
    backup = Backup(name, path, started, _now(), _size(path))
    (root / f"{name}.json").write_text(json.dumps(backup.as_dict(), indent=2))
    return backup


def listing(layout: StackLayout) -> list[Backup]:
    """Every complete backup, oldest first (a folder without its JSON never finished)."""
    root = infra.postgres_files(layout, "backups")
    found = []
    for meta in sorted(root.glob("*.json")):
        info = json.loads(meta.read_text())
        path = Path(info["path"])
        if path.is_dir():
            found.append(
                Backup(
                    info["name"],
                    path,
                    dt.datetime.fromisoformat(info["started_at"]),
                    dt.datetime.fromisoformat(info["ended_at"]),
                    int(info["size_bytes"]),
                )
            )
    return sorted(found, key=lambda b: b.started_at)


def for_target(backups: list[Backup], target: dt.datetime | None) -> Backup:
    """The backup a restore to `target` (None: the latest moment) starts from: the newest
    one that ended before it; replaying WAL can only move forward from a backup's end."""
    if not backups:
        raise BackupError("there is no backup to restore from: take one with `chaoslab db backup`")
    if target is None:
        return backups[-1]
    usable = [b for b in backups if b.ended_at <= target]
    if not usable:
        first = backups[0].ended_at.isoformat(timespec="seconds")
        raise BackupError(f"no backup ended before {target.isoformat(timespec='seconds')}: the oldest ended {first}")
    return usable[-1]
