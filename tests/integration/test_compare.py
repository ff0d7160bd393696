"""`chaoslab compare` for real, kept short: sets A (no pattern) and F (every pattern) under
payments failing one charge in five, on ci stacks, as a user runs it. The report holds
every measure for both sets, and A shows what idempotency off allows: a key that got
two orders, and its customer charged twice. F shows none of it."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from chaos.compare import measure

pytestmark = pytest.mark.stack


@pytest.mark.timeout(240)
def test_a_against_f_under_payments_errors(tmp_path):
    out = tmp_path / "report"
    command = [
        sys.executable, "-m", "chaos.cli", "compare", "--profile", "ci", "--sets", "A,F",
        "--fault", "payments-errors", "--warmup", "5s", "--duration", "15s", "--recovery", "15s",
        "--users", "10", "--out", str(out),
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=220, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    data = json.loads((out / "report.json").read_text())
    a, f = data["sets"]
    assert (a["name"], a["status"], a["figures"]["orders"] > 50) == ("A", "done", True), a
    assert (f["name"], f["status"], f["figures"]["orders"] > 50) == ("F", "done", True), f
    for result in (a, f):
        assert {m.key for m in measure.MEASURES} <= set(result["figures"])
        assert result["figures"]["windows"], result["name"]
        assert result["figures"]["amplification"] > 0.5  # payments received the charges
    # Idempotency off: the shoppers' repeats with the same key became orders of their own,
    # each one charged, and verify holds the ledger against it.
    assert a["figures"]["duplicate_orders"] > 0 and a["figures"]["double_charges"] > 0, a["figures"]
    assert "ledger_one_order_per_key" in a["verify"]["failed"]
    assert f["figures"]["duplicate_orders"] == f["figures"]["double_charges"] == f["figures"]["events_lost"] == 0
    assert f["verify"]["ok"], f["verify"]
    # Retries put back most of what payments refused.
    assert f["figures"]["success_rate"] > a["figures"]["success_rate"]
    html = (out / "report.html").read_text()
    assert html.count("<svg") == len(measure.MEASURES) + 1
    assert "Worse than the set before" in html
    for line in data["worse"]:
        assert line.startswith("F worse than A on ") and line in html
