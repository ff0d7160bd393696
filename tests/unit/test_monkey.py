"""chaoslab monkey without a stack: the seeded schedule, the options it refuses (one line,
exit 2, no traceback), the ledger tail and the report page."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from chaos import monkey
from chaos.cli import app
from chaos.layout import SERVICES, StackLayout


def test_the_same_seed_gives_the_same_kills():
    first = monkey.schedule(42, SERVICES, 5, 120)
    assert first == monkey.schedule(42, SERVICES, 5, 120)
    assert first != monkey.schedule(43, SERVICES, 5, 120)


def test_a_kill_every_interval_while_the_run_lasts_never_at_its_end():
    plan = monkey.schedule(7, SERVICES, 5, 120)
    assert [p.at_s for p in plan] == [5.0 * k for k in range(1, 24)]  # 23 kills, the last at 115 s
    assert {p.program for p in plan} <= set(SERVICES)
    assert len({p.program for p in plan}) > 1
    assert [p.at_s for p in monkey.schedule(1, ["orders"], 2, 12)] == [2.0, 4.0, 6.0, 8.0, 10.0]


def test_targets_and_infra():
    assert monkey.parse_targets("orders, payments,orders", False) == ("orders", "payments")
    assert monkey.parse_targets("orders", True) == ("orders", "postgres", "redis")
    for bad, words in (("ordres", "unknown target 'ordres'"), ("redis", "--include-infra"), (" , ", "at least one")):
        with pytest.raises(monkey.MonkeyError, match=words):
            monkey.parse_targets(bad, False)


def test_programs_of_a_scaled_service_are_its_replicas(tmp_path: Path):
    layout = StackLayout(run_dir=tmp_path, extra_replicas={"payments": [18100, 18101]})
    assert monkey.programs_of(layout, ["payments", "orders", "redis"]) == [
        "payments",
        "payments-1",
        "payments-2",
        "orders",
        "redis",
    ]


@pytest.mark.parametrize(
    ("text", "seconds"), [("5s", 5), ("500ms", 0.5), ("2m", 120), ("1.5", 1.5), (" 3 s ", 3), ("1h", 3600)]
)
def test_durations(text: str, seconds: float):
    assert monkey.parse_duration(text, "--interval") == pytest.approx(seconds)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--interval", "fast"], "--interval takes a time such as 5s"),
        (["--interval", "-5s"], "--interval takes a time such as 5s"),
        (["--interval", "0.1s"], "--interval must be between 0.5s and 1h"),
        (["--duration", "3s", "--interval", "5s"], "--duration must be longer than --interval"),
        (["--targets", "gateway,database"], "unknown target 'database'"),
        (["--users", "0"], "--users must be between 1 and 500"),
    ],
)
def test_bad_options_are_one_line_and_exit_2(tmp_path: Path, args: list[str], message: str):
    # No stack in this run directory: the options are refused before it is looked for.
    result = CliRunner().invoke(app, ["monkey", "--run-dir", str(tmp_path), *args])
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    # One message (rich wraps it at the terminal's width): "error: ..." and nothing else.
    text = " ".join(line.strip() for line in result.stderr.strip().splitlines())
    assert text.startswith("error:") and text.count("error:") == 1 and message in text, result.stderr
    assert "Traceback" not in result.output


def test_help_explains_itself():
    result = CliRunner().invoke(app, ["monkey", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for words in ("--interval", "--seed", "--include-infra", "SIGKILL", "ledger", "Exit code"):
        assert words in result.output


def test_the_ledger_tail_counts_whole_lines_only(tmp_path: Path):
    path = tmp_path / "ledger.jsonl"
    tail = monkey.LedgerTail(path, started=1000.0)
    tail.poll()  # no file yet
    lines = [
        {"t": 1000.5, "key": "k1", "status": 201},
        {"t": 1001.2, "key": "k2", "status": 503},
        {"t": 1001.9, "key": "k2", "status": 201},
    ]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines) + '{"t": 1002.0, "key"')
    tail.poll()
    assert dict(tail.by_status) == {201: 2, 503: 1}
    assert tail.keys == {"k1", "k2"} and tail.accepted == {"k1", "k2"}
    assert tail.per_second == {0: {201: 1}, 1: {503: 1, 201: 1}}
    with path.open("a") as f:
        f.write(': "k3", "status": 0}\n')
    tail.poll()
    assert tail.by_status[0] == 1 and tail.per_second[2] == {0: 1}


def test_the_report_names_every_kill(tmp_path: Path):
    result = monkey.Result(
        target="native",
        profile="ci",
        seed=3,
        interval_s=2,
        duration_s=6,
        users=2,
        targets=["orders", "payments"],
        recovery_budget_s=60,
        wall_s=9,
        phase="done",
    )
    result.kills = [
        monkey.Kill(2.0, 2.0, "orders", 1234, True),
        monkey.Kill(4.0, 4.0, "payments", None, False, "skipped: payments is starting"),
    ]
    result.per_second = {"1": {"201": 3}, "2": {"503": 1, "201": 1}}
    result.recovery.kills_ended_s = 6.0
    result.recovery.healthy_after_s = 1.0
    monkey.write_report(result, tmp_path)
    data = json.loads((tmp_path / "report.json").read_text())
    assert [k["program"] for k in data["kills"]] == ["orders", "payments"]
    assert data["kills_done"] == 1 and data["verdict"] == "clean"
    page = (tmp_path / "index.html").read_text()
    assert "kill -9 orders" in page and "skipped: payments is starting" in page and "<svg" in page
