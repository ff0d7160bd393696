"""The plain parts of backup and restore: reading a moment, choosing the backup,
writing the recovery settings, finding the WAL the archive lacks."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from chaos.db.backup import Backup, BackupError, for_target
from chaos.db.restore import recovery_conf, unarchived_segments
from chaos.moments import parse_moment

NOW = dt.datetime(2026, 12, 2, 21, 0, 0, tzinfo=dt.UTC)


def test_targets_in_iso_or_back_from_now() -> None:
    assert parse_moment("2026-12-02T20:30:00Z", NOW) == NOW - dt.timedelta(minutes=30)
    assert parse_moment("2026-12-02T20:30:00", NOW) == NOW - dt.timedelta(minutes=30)  # no zone: UTC
    assert parse_moment("90s ago", NOW) == NOW - dt.timedelta(seconds=90)
    assert parse_moment("1.5h ago", NOW) == NOW - dt.timedelta(minutes=90)


@pytest.mark.parametrize(
    ("text", "message"),
    [("2026-12-03T00:00:00Z", "in the future"), ("soon", "is not a time"), ("5d ago", "use s, m or h")],
)
def test_bad_targets_say_why(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_moment(text, NOW)


def backup(ended_min_ago: float) -> Backup:
    ended = NOW - dt.timedelta(minutes=ended_min_ago)
    return Backup(f"b{ended_min_ago}", Path("/x"), ended - dt.timedelta(seconds=5), ended, 1)


def test_a_restore_starts_from_the_newest_backup_that_ended_before_the_target() -> None:
    backups = [backup(60), backup(30), backup(5)]
    assert for_target(backups, None).name == "b5"
    assert for_target(backups, NOW - dt.timedelta(minutes=10)).name == "b30"
    with pytest.raises(BackupError, match="no backup ended before"):
        for_target(backups, NOW - dt.timedelta(minutes=90))
    with pytest.raises(BackupError, match="take one"):
        for_target([], None)


def test_recovery_settings_replace_those_a_backup_carries() -> None:
    old = "work_mem = '8MB'\nrecovery_target_time = '2026-01-01 00:00:00+00:00'\nrestore_command = 'false'\n"
    latest = recovery_conf(Path("/arch"), None, old)
    assert "work_mem = '8MB'" in latest
    assert "recovery_target_time" not in latest  # an old target would stop the replay early
    assert 'restore_command = \'cp "/arch/%f" "%p"\'' in latest
    assert "recovery_target_action = 'promote'" in latest
    past = recovery_conf(Path("/arch"), NOW, old)
    assert past.count("recovery_target_time") == 1
    assert "recovery_target_time = '2026-12-02 21:00:00+00:00'" in past


def test_only_the_segments_missing_from_the_archive_are_carried_over(tmp_path: Path) -> None:
    wal, archive = tmp_path / "pg_wal", tmp_path / "archive"
    wal.mkdir()
    archive.mkdir()
    for name in ("000000010000000000000001", "000000010000000000000002", "00000002.history"):
        (wal / name).write_text("x")
    (archive / "000000010000000000000001").write_text("x")
    (wal / "archive_status").mkdir()
    assert [p.name for p in unarchived_segments(wal, archive)] == ["000000010000000000000002"]
    assert unarchived_segments(tmp_path / "gone", archive) == []
