"""`chaoslab drill` started in the background by a script (SIGINT ignored, as a
non-interactive shell's `&` leaves it) and stopped with `kill` (SIGTERM) while its fault is
on: it stops its locust cleanly (its summary printed: it did not ignore the SIGINT that
stops it), rolls the fault back and exits 130, as on Ctrl-C, leaving no process behind."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import redis

from chaos.layout import StackLayout
from tests.support.stack import wait_until

pytestmark = pytest.mark.stack
REPO = Path(__file__).resolve().parents[2]
FAULT = "chaos:payments:error_rate"  # payments-errors' inject


def running_with(marker: str) -> list[int]:
    """The pids whose command line names `marker`: the drill's locust runs in a session
    of its own, but its `--csv` path is under this test's report directory."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker in (entry / "cmdline").read_bytes().decode(errors="replace"):
                    pids.append(int(entry.name))
            except OSError:
                pass  # ended meanwhile
    return pids


def test_a_drill_killed_with_sigterm_rolls_its_fault_back(stack: StackLayout, tmp_path: Path) -> None:
    chaos = redis.Redis.from_url(stack.redis_url, decode_responses=True)
    command = [sys.executable, "-m", "chaos.cli", "drill", "payments-errors", "--run-dir", str(stack.run_dir)]
    report = tmp_path / "report"
    command += ["--report", str(report)]
    proc = subprocess.Popen(
        command,
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),  # as `&` in a script starts it
    )
    try:
        wait_until(lambda: chaos.exists(FAULT) or proc.poll() is not None, timeout_s=180, message="the inject")
        assert proc.poll() is None, proc.communicate()[0][-3000:]
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=120)
        assert proc.returncode == 130, out[-3000:]
        assert "rolled back" in out
        log = (report / "logs" / "payments-errors.log").read_text()
        assert "Aggregated" in log, "locust did not stop cleanly: " + log[-2000:]
        assert not chaos.exists(FAULT)
        assert running_with(str(report)) == [], "the drill left its locust running"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        for pid in running_with(str(report)):  # only what this test started, by pid
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        chaos.delete(FAULT)
        chaos.close()
