"""Starting the native stack the way a newcomer does: from a clone in a private
directory (root's home is 0700), and a start that fails leaves nothing running."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx
import psutil
import pytest

from chaos import infra, runner
from chaos.drills.prom import Prometheus
from chaos.layout import SERVICES, StackLayout
from tests.support.api import place_order
from tests.support.stack import start_stack, stop_stack, wait_until

REPO = Path(__file__).resolve().parents[2]
SOURCES = ("chaos", "services", "loadtests", "prometheus", "grafana", "pyproject.toml")


def processes_of(run_dir: Path) -> list[str]:
    """Processes (other than ours) whose command line, environment or working directory
    names `run_dir`: what a stack started there would have left running."""
    needle = str(run_dir)
    found = []
    for proc in psutil.process_iter(["pid", "cmdline", "cwd"]):
        if proc.pid == os.getpid():
            continue
        try:
            text = " ".join(proc.info["cmdline"] or []) + " " + (proc.info["cwd"] or "")
            text += " " + " ".join(proc.environ().values())
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
        if needle in text:
            found.append(f"{proc.pid}: {' '.join(proc.info['cmdline'] or [])}")
    return found


def chaoslab(clone: Path, *args: str, timeout_s: float = 240) -> subprocess.CompletedProcess[str]:
    """The clone's own `chaoslab` command, run from inside the clone."""
    env = {k: v for k, v in os.environ.items() if k != "CHAOSLAB_RUN_DIR"}
    env["PYTHONPATH"] = str(clone)
    return subprocess.run(
        [sys.executable, "-m", "chaos.cli", *args],
        cwd=clone,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )


@pytest.mark.stack
def test_a_clone_in_a_private_directory_starts_its_stack(client: httpx.Client):
    private = Path(tempfile.mkdtemp(prefix="chaoslab-private-"))
    assert stat.S_IMODE(private.stat().st_mode) == 0o700
    clone = private / "chaoslab"
    clone.mkdir()
    for name in SOURCES:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, clone / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(source, clone / name)
    run_dir = clone / ".chaoslab"
    try:
        started = chaoslab(clone, "up", "--detach", "--free-ports", "--profile", "ci", "--timeout", "120")
        assert started.returncode == 0, started.stdout + started.stderr
        layout = StackLayout.load(run_dir)
        assert f"directory={clone}" in (run_dir / "supervisord.conf").read_text()  # the clone's own code runs
        if os.geteuid() == 0:  # PostgreSQL runs as `postgres`, which cannot enter the private directory
            assert not infra.postgres_dir(layout).is_relative_to(private)
        assert client.get(layout.url("gateway") + "/health").status_code == 200
        answer = place_order(client, layout.url("gateway"), "SKU-001", 1)
        assert answer.status_code == 201, answer.text
    finally:
        cleaned = chaoslab(clone, "clean", timeout_s=120)
        survivors = processes_of(run_dir)
        postgres_files = infra.postgres_dir(StackLayout(run_dir=run_dir))
        shutil.rmtree(private, ignore_errors=True)
    assert cleaned.returncode == 0, cleaned.stdout + cleaned.stderr
    assert survivors == []
    assert not (postgres_files / "pgdata").exists()


@pytest.mark.stack
def test_a_failed_start_stops_everything_and_names_the_program_with_its_log():
    base = Path(tempfile.mkdtemp(prefix="chaoslab-test-"))
    base.chmod(0o755)
    run_dir = (base / "run").resolve()
    # A broken cluster: a data directory that claims a version and holds nothing else.
    data = infra.postgres_dir(StackLayout(run_dir=run_dir)) / "pgdata"
    data.mkdir(parents=True)
    (data / "PG_VERSION").write_text("15\n")
    try:
        with pytest.raises(runner.StackError) as failure:
            runner.up(
                run_dir,
                profile="ci",
                chaos_token="t",
                pick_free_ports=True,
                timeout_s=120,
                progress=lambda _msg: None,
            )
        message = str(failure.value)
        assert message.startswith("postgres: "), message
        assert f"last lines of {run_dir / 'logs' / 'postgres.log'}:" in message
        assert "postgresql.conf" in message  # PostgreSQL's own words about why it would not start
        assert processes_of(run_dir) == []
    finally:
        runner.clean(run_dir)
        shutil.rmtree(base, ignore_errors=True)


@pytest.mark.stack
def test_a_stack_stopped_and_started_again_has_no_service_left_reading_down():
    """`chaoslab down` stops Prometheus before the services, so the last sample it keeps
    of each says up. The next `chaoslab up` in the same directory keeps Prometheus' data,
    and on new ports: a last sample of 0 there would read as a service down for the
    5-minute lookback, and fire its Down alert with the new stack healthy."""
    first = start_stack()
    layout = first
    old = "|".join(f"127.0.0.1:{port}" for service in SERVICES for port in first.replica_ports(service))
    try:
        prom = Prometheus(first.url("prometheus"))
        wait_until(lambda: prom.value(f'min(up{{instance=~"{old}"}})') == 1, timeout_s=30, message="every service up")
        runner.down(first)
        layout = runner.up(
            first.run_dir,
            profile="ci",
            chaos_token="test-token",
            pick_free_ports=True,
            timeout_s=120,
            progress=lambda _msg: None,
        )
        prom = Prometheus(layout.url("prometheus"))
        wait_until(prom.up, timeout_s=30, message="Prometheus ready again")
        assert prom.value(f'count(last_over_time(up{{instance=~"{old}"}}[5m]) == 0)') is None
    finally:
        stop_stack(layout)
