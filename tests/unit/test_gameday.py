"""The game day's rules, without a stack: which incidents a seed picks at each
difficulty, what a diagnosis must name, the score against par and its penalties, the
collateral read from the audit stream, pids and verify, the timeline, and the files
that let another terminal reach the game."""

from __future__ import annotations

import stat
import subprocess
import sys
from dataclasses import replace

import pytest

from chaos.drills import budgets
from chaos.drills.catalog import BY_ID
from chaos.drills.model import Step
from chaos.gameday import collateral, debrief, picking, scoring
from chaos.gameday.journal import Game, NoGame, record_command
from chaos.gameday.timeline import events


def test_the_same_seed_replays_the_same_game_and_another_seed_differs():
    games = {seed: picking.pick(seed, "easy", 3, 1200) for seed in range(6)}
    assert picking.pick(3, "easy", 3, 1200) == games[3]
    assert len({tuple(g) for g in games.values()}) > 1


def test_each_incident_is_injected_early_in_its_own_slot():
    picks = picking.pick(7, "easy", 3, 900)
    for i, p in enumerate(picks):
        low, high = (300 * (i + share) for share in picking.INJECT_WINDOW)
        assert low <= p.at_s <= high
    assert len({p.incident for p in picks}) == 3


def test_every_wave_1_incident_is_playable_and_a_drill_action_other_than_load_is_not():
    easy = {i.id for i in picking.pool("easy")}
    wave_1 = {"inventory-lock", "worker-unhealthy", "monitoring-down", "multi-failure", "gateway-overload"}
    assert wave_1 | {"duplicate-storm", "cannot-scale", "payments-errors"} <= easy
    odd = replace(BY_ID["payments-errors"], inject=(Step(action="flood_disk"),))
    assert not picking.playable(odd)
    unseen = replace(BY_ID["payments-errors"], detection="customer-email")  # type: ignore[arg-type]
    assert not picking.playable(unseen)


@pytest.mark.parametrize(
    ("incident", "cause"),
    [
        ("worker-unhealthy", {("payments", "error_rate")}),  # set by a script on replica 2
        ("inventory-lock", {("inventory", "lock_contention_ms")}),  # its peak load is background
        ("gateway-overload", {("gateway", "load")}),  # only load: the traffic at the door
        ("duplicate-storm", {("gateway", "load")}),
        ("cannot-scale", {("payments", "load")}),  # the service its runbook scales
        ("multi-failure", {("redis", "down"), ("prometheus", "down"), ("payments", "down")}),
        ("crashloop", {("notifications", "crashloop")}),  # its faults say which, not the script's default
    ],
)
def test_the_cause_of_each_incident(incident, cause):
    assert picking.causes(BY_ID[incident]) == cause


def test_a_script_names_its_fault_and_service_unless_told_another():
    assert picking.script_cause("chaos/scripts/payment_errors.sh enable 1.0 --replica 2") == ("payments", "error_rate")
    assert picking.script_cause("chaos/scripts/db_pool_hold.sh enable 10 --service inventory") == (
        "inventory",
        "db_pool_hold",
    )
    assert picking.script_cause("chaos/scripts/payment_errors.sh disable") is None
    assert picking.script_cause("chaos/scripts/no_such.sh enable 1") is None


def test_medium_silences_the_cause_behind_a_customer_symptom():
    for seed in range(6):
        for p in picking.pick(seed, "medium", 2, 600):
            assert p.silence == p.definition.alert and p.definition.slos
            assert p.definition.detection == "prometheus"  # Watchdog is no alert to silence


@pytest.mark.parametrize("seed", range(8))
def test_hard_adds_a_second_incident_or_starts_blind(seed):
    picks = picking.pick(seed, "hard", 1, 600)
    assert len(picks) == 2 and picks[0].at_s == picks[1].at_s
    if picking.BLIND in {p.incident for p in picks}:
        assert picks[0].incident == picking.BLIND  # visibility goes first
    assert not picking.causes(picks[0].definition) & picking.causes(picks[1].definition)


@pytest.mark.parametrize("incident", ["monitoring-down", "multi-failure"])
def test_hard_never_takes_monitoring_down_twice(incident):
    for seed in range(12):
        picks = picking.pick(seed, "hard", 1, 600, only=(incident, "payments-latency"))
        blind = [p.incident for p in picks if ("prometheus", "down") in picking.causes(p.definition)]
        assert len(picks) == 2 and len(blind) == 1, picks
        assert not picking.causes(picks[0].definition) & picking.causes(picks[1].definition)


@pytest.mark.parametrize(
    ("difficulty", "count", "duration_s", "only", "message"),
    [
        ("nightmare", 1, 600, (), "difficulty must be one of easy, medium, hard"),
        ("easy", 0, 600, (), "--incidents must be between 1 and"),
        ("easy", 1, 30, (), "--duration must be at least 1m"),
        ("medium", 1, 600, ("monitoring-down",), "not playable at medium: monitoring-down"),
    ],
)
def test_a_game_that_cannot_be_set_up_says_why(difficulty, count, duration_s, only, message):
    with pytest.raises(picking.GameError, match=message):
        picking.pick(1, difficulty, count, duration_s, only)


def test_a_diagnosis_is_right_when_it_names_the_cause_with_or_without_its_fault():
    errors, down = BY_ID["payments-errors"], BY_ID["payments-down"]
    assert picking.diagnosis_right([errors], "payments", None)
    assert picking.diagnosis_right([errors], "payments", "error_rate")
    assert not picking.diagnosis_right([errors], "payments", "latency_ms")
    assert not picking.diagnosis_right([errors], "inventory", None)
    assert picking.diagnosis_right([down], "payments", "down")
    assert picking.programs(BY_ID["outbox-stuck"]) == {"orders"}
    assert picking.diagnosis_right([BY_ID["worker-unhealthy"]], "payments", "error_rate")
    assert picking.diagnosis_right([BY_ID["gateway-overload"]], "gateway", "load")
    assert not picking.diagnosis_right([BY_ID["gateway-overload"]], "orders", "load")


def _par() -> scoring.Par:
    return scoring.Par.of(budgets.of(BY_ID["payments-errors"], "ci"), "ci")


def test_par_is_the_drill_budgets_plus_a_reaction_per_move():
    b, par = budgets.of(BY_ID["payments-errors"], "ci"), _par()
    reaction = scoring.REACTION_S["ci"]
    assert par.detect == b.detect_s
    assert par.acknowledge == b.detect_s + reaction
    assert par.mitigate == b.detect_s + 2 * reaction + b.recover_s


def test_within_par_scores_100_and_beyond_par_loses_in_proportion():
    par = _par()
    fast = {"acknowledge": 10.0, "detect": 10.0, "localize": 20.0, "mitigate": 60.0}
    inc = scoring.score_incident("payments-errors", fast, par)
    assert inc.score == 100 and inc.within_par
    slow = {**fast, "mitigate": par.mitigate * 2}
    late = scoring.score_incident("payments-errors", slow, par)
    assert late.points["mitigate"] == 50 and late.score == round((100 * 4 + 3 * 50) / 7, 1)
    assert not late.within_par
    never = scoring.score_incident("payments-errors", {**fast, "localize": None}, par)
    assert never.points["localize"] == 0 and not never.within_par


def test_an_incident_injected_while_monitoring_is_down_is_timed_from_its_return():
    assert scoring.clock_start(100.0, []) == 100.0
    assert scoring.clock_start(100.0, [(95.0, 160.0)]) == 160.0  # blind at inject: from the return
    assert scoring.clock_start(100.0, [(100.0, 160.0)]) == 160.0  # both at the same moment
    assert scoring.clock_start(100.0, [(40.0, 90.0)]) == 100.0  # monitoring was back already
    assert scoring.clock_start(100.0, [(120.0, 160.0)]) == 100.0  # went blind after: seen first
    assert scoring.clock_start(100.0, [(95.0, None)]) == 100.0  # never back: unseen, scored so


def test_penalties_come_off_the_game_score_and_break_par():
    inc = scoring.score_incident(
        "payments-errors", {"acknowledge": 1.0, "detect": 1.0, "localize": 1.0, "mitigate": 1.0}, _par()
    )
    penalties = [scoring.Penalty("wrong diagnosis", "x"), scoring.Penalty("needless restart", "y")]
    game = scoring.score_game([inc], penalties)
    assert game.total == 80 and not game.within_par
    assert scoring.score_game([inc], []).within_par
    assert scoring.score_game([inc], [scoring.Penalty("orders lost or doubled", "z")] * 6).total == 0
    assert [p["points"] for p in game.as_dict()["penalties"]] == [10, 10]


def test_collateral_from_the_audit_stream_skips_the_game_masters_faults():
    entries = [
        {"action": "set", "key": "chaos:payments:error_rate", "value": "0.9", "who": "gm", "at": "100"},
        {"action": "set", "key": "chaos:inventory:latency_ms", "value": "900", "who": "bob", "at": "110"},
        {"action": "clear", "key": "chaos:payments:error_rate", "who": "bob", "at": "120"},
        {"action": "clear", "key": "chaos:gateway:rate_limit_rps", "who": "bob", "at": "121"},
        {"action": "set", "key": "chaos:orders:outbox_paused", "value": "1", "who": "old", "at": "50"},
    ]
    found = collateral.from_audit(entries, since=100, injected={"chaos:payments:error_rate"})
    assert [(p.kind, p.detail.split()[0]) for p in found] == [
        ("fault added", "chaos:inventory:latency_ms"),
        ("wholesale clear", "chaos:gateway:rate_limit_rps"),
    ]


def test_collateral_from_pids_and_verify():
    before = {"payments": 10, "notifications": 11, "inventory": 12, "postgres": 13}
    after = {"payments": 20, "notifications": 21, "inventory": 12}
    found = collateral.from_pids(before, after, involved={"payments"})
    assert [p.detail.split()[0] for p in found] == ["notifications", "postgres"]
    verdict = collateral.from_verify({"double_charge": ["o1", "o2"]}, {})
    assert [(p.kind, p.detail) for p in verdict] == [("verify check failed", "double_charge: ['o1', 'o2']")]


def test_each_order_lost_or_doubled_costs_its_own_penalty_once():
    lines = {
        "ledger_answers_match_orders": [
            "key k1: answered 201 confirmed total 900 for order o1, which does not exist",
            "key k2: answered 201 confirmed total 900 for order o2, which is failed total 900",
            "key k1: answered 201 confirmed total 900 for order o1, which does not exist",  # a repeat's answer
        ],
        "ledger_one_order_per_key": ["key k3: answered with order(s) o3, o4"],
    }
    failed = {name: found[:1] for name, found in lines.items()}  # verify keeps a few examples
    verdict = collateral.from_verify(failed, lines)
    assert [p.kind for p in verdict] == ["orders lost or doubled"] * 3
    assert [p.detail.split()[2] for p in verdict] == ["k1:", "k2:", "k3:"]
    assert scoring.score_game([], verdict).penalties == verdict
    # The full list unread (no ledger files): each failed ledger check counts one order at least.
    assert len(collateral.from_verify(failed, {})) == 2


def test_a_fault_deleted_by_hand_is_cleared_outside_the_tools():
    gone = {"chaos:payments:error_rate": 130.0, "chaos:orders:outbox_paused": 106.0, "chaos:gateway:x": 140.0}
    expires = {"chaos:payments:error_rate": 700.0, "chaos:orders:outbox_paused": 105.0, "chaos:gateway:x": None}
    audit = [
        {"action": "set", "key": "chaos:payments:error_rate", "value": "0.9", "at": "100"},
        {"action": "clear", "key": "chaos:gateway:x", "who": "ann", "at": "139.5"},  # the runbook's script
    ]
    found = collateral.from_vanished(gone, expires, audit)  # outbox_paused: its TTL ended
    assert [(p.kind, p.detail.split()[0]) for p in found] == [
        ("fault cleared outside the tools", "chaos:payments:error_rate")
    ]
    assert "no clear in chaos:audit" in found[0].detail and found[0].points == 10
    late_clear = [*audit, {"action": "clear", "key": "chaos:payments:error_rate", "at": "200"}]
    assert len(collateral.from_vanished(gone, expires, late_clear)) == 1  # a clear after it was gone is no alibi


def _result() -> dict:
    par = _par()
    inc = scoring.score_incident(
        "payments-errors", {"acknowledge": 5.0, "detect": 4.0, "localize": 9.0, "mitigate": None}, par
    )
    score = scoring.score_game([inc], [scoring.Penalty("wrong diagnosis", "notifications at 107")])
    return {
        "game": "g1",
        "difficulty": "easy",
        "seed": 4,
        "profile": "ci",
        "responder": None,
        "started_at": 90.0,
        "ended_at": 200.0,
        "picks": [{"incident": "payments-errors", "injected_at": 100.0, "detected_at": 104.0, "over_at": None}],
        "alerts": [{"t": 104.5, "alert": "PaymentsErrors", "state": "firing"}],
        "audit": [{"action": "set", "key": "chaos:payments:error_rate", "value": "0.9", "at": "100.2"}],
        "actions": [
            {"t": 105.0, "who": "ann", "action": "ack"},
            {"t": 107.0, "who": "ann", "action": "diagnose", "service": "notifications", "fault": None},
        ],
        "commands": [{"t": 106.0, "who": "ann", "command": "chaoslab alerts"}],
        "score": score.as_dict(),
        "verify": {"ok": True},
        "orders": {"attempted": 10, "succeeded": 9},
        "timeline": {"order success rate": [[95.0, 1.0], [150.0, 0.2]]},
    }


def test_the_timeline_orders_faults_alerts_and_every_action():
    texts = [(e.source, e.text) for e in events(_result())]
    assert texts == [
        ("game", "payments-errors injected"),
        ("audit", "set chaos:payments:error_rate 0.9"),
        ("game", "payments-errors detected"),
        ("alert", "PaymentsErrors firing"),
        ("action", "ann: ack"),
        ("command", "ann: chaoslab alerts"),
        ("action", "ann: diagnose notifications"),
    ]


def test_the_debrief_names_each_penalty_the_formula_and_the_runbook_section(tmp_path):
    text = debrief.write(_result(), tmp_path).read_text()
    assert "wrong diagnosis</b> (-10): notifications at 107" in text
    assert "3 x mitigate" in text and "over par" in text
    assert "payment_errors.sh disable" in text  # the runbook section that applied
    assert "<svg" in text and "chaoslab alerts" in text
    assert "could not go on" not in text
    failed = debrief.page({**_result(), "failure": "`chaoslab scale payments 3` exited 1"})
    assert "The game could not go on:</b> `chaoslab scale payments 3` exited 1" in failed


def test_another_terminal_reaches_the_game_through_its_files(tmp_path, monkeypatch):
    run_dir = tmp_path / "run"
    with pytest.raises(NoGame, match="no game is in progress"):
        Game.current(run_dir)
    game = Game.create(run_dir, "g1", "secret", {"difficulty": "easy"})
    assert stat.S_IMODE((game.path / "token").stat().st_mode) == 0o600
    Game.current(run_dir).record("actions", action="ack")
    monkeypatch.setenv("CHAOSLAB_RUN_DIR", str(run_dir))
    record_command(["alerts"])
    record_command(["--run-dir", str(run_dir), "restart", "payments"])
    record_command(["gameday", "ack"])  # already an action
    assert [a["action"] for a in game.entries("actions")] == ["ack"]
    assert [c["command"] for c in game.entries("commands")] == [
        "chaoslab alerts",
        f"chaoslab --run-dir {run_dir} restart payments",
    ]
    Game.end(run_dir)
    record_command(["alerts"])
    assert len(game.entries("commands")) == 2
    assert Game.latest(run_dir).path == game.path


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "chaos.cli", "gameday", *args], capture_output=True, text=True, timeout=60, check=False
    )


def test_the_responders_commands_say_clearly_when_there_is_no_game_or_a_bad_guess(tmp_path):
    no_game = _cli("ack", "--run-dir", str(tmp_path))
    assert no_game.returncode == 1 and "no game is in progress" in no_game.stderr
    Game.create(tmp_path, "g1", "secret", {})
    bad = _cli("diagnose", "billing", "--run-dir", str(tmp_path))
    assert bad.returncode == 2 and "unknown service 'billing'" in bad.stderr
    worse = _cli("diagnose", "payments", "slowness", "--run-dir", str(tmp_path))
    assert worse.returncode == 2 and "unknown fault 'slowness'" in worse.stderr
    duration = _cli("start", "--duration", "soon", "--run-dir", str(tmp_path))
    assert duration.returncode == 2 and "--duration takes a duration" in duration.stderr
    assert "Traceback" not in bad.stderr + worse.stderr + duration.stderr
