"""locust, headless, against the live stack: shoppers, duplicate storms and the surge shape
run without a single failed request, and leave `chaoslab verify` clean.

locust exits 1 when any request failed (its users judge every answer by the contract),
so the exit code is what these tests hang on; the CSV stats show what was sent.
"""

from __future__ import annotations

import csv
import json
import os
import random
import re
import subprocess
import sys
from pathlib import Path

import pytest

# Only the locust-free parts of loadtests: importing locust here would let gevent
# monkey-patch the whole test session.
from chaos import ledger
from chaos.drills.load import failure_message, locust_command
from loadtests import schedules
from loadtests.checks import GAVE_UP, SameAnswer, come_back_in_s, retry_after_s
from loadtests.settings import (
    LoadSettingsError,
    SpikeSettings,
    SteadySettings,
    StepSettings,
    SurgeSettings,
    UserSettings,
)
from tests.support.chaos import clear_faults, put_fault, wait_breakers_closed
from tests.support.stack import assert_verify_clean

REPO = Path(__file__).resolve().parents[2]
LOCUSTFILE = REPO / "loadtests" / "locustfile.py"
LOCUST = [sys.executable, "-m", "locust"]
CHAOSLAB = [sys.executable, "-m", "chaos.cli"]


class LocustRun:
    """One finished headless locust run and its CSV statistics."""

    def __init__(self, proc: subprocess.CompletedProcess, prefix: Path) -> None:
        self.proc = proc
        self.prefix = prefix

    def rows(self, suffix: str) -> list[dict[str, str]]:
        with open(f"{self.prefix}_{suffix}.csv", newline="") as f:
            return list(csv.DictReader(f))

    @property
    def stats(self) -> dict[str, dict[str, str]]:
        return {row["Name"]: row for row in self.rows("stats")}

    def count(self, name_prefix: str) -> int:
        return sum(int(row["Request Count"]) for name, row in self.stats.items() if name.startswith(name_prefix))

    def explain(self) -> str:
        return f"exit {self.proc.returncode}\n{self.proc.stdout[-3000:]}\n{self.proc.stderr[-3000:]}"

    def assert_clean(self) -> None:
        """Exit 0 and nothing in the failure tables."""
        assert self.proc.returncode == 0, self.explain()
        assert int(self.stats["Aggregated"]["Failure Count"]) == 0, self.explain()
        assert self.rows("failures") == [], self.rows("failures")
        assert self.rows("exceptions") == [], self.rows("exceptions")

    def assert_clean_but_shed(self) -> None:
        """Nothing failed but requests turned away with Retry-After twice (the client gave
        up): a 429 from the door, or a 503 while a breaker behind it is open, which a burst
        past the stack's capacity may meet, as the drills count them; and most got through."""
        failures = self.rows("failures")
        assert all(failure_message(row["Error"]).startswith(GAVE_UP) for row in failures), failures
        assert self.rows("exceptions") == [], self.rows("exceptions")
        shed = sum(int(row["Occurrences"]) for row in failures)
        assert shed <= 0.5 * int(self.stats["Aggregated"]["Request Count"]), self.explain()


def environment(extra: dict[str, str] | None = None) -> dict[str, str]:
    """This process's environment without any load knobs of the person running the tests."""
    inherited = {k: v for k, v in os.environ.items() if not k.startswith(("CHAOSLAB_", "LOCUST_"))}
    return {**inherited, **(extra or {})}


def run_locust(
    gateway: str, tmp_path: Path, *args: str, env: dict[str, str] | None = None, locustfiles: tuple[Path, ...] = ()
) -> LocustRun:
    prefix = tmp_path / "run"
    proc = subprocess.run(
        [
            *LOCUST,
            "-f",
            ",".join(str(f) for f in locustfiles or (LOCUSTFILE,)),
            "--headless",
            "--host",
            gateway,
            "--csv",
            str(prefix),
            "--only-summary",
            *args,
        ],
        cwd=REPO,
        env=environment(env),
        capture_output=True,
        text=True,
        timeout=60,
    )
    return LocustRun(proc, prefix)


def test_shoppers_browse_order_and_read_back_without_failures(stack, gateway, tmp_path):
    run = run_locust(gateway, tmp_path, "--tags", "shop", "-u", "10", "-r", "10", "-t", "8s")

    run.assert_clean()
    stats = run.stats
    assert int(stats["POST /orders"]["Request Count"]) > 0, run.explain()
    assert int(stats["GET /orders/{id}"]["Request Count"]) > 0, run.explain()
    assert int(stats["GET /orders?limit=10"]["Request Count"]) > 0, run.explain()
    assert not any("storm" in name for name in stats), "--tags shop ran the duplicate storm"
    assert_verify_clean(stack)


@pytest.mark.parametrize(("ratio", "reads_back"), [("0", False), ("1", True)])
def test_shoppers_read_orders_back_only_as_often_as_asked(stack, gateway, tmp_path, ratio, reads_back):
    run = run_locust(
        gateway, tmp_path, "--tags", "orders", "-u", "5", "-r", "5", "-t", "4s",
        env={"CHAOSLAB_READ_BACK_RATIO": ratio, "CHAOSLAB_REPLAY_RATIO": "0"},
    )  # fmt: skip

    run.assert_clean()
    assert run.count("POST /orders") > 0, run.explain()
    assert (run.count("GET /orders/{id}") > 0) is reads_back, run.explain()


# Loaded beside the locustfile: the garbage collector is off while the load runs, and
# the cycles left behind are counted when it stops.
GARBAGE_PROBE = """
import gc, os
from locust import events

@events.test_start.add_listener
def _start(**_kw):
    gc.collect()
    gc.disable()

@events.test_stop.add_listener
def _stop(**_kw):
    with open(os.environ["GARBAGE_PROBE_OUT"], "w") as out:
        out.write(str(gc.collect()))
"""


def test_answers_refused_by_the_stack_leave_no_garbage_for_the_load_generator(stack, gateway, client, tmp_path):
    # Every order is answered 500. Had locust's client turned each into an exception kept
    # on the answer, each would leave a cycle of some 65 objects for the collector to free.
    probe = tmp_path / "garbage_probe.py"
    probe.write_text(GARBAGE_PROBE)
    put_fault(client, stack, "gateway", "error_rate", 1.0)
    try:
        run = run_locust(
            gateway, tmp_path, "--tags", "orders", "-u", "5", "-r", "5", "-t", "4s",
            env={"GARBAGE_PROBE_OUT": str(tmp_path / "collected"), "CHAOSLAB_THINK_MIN_S": "0.05",
                 "CHAOSLAB_THINK_MAX_S": "0.05"},
            locustfiles=(LOCUSTFILE, probe),
        )  # fmt: skip
    finally:
        clear_faults(client, stack)

    refused = run.count("POST /orders")
    failures = run.rows("failures")
    assert refused > 20 and failures, run.explain()
    assert all(failure_message(row["Error"]).startswith("unexpected 500") for row in failures), failures
    collected = int((tmp_path / "collected").read_text())
    assert collected < refused, f"{collected} objects in cycles after {refused} answers"


def test_duplicate_storm_gets_one_order_per_key(stack, gateway, tmp_path):
    run = run_locust(
        gateway, tmp_path, "--tags", "duplicates", "-u", "10", "-r", "10", "-t", "8s", env={"CHAOSLAB_STORM_SIZE": "20"}
    )

    run.assert_clean_but_shed()  # 10 bursts of 20 at once can pass the stack's capacity
    assert run.count("POST /orders [storm]") >= 20, run.explain()
    assert run.count("GET ") == 0, "--tags duplicates ran shoppers"
    assert_verify_clean(stack)


def test_the_ledger_names_the_dependency_each_refusal_blamed(stack, gateway, client, tmp_path):
    # Orders cannot reach inventory: each order is refused with 503 naming inventory. The
    # gateway's breaker on orders does not count those against orders, so none names it.
    put_fault(client, stack, "orders", "block", "inventory")
    try:
        run = run_locust(
            gateway,
            tmp_path,
            *("--tags", "orders", "-u", "2", "-r", "2", "-t", "4s"),
            env={ledger.LEDGER_VAR: str(tmp_path / "ledger-{pid}.jsonl")},
        )
    finally:
        clear_faults(client, stack)
        wait_breakers_closed(client, stack)

    assert run.rows("exceptions") == [], run.explain()
    refused = [e for e in ledger.read(sorted(tmp_path.glob("ledger-*.jsonl"))).entries if e.status == 503]
    assert refused, run.explain()
    assert {e.dependency for e in refused} == {"inventory"}, refused


def test_surge_shape_surges_then_stops_by_itself(stack, gateway, tmp_path):
    surge = {
        "CHAOSLAB_SHAPE": "surge",
        "CHAOSLAB_SURGE_BASE_USERS": "3",
        "CHAOSLAB_SURGE_PEAK_USERS": "12",
        "CHAOSLAB_SURGE_BASE_SECONDS": "2",
        "CHAOSLAB_SURGE_SECONDS": "3",
        "CHAOSLAB_SURGE_SPAWN_RATE": "50",
    }
    run = run_locust(gateway, tmp_path, "--csv-full-history", env=surge)  # no -t: the shape ends it

    run.assert_clean()
    assert "Shape test completed" in run.proc.stderr, run.explain()
    assert run.count("POST /orders") > 0, run.explain()
    users = [int(row["User Count"]) for row in run.rows("stats_history") if row["Name"] == "Aggregated"]
    assert max(users) == 12, users
    assert users[0] <= 3 and users[-1] <= 3, users
    assert_verify_clean(stack)


def test_chaoslab_load_runs_distributed_over_worker_processes(stack, tmp_path):
    """`chaoslab load --workers 2`: a master and two worker processes share the users;
    the master adds up their statistics, and every process is gone afterwards."""
    result = subprocess.run(
        [*CHAOSLAB, "load", "--run-dir", str(stack.run_dir), "--workers", "2", "--users", "4", "--duration", "6"],
        cwd=REPO,
        env={**environment(), "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=90,
    )
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-3000:]
    summary = re.search(r"2 worker\(s\), 4 users: (\d+) requests/s \(\d+ orders/s\), (\d+) requests, (\d+) failed", out)
    assert summary, out[-3000:]
    assert int(summary.group(2)) > 0 and int(summary.group(3)) == 0, summary.group(0)
    # The master waited for both workers and shared the users between them.
    assert re.search(r"Sending spawn jobs of 4 users .* to 2 ready workers", out), out[:3000]
    assert_verify_clean(stack)


# --- no stack needed: the shapes' timetables, the shape guard, the storm's judge ----------


def test_surge_timetable_is_baseline_surge_baseline_then_stop():
    surge = SurgeSettings(base_users=10, peak_users=100, base_s=60, surge_s=30, spawn_rate=25)
    assert [schedules.surge(surge, t) for t in (0, 59.9, 60, 89.9, 90, 149.9)] == [
        (10, 25),
        (10, 25),
        (100, 25),
        (100, 25),
        (10, 25),
        (10, 25),
    ]
    assert schedules.surge(surge, 150) is None


def test_step_timetable_holds_the_top_step_once_then_stops():
    steps = StepSettings(step_users=10, step_s=30, max_users=25)
    assert [schedules.steps(steps, t) for t in (0, 29.9, 30, 60, 89.9)] == [
        (10, 10.0),
        (10, 10.0),
        (20, 10.0),
        (25, 10.0),
        (25, 10.0),
    ]
    assert schedules.steps(steps, 90) is None


def test_spike_timetable_warms_ramps_holds_drops_at_once_then_stops():
    spike = SpikeSettings(start_users=1, base_users=10, peak_users=500, warm_s=10, ramp_s=30, hold_s=60, after_s=30)
    users = {t: schedules.spike(spike, t) for t in (0, 5, 10, 25, 39.9, 40, 99.9, 100, 129.9)}
    assert [tick[0] for tick in users.values() if tick] == [1, 5, 10, 255, 498, 500, 500, 10, 10]
    ramp_rate = schedules.spike(spike, 25)[1]  # type: ignore[index]
    assert ramp_rate * 30 >= 490  # locust keeps up with the ramp
    assert schedules.spike(spike, 100)[1] >= 490  # type: ignore[index]  # drops the surge within a second
    assert schedules.spike(spike, 130) is None
    assert schedules.spike_duration_s(spike) == 130


def test_steady_timetable_is_the_same_users_then_stop():
    steady = SteadySettings(users=20, duration_s=180)
    assert [schedules.steady(steady, t) for t in (0, 90, 179.9)] == [(20, 20.0)] * 3
    assert schedules.steady(steady, 180) is None


def test_spike_and_steady_settings_come_from_the_environment():
    assert SpikeSettings.from_env({}) == SpikeSettings()
    assert SpikeSettings().peak_users == 500 and SpikeSettings().ramp_s == 30 and SpikeSettings().hold_s == 60
    assert SpikeSettings.from_env({"CHAOSLAB_SPIKE_PEAK_USERS": "80"}).peak_users == 80
    assert SteadySettings.from_env({"CHAOSLAB_STEADY_USERS": "5", "CHAOSLAB_STEADY_SECONDS": "9"}) == SteadySettings(
        users=5, duration_s=9
    )
    with pytest.raises(LoadSettingsError, match=r"CHAOSLAB_SPIKE_HOLD_SECONDS='0' must be at least 0\.1"):
        SpikeSettings.from_env({"CHAOSLAB_SPIKE_HOLD_SECONDS": "0"})


def test_settings_come_from_the_environment_and_bad_values_are_named():
    assert SurgeSettings.from_env({}) == SurgeSettings()
    assert SurgeSettings.from_env({"CHAOSLAB_SURGE_PEAK_USERS": "250"}).peak_users == 250
    with pytest.raises(LoadSettingsError, match="CHAOSLAB_STEP_USERS='many' is not a whole number"):
        StepSettings.from_env({"CHAOSLAB_STEP_USERS": "many"})
    with pytest.raises(LoadSettingsError, match=r"CHAOSLAB_STEP_SECONDS='0' must be at least 0\.1"):
        StepSettings.from_env({"CHAOSLAB_STEP_SECONDS": "0"})
    with pytest.raises(LoadSettingsError, match="CHAOSLAB_READ_BACK_RATIO=2 must be between 0 and 1"):
        UserSettings.from_env({"CHAOSLAB_READ_BACK_RATIO": "2"})


def _exposed_shapes(env: dict[str, str], *argv: str) -> subprocess.CompletedProcess:
    probe = (
        "import json, sys\n"
        f"sys.argv = ['locust', *{list(argv)!r}]\n"
        "from locust.util.load_locustfile import load_locustfile\n"
        f"_users, shapes = load_locustfile({str(LOCUSTFILE)!r})\n"
        "print(json.dumps(sorted(type(s).__name__ for s in shapes)))\n"
    )
    return subprocess.run(
        [sys.executable, "-c", probe], cwd=REPO, env=environment(env), capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize(
    ("env", "argv", "expected"),
    [
        ({}, (), []),  # the plain web UI: no shape forced on it
        ({}, ("--class-picker",), ["SpikeShape", "SteadyShape", "StepShape", "SurgeShape"]),
        ({"LOCUST_USERCLASS_PICKER": "true"}, (), ["SpikeShape", "SteadyShape", "StepShape", "SurgeShape"]),
        ({"CHAOSLAB_SHAPE": "spike"}, (), ["SpikeShape"]),
        ({"CHAOSLAB_SHAPE": "Steady"}, (), ["SteadyShape"]),
        ({"CHAOSLAB_SHAPE": "surge"}, (), ["SurgeShape"]),
        ({"CHAOSLAB_SHAPE": "STEP"}, (), ["StepShape"]),
    ],
)
def test_locustfile_exposes_a_shape_only_when_asked(env, argv, expected):
    proc = _exposed_shapes(env, *argv)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == expected


def test_an_unknown_shape_is_refused_with_the_choices():
    proc = _exposed_shapes({"CHAOSLAB_SHAPE": "ramp"})
    assert proc.returncode == 1
    assert "CHAOSLAB_SHAPE='ramp' is not a shape; use one of: surge, step, spike, steady" in proc.stderr


class _Answer:
    """Just enough of a locust response for the checks."""

    def __init__(self, status: int, body: dict, replayed: bool) -> None:
        self.status_code, self.content = status, json.dumps(body).encode()
        self.headers = {"Idempotency-Replayed": "true"} if replayed else {}


def test_the_storm_judge_flags_a_second_order_and_a_second_fresh_answer():
    order = {"order_id": "o-1", "status": "confirmed", "items": [], "total_cents": 1}
    same = SameAnswer()
    assert same.check(_Answer(201, order, replayed=False)) is None
    assert same.check(_Answer(201, order, replayed=True)) is None
    assert same.check(_Answer(201, {**order, "order_id": "o-2"}, replayed=True)) == "one key, two different order_ids"
    assert same.check(_Answer(201, {**order, "total_cents": 2}, replayed=True)) == "one key, divergent answers"
    assert same.check(_Answer(201, order, replayed=False)) == "one key created more than one answer (two not replayed)"
    assert (
        same.check(_Answer(409, {"error": {"code": "idempotency_key_reused"}}, replayed=False))
        == "unexpected 409 idempotency_key_reused"
    )


def test_a_shopper_waits_as_long_as_retry_after_says_up_to_its_maximum():
    class Shed:
        status_code, content = 429, b"{}"

        def __init__(self, retry_after: str | None) -> None:
            self.headers = {"Retry-After": retry_after} if retry_after is not None else {}

    default = UserSettings.from_env({}).retry_after_max_s
    patient = UserSettings.from_env({"CHAOSLAB_RETRY_AFTER_MAX_S": "10"}).retry_after_max_s
    assert (default, patient) == (2.0, 10.0)
    assert retry_after_s(Shed("7"), default) == 2.0  # the shopper gives up waiting at 2 s
    assert retry_after_s(Shed("7"), patient) == 7.0
    assert retry_after_s(Shed("1"), patient) == 1.0
    assert retry_after_s(Shed(None), patient) is None  # no Retry-After: judged as a broken contract
    with pytest.raises(LoadSettingsError, match="CHAOSLAB_RETRY_AFTER_MAX_S='soon' is not a number"):
        UserSettings.from_env({"CHAOSLAB_RETRY_AFTER_MAX_S": "soon"})


def test_shoppers_turned_away_together_come_back_spread_over_the_jitter():
    jitter = UserSettings.from_env({}).retry_jitter_s
    assert jitter == 1.0
    assert UserSettings.from_env({"CHAOSLAB_RETRY_JITTER_S": "0"}).retry_jitter_s == 0.0
    draw = random.Random(7).random
    waits = [come_back_in_s(3.0, jitter, draw) for _ in range(1000)]
    assert all(3.0 <= w < 3.0 + jitter for w in waits)  # never before Retry-After said
    tenths = {int((w - 3.0) * 10) for w in waits}
    assert tenths == set(range(10))  # spread over the whole second, not one instant
    assert come_back_in_s(3.0, 0.0, draw) == 3.0  # no jitter: as told
    with pytest.raises(LoadSettingsError, match="CHAOSLAB_RETRY_JITTER_S"):
        UserSettings.from_env({"CHAOSLAB_RETRY_JITTER_S": "-1"})


def test_a_drill_load_runs_distributed_only_when_asked(tmp_path):
    one = locust_command("http://127.0.0.1:1", users=6, run_time_s=30)
    assert "--processes" not in one and "--only-summary" in one
    four = locust_command("http://127.0.0.1:1", users=6, run_time_s=30, workers=4, stats=tmp_path / "s")
    assert four[four.index("--processes") + 1] == four[four.index("--expect-workers") + 1] == "4"
    assert four[four.index("--csv") + 1] == str(tmp_path / "s")
    assert four[four.index("-u") + 1] == "6", "the users are the run's total, shared by the workers"
