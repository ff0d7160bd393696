"""PostgreSQL, Redis and Prometheus as private processes of one native stack.

Each runs from the Debian package's binary with its data under the run directory,
listening on 127.0.0.1 only. PostgreSQL refuses to run as root, so when we are root
the process runs as the `postgres` user and its files live where that user can reach
them: under the run directory when every directory above it lets others through,
otherwise (a clone in root's 0700 home) in the `postgres` user's home, one folder per
run directory.
"""

from __future__ import annotations

import asyncio
import glob
import hashlib
import os
import pwd
import shlex
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from chaos import alertmanager_config, prometheus_config
from chaos.layout import StackLayout


class MissingDependency(RuntimeError):
    """A program the stack needs is not installed; the message says how to get it."""


@dataclass(frozen=True)
class Program:
    """One supervised process: its command line, the user it runs as (None: us) and the
    directory it starts in (None: the repository)."""

    name: str
    command: list[str]
    user: str | None = None
    workdir: Path | None = None
    env: dict[str, str] | None = None
    priority: int = 100
    stop_signal: str = "TERM"


def postgres_bin(tool: str) -> str:
    found = sorted(
        glob.glob(f"/usr/lib/postgresql/*/bin/{tool}"),
        key=lambda p: int(Path(p).parts[4]) if Path(p).parts[4].isdigit() else 0,
    )
    if found:
        return found[-1]
    on_path = shutil.which(tool)
    if on_path:
        return on_path
    raise MissingDependency(
        f"PostgreSQL's {tool} was not found: install the server with "
        "`sudo apt-get install postgresql` (or run `make deps` as root)"
    )


def which(program: str, package: str) -> str:
    path = shutil.which(program)
    if not path:
        raise MissingDependency(
            f"{program} was not found: install it with `sudo apt-get install {package}` (or run `make deps` as root)"
        )
    return path


def _postgres_user() -> str | None:
    """Root cannot run PostgreSQL: use the `postgres` account the Debian package made."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam("postgres")
    except KeyError as exc:
        raise MissingDependency(
            "running as root needs the `postgres` user: `apt-get install postgresql` creates it"
        ) from exc
    return "postgres"


def _reachable_by_others(path: Path) -> bool:
    """Whether another user can walk down to `path`: every directory on the way lets
    others through (one that does not exist yet will be made 0755)."""
    return all(not p.exists() or p.stat().st_mode & 0o001 for p in (path, *path.parents))


def postgres_dir(layout: StackLayout) -> Path:
    """Where PostgreSQL's data and socket directories live for this run directory."""
    user = _postgres_user()
    if user is None or _reachable_by_others(layout.run_dir):
        return layout.run_dir
    digest = hashlib.sha256(str(layout.run_dir).encode()).hexdigest()[:16]
    return Path(pwd.getpwnam(user).pw_dir) / "chaoslab" / digest


# PostgreSQL's folders under postgres_dir(): the cluster, its socket, the WAL archive
# (every finished WAL segment, copied by archive_command) and the base backups
# (`chaoslab db backup`); a restore keeps the cluster it replaced in `pgdata.replaced`,
# and `chaoslab db destroy` deletes the cluster by way of `pgdata.destroyed`.
POSTGRES_DIRS = ("pgdata", "pgsock", "wal-archive", "backups", "pgdata.replaced", "pgdata.destroyed")


def postgres_files(layout: StackLayout, name: str) -> Path:
    assert name in POSTGRES_DIRS, name
    return postgres_dir(layout) / name


def as_postgres(command: list[str]) -> list[str]:
    """`command` run as the user PostgreSQL runs as (ourselves unless we are root)."""
    user = _postgres_user()
    return ["runuser", "-u", user, "--", *command] if user else command


def give_to_postgres(*paths: Path) -> None:
    """Hand files and folders we made to the user PostgreSQL runs as."""
    user = _postgres_user()
    if user:
        entry = pwd.getpwnam(user)
        for path in paths:
            os.chown(path, entry.pw_uid, entry.pw_gid)


def init_postgres(layout: StackLayout) -> None:
    """Create the cluster once (trust auth on 127.0.0.1, superuser `chaoslab`), with its
    WAL archive and backup folders."""
    home = postgres_dir(layout)
    data = home / "pgdata"
    folders = [home / name for name in ("pgsock", "wal-archive", "backups")]
    for folder in folders:
        folder.mkdir(parents=True, exist_ok=True)
    give_to_postgres(*folders)
    if (data / "PG_VERSION").exists():
        return
    data.mkdir(parents=True, exist_ok=True)
    give_to_postgres(data)
    command = [postgres_bin("initdb"), "-D", str(data), "-U", "chaoslab", "--auth=trust"]
    # 1 MB WAL segments: archive_timeout ships a whole segment, so small ones keep the
    # archive of a quiet training stack small.
    command += ["-E", "UTF8", "--no-instructions", "--wal-segsize=1"]
    # Run from its own folder: our working directory may be closed to the postgres user.
    result = subprocess.run(as_postgres(command), capture_output=True, text=True, check=False, cwd=home)
    if result.returncode != 0:
        raise MissingDependency(f"initdb failed: {result.stderr.strip() or result.stdout.strip()}")


def remove_postgres_data(layout: StackLayout) -> None:
    """Delete PostgreSQL's files for this run directory, wherever they live."""
    home = postgres_dir(layout)
    for name in POSTGRES_DIRS:
        shutil.rmtree(home / name, ignore_errors=True)
    if home != layout.run_dir:
        shutil.rmtree(home, ignore_errors=True)


# How often, at most, a WAL segment is shipped to the archive while there are writes:
# the most a destroyed cluster can lose (the db-restore drill holds its RPO to it).
ARCHIVE_TIMEOUT_S = {"training": 60, "ci": 10}


def postgres(layout: StackLayout) -> Program:
    home = postgres_dir(layout)
    archive = shlex.quote(str(home / "wal-archive"))
    settings = {
        "listen_addresses": "127.0.0.1",
        "port": str(layout.ports["postgres"]),
        "unix_socket_directories": str(home / "pgsock"),
        "max_connections": "300",
        "shared_buffers": "128MB",
        # Every finished WAL segment is copied to the archive, so `chaoslab db restore` can
        # replay from a base backup to any later moment. A segment is shipped at least
        # every archive_timeout while there are writes: what a destroyed cluster can lose.
        "archive_mode": "on",
        "archive_command": f"test ! -f {archive}/%f && cp %p {archive}/%f",
        "archive_timeout": str(ARCHIVE_TIMEOUT_S[layout.profile]),
    }
    if layout.profile == "ci":
        # Throwaway data in CI, safe from a machine crash only: skipping fsync loses nothing
        # when PostgreSQL itself is killed. synchronous_commit stays on: without it a kill -9
        # (chaoslab monkey --include-infra) loses the last commits clients were told about.
        settings.update(fsync="off", full_page_writes="off")
    command = [postgres_bin("postgres"), "-D", str(home / "pgdata")]
    for key, value in settings.items():
        command += ["-c", f"{key}={value}"]
    return Program("postgres", command, user=_postgres_user(), workdir=home, priority=10, stop_signal="INT")


def redis(layout: StackLayout) -> Program:
    data = layout.run_dir / "redis"
    data.mkdir(parents=True, exist_ok=True)
    return Program(
        "redis",
        [
            which("redis-server", "redis-server"),
            "--port",
            str(layout.ports["redis"]),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(data),
        ],
        priority=10,
    )


def prometheus(layout: StackLayout, config: Path) -> Program | None:
    """None when Prometheus is not installed: the stack runs without it."""
    binary = shutil.which("prometheus")
    if not binary:
        return None
    data = layout.run_dir / "prometheus"
    data.mkdir(parents=True, exist_ok=True)
    return Program(
        "prometheus",
        [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={data}",
            f"--web.listen-address=127.0.0.1:{layout.ports['prometheus']}",
            "--storage.tsdb.retention.time=2d",
            "--web.enable-lifecycle",
            # The resend delay that sets how long a dead Prometheus goes unnoticed (Watchdog).
            *prometheus_config.prometheus_flags(layout.profile),
        ],
        priority=20,
    )


def alertmanager(layout: StackLayout) -> Program | None:
    """None when Alertmanager is not installed. Alerts go to notifications' webhook as a
    page or a ticket, so they can be seen arriving without Grafana (`GET /alerts`); Watchdog,
    the dead man's switch, to a receiver that notifies nobody: it is read from Alertmanager's
    API. The routing is chaos/alertmanager_config.py's, the compose stack's too."""
    binary = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
    if not binary:
        return None
    data = layout.run_dir / "alertmanager"
    data.mkdir(parents=True, exist_ok=True)
    config = alertmanager_config.write(layout)
    return Program(
        "alertmanager",
        [
            binary,
            f"--config.file={config}",
            f"--storage.path={data}",
            f"--web.listen-address=127.0.0.1:{layout.ports['alertmanager']}",
            "--cluster.listen-address=",
        ],
        priority=20,
    )


def create_database(layout: StackLayout) -> None:
    """The `chaoslab` database, once PostgreSQL answers; harmless when it exists."""

    async def create() -> None:
        conn = await asyncpg.connect(
            host="127.0.0.1", port=layout.ports["postgres"], user="chaoslab", database="postgres", timeout=5
        )
        try:
            if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = 'chaoslab'"):
                await conn.execute("CREATE DATABASE chaoslab")
        finally:
            await conn.close()

    asyncio.run(create())
