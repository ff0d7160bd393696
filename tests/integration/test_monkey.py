"""chaoslab monkey against the session stack: a short run of seeded kill -9s under load
ends clean (verify, client ledger, every program back) and its report names the kills."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from chaos import monkey
from chaos.layout import SERVICES, StackLayout
from tests.support.stack import assert_verify_clean

pytestmark = pytest.mark.stack
REPO = Path(__file__).resolve().parents[2]
SEED = 11


def test_a_short_monkey_run_is_clean_and_reports_its_kills(stack: StackLayout, tmp_path: Path):
    report = tmp_path / "monkey"
    command = [sys.executable, "-m", "chaos.cli", "monkey", "--run-dir", str(stack.run_dir), "--report", str(report)]
    command += ["--interval", "2s", "--duration", "12s", "--users", "6", "--seed", str(SEED), "--json"]
    env = {**os.environ, "CHAOSLAB_TARGET": "native"}
    # Bounded by itself: 12 s of kills plus the ci profile's recovery budget (60 s).
    proc = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=240, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    result = json.loads(proc.stdout)
    assert result["verdict"] == "clean" and result["problems"] == []
    assert result["verify"]["ok"] and result["ledger"]["ok"]

    planned = [p.program for p in monkey.schedule(SEED, SERVICES, 2, 12)]
    assert [k["program"] for k in result["kills"]] == planned  # the seed decides the kills
    assert result["kills_done"] >= 1 and all(k["pid"] for k in result["kills"] if k["killed"])
    # The schedule counts from the load's first answer: no kill before an order is in flight.
    assert result["load_start_s"] is not None
    assert all(k["at_s"] >= k["planned_s"] > result["load_start_s"] for k in result["kills"])
    orders = result["orders"]
    assert orders["accepted"] > 0 and orders["found"] == orders["accepted"] and orders["doubled"] == 0
    assert all(p["healthy"] for p in result["programs"])

    written = json.loads((report / "report.json").read_text())
    assert [k["program"] for k in written["kills"]] == planned
    page = (report / "index.html").read_text()
    for kill in result["kills"]:
        assert f"kill -9 {kill['program']}" in page
    assert (report / "ledger.jsonl").exists()
    assert_verify_clean(stack)
