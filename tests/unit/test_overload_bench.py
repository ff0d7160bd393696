"""Figures from a client ledger (chaos/ledger_figures.py): windows, shares, percentiles,
and bench/overload.py's spike figures built on them."""

from __future__ import annotations

import math
import resource
import subprocess
import sys

import pytest

from bench.overload import longest_retry_after, machine_busy_s, spike_figures
from chaos.layout import StackLayout
from chaos.ledger import Entry
from chaos.ledger_figures import order_windows, percentile, status_counts
from services.common.web.settings import profile_defaults


def answer(
    t: float, key: str, status: int, *, ms: float = 10.0, code: str | None = None, retry_after: str | None = None
):
    order = {201: "confirmed", 402: "payment_failed"}.get(status)
    return Entry(
        t=t,
        key=key,
        status=status,
        order_id=f"o-{key}" if order else None,
        order_status=order,
        total_cents=100 if order else None,
        latency_ms=ms,
        code=code,
        retry_after=retry_after,
    )


def test_percentile_is_the_nearest_rank():
    assert percentile([5, 1, 3, 2, 4], 0.5) == 3
    assert percentile(list(range(1, 101)), 0.99) == 99
    assert percentile([7], 0.99) == 7
    assert math.isnan(percentile([], 0.5))


def test_an_order_counts_in_the_window_of_its_first_answer_and_succeeds_if_any_answer_confirmed_it():
    entries = [
        answer(0.5, "a", 201),
        answer(1.0, "b", 429, retry_after="1"),
        answer(2.0, "b", 201),  # a shed order confirmed on its retry is a success
        answer(9.5, "c", 402),
        answer(10.2, "d", 503, code="breaker_open"),
        answer(25.0, "e", 201),  # past the last whole window: left out
    ]
    windows = order_windows(entries, 0.0, 25.0, 10.0)
    assert [(w.start, w.orders, w.confirmed) for w in windows] == [(0.0, 3, 2), (10.0, 1, 0)]
    assert windows[0].success == pytest.approx(2 / 3)
    assert math.isnan(order_windows([], 0, 10, 10)[0].success)


def test_status_counts_name_the_error_code_and_the_dependency_blamed():
    blamed = Entry(0, "d", 503, code="downstream_timeout", dependency="payments")
    counts = status_counts(
        [answer(0, "a", 201), answer(0, "b", 503, code="breaker_open"), answer(0, "c", 0), blamed, blamed]
    )
    assert counts == {"0": 1, "201": 1, "503 breaker_open": 1, "503 downstream_timeout (payments)": 2}


def test_spike_figures_judge_the_hold_and_the_time_after_the_drop():
    # t0 = 0, no warm-up, ramp 10 s, hold 10 s (10-20), after 20 s (20-40).
    entries = [answer(5.0, "ramp", 201)]
    entries += [answer(10 + i * 0.5, f"h{i}", 201, ms=100 + i) for i in range(20)]  # 2 confirmed/s while held
    entries += [answer(10 + i * 0.1, f"s{i}", 429, ms=2.0, retry_after="1") for i in range(99)]
    entries += [answer(12.0, "shed-bare", 429, ms=90.0)]  # no Retry-After, and slow
    entries += [answer(21.0, "early", 429, retry_after="1")]  # in the 5 s after the drop
    entries += [answer(26.0 + i, f"a{i}", 201) for i in range(10)]
    entries += [answer(30.0, "fail", 503, code="bulkhead_full")]
    f = spike_figures(entries, 0.0, warm_s=0.0, ramp_s=10.0, hold_s=10.0, after_s=20.0)
    assert f.hold_goodput == pytest.approx(2.0)
    assert f.admitted_p99_ms == 119
    assert f.shed_p99_ms == 2.0 and f.shed_without_retry_after == 1
    assert f.overload_5xx == 1 and f.by_status["503 bulkhead_full"] == 1
    assert f.first_5s_success == 0.0
    assert f.after_success == pytest.approx(10 / 11)


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, str(profile_defaults("training", "gateway")["admission_retry_after_max_s"])),
        ({"gateway:ADMISSION_RETRY_AFTER_MAX_S": "4"}, "4"),
        ({"ADMISSION_RETRY_AFTER_MAX_S": "6"}, "6"),  # set for every service
        ({"orders:ADMISSION_RETRY_AFTER_MAX_S": "6"}, str(profile_defaults("training")["admission_retry_after_max_s"])),
    ],
)
def test_the_spike_shoppers_wait_as_long_as_the_stacks_gateway_says(tmp_path, env, expected):
    layout = StackLayout.new(tmp_path, profile="training", chaos_token="t", pick_free_ports=False, env=env)
    assert longest_retry_after(layout) == expected


def test_the_machines_busy_time_counts_processes_at_a_raised_nice_value():
    """Linux counts a niced process's CPU apart from `user`: the machine's figure must still
    hold it (it read 0.86 of 2 cores under the spike with the services niced)."""
    before = machine_busy_s()
    used_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    burn = "import time\nend = time.process_time() + 0.5\nwhile time.process_time() < end: pass"
    subprocess.run(["nice", "-n", "19", sys.executable, "-c", burn], check=True, timeout=60)
    used_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    child = (used_after.ru_utime + used_after.ru_stime) - (used_before.ru_utime + used_before.ru_stime)
    assert child >= 0.5
    assert machine_busy_s() - before >= 0.9 * child
