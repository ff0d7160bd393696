"""bench/orders.py's CPU accounting: a program's CPU includes its children's (PostgreSQL's
backends), and windows add up to CPU milliseconds per order answered."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from bench.orders import Sample, acquirer_time, cpu_seconds
from tests.support.stack import wait_until

# Burns CPU for about 0.3 s, then waits (alive, idle) until its stdin closes.
BURN = "import sys, time\nend = time.process_time() + 0.3\nwhile time.process_time() < end: pass\nsys.stdin.read()"


def test_a_programs_cpu_includes_its_childrens():
    me = {"bench": os.getpid()}

    def own() -> float:  # this process alone, its children not counted
        return sum(os.times()[:2])

    tree_before, own_before = cpu_seconds(me)["bench"], own()
    child = subprocess.Popen([sys.executable, "-c", BURN], stdin=subprocess.PIPE)
    try:
        wait_until(
            lambda: cpu_seconds({"child": child.pid})["child"] >= 0.28, timeout_s=30, message="the child burnt its CPU"
        )
        children = (cpu_seconds(me)["bench"] - tree_before) - (own() - own_before)
    finally:
        child.communicate(b"")
    assert children >= 0.25


def test_windows_add_up_to_cpu_per_order():
    total = Sample([], 0, 0.0)
    total.add(Sample([0.1] * 10, 1, 2.0, {"orders": 0.04, "postgres": 0.02}))
    total.add(Sample([0.2] * 30, 0, 2.0, {"orders": 0.08}))
    per_order = total.cpu_ms_per_order()
    assert per_order == {"orders": 3.0, "postgres": 0.5}
    assert total.figures()["errors"] == 1
    assert Sample([], 3, 1.0, {"orders": 0.1}).cpu_ms_per_order() == {}


def test_the_bare_chain_waits_as_long_as_the_stacks_card_processor():
    from services.payments.settings import Settings

    assert acquirer_time({}) == Settings(chaoslab_profile="training").processor_service_s
    assert acquirer_time({"PROCESSOR_SERVICE_S": "0.2", "HTTP_CLIENT": "httpx"}) == 0.2


def test_a_processor_time_that_is_not_a_number_is_refused_before_anything_starts():
    bench = subprocess.run(
        [
            sys.executable,
            str(Path(__file__).resolve().parents[2] / "bench" / "orders.py"),
            "--set",
            "PROCESSOR_SERVICE_S=soon",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bench.returncode == 2
    assert "PROCESSOR_SERVICE_S takes seconds, not 'soon'" in bench.stderr
    assert "Traceback" not in bench.stderr and "starting" not in bench.stdout
