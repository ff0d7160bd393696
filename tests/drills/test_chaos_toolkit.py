"""Chaos Toolkit runs our experiments against the live stack. Its exit code is not
trusted alone (1.19 exits 0 with a failed steady state): the journal is judged."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from chaos.drills.experiments import DIRECTORY
from chaos.drills.load import Load
from chaos.layout import SERVICES

EXPERIMENTS = ("payments-errors", "rate-limit-misconfig", "db-pool-exhaustion")


@pytest.mark.parametrize("incident", EXPERIMENTS)
def test_chaos_run_passes_with_a_clean_journal(stack, incident, tmp_path):
    env = {
        **os.environ,
        "PROMETHEUS_URL": stack.url("prometheus"),
        "GATEWAY_URL": stack.url("gateway"),
        "CHAOS_TOKEN": stack.chaos_token,
        "REDIS_URL": stack.redis_url,
        "CHAOSLAB_RUN_DIR": str(stack.run_dir),
        "CHAOSLAB_PROFILE": stack.profile,
        "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}",
        **{f"{s.upper()}_URL": stack.url(s) for s in SERVICES},
    }
    journal = tmp_path / "journal.json"
    load = Load(
        stack.url("gateway"),
        users=6,
        tags="shop",
        log=tmp_path / "locust.log",
        env={"CHAOSLAB_THINK_MIN_S": "0.1", "CHAOSLAB_THINK_MAX_S": "0.3"},
    ).start()
    try:
        run = subprocess.run(
            [
                sys.executable,
                "-m",
                "chaostoolkit",
                "--no-log-file",
                "run",
                "--journal-path",
                str(journal),
                str(DIRECTORY / f"{incident}.json"),
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            cwd=DIRECTORY.parents[1],
        )
    finally:
        load.stop()
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    record = json.loads(journal.read_text())
    assert record["status"] == "completed", record["status"]
    assert record["deviated"] is False
    hypothesis = [record["steady_states"]["before"], record["steady_states"]["after"]]
    assert all(state and state["steady_state_met"] for state in hypothesis), hypothesis
    probes = [r for r in record["run"] if r["activity"]["type"] == "probe"]
    assert probes and all(p["status"] == "succeeded" and p.get("tolerance_met", p["output"] is True) for p in probes), [
        (p["activity"]["name"], p["status"], p.get("output")) for p in probes
    ]
    assert all(r["status"] == "succeeded" for r in record["run"]), [
        (r["activity"]["name"], r["status"]) for r in record["run"] if r["status"] != "succeeded"
    ]
