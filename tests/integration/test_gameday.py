"""Game day against the session stack (ci profile): while a game is on, `chaoslab chaos
list` hides the faults from anyone without the game master's token; the baseline
responder plays one easy incident within its par, and monitoring down, which only the
dead man's switch detects, to its end; a wrong responder (an innocent service blamed
and restarted) scores worse, and the debrief names each penalty."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import redis

from chaos.gameday import secrecy
from chaos.layout import StackLayout
from tests.support.stack import assert_verify_clean

pytestmark = pytest.mark.stack
REPO = Path(__file__).resolve().parents[2]
INCIDENT = "payments-errors"
# The inject comes 9-45 s into a 3-minute game; payments-errors' par to mitigate is 175 s
# in ci, and the game ends as soon as the stack has recovered.
GAME_S = 420


def chaoslab(stack: StackLayout, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "chaos.cli", *args, "--run-dir", str(stack.run_dir)]
    # The token comes only from `env`: a trainer's own shell variable is not this test's.
    inherited = {k: v for k, v in os.environ.items() if k != "CHAOSLAB_GAMEMASTER_TOKEN"}
    full_env = {**inherited, "CHAOSLAB_TARGET": "native", **(env or {})}
    return subprocess.run(command, cwd=REPO, env=full_env, capture_output=True, text=True, timeout=60, check=False)


def play(stack: StackLayout, responder: str, incident: str = INCIDENT) -> dict:
    """One easy game of `incident` with `responder`; its result (`gameday report --json`)."""
    command = [sys.executable, "-m", "chaos.cli", "gameday", "start", "--run-dir", str(stack.run_dir)]
    command += ["--seed", "5", "--duration", "3m", "--incident", incident]
    command += ["--responder", f"{sys.executable} -m chaos.gameday.responders.{responder}"]
    proc = subprocess.Popen(
        command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )
    try:
        out, _ = proc.communicate(timeout=GAME_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGINT)  # the game master rolls back on Ctrl-C
        out, _ = proc.communicate(timeout=120)
        pytest.fail(f"the game did not end within {GAME_S}s: {out[-3000:]}")
    assert proc.returncode == 0, out[-3000:]
    report = chaoslab(stack, "gameday", "report", "--json")
    assert report.returncode == 0, report.stderr
    return json.loads(report.stdout)


@pytest.fixture(scope="module")
def baseline(stack: StackLayout) -> dict:
    return play(stack, "baseline")


def test_chaos_list_hides_faults_during_a_game_without_the_token(stack: StackLayout):
    client = redis.Redis.from_url(stack.redis_url, decode_responses=True)
    try:
        assert chaoslab(stack, "chaos", "set", "inventory", "latency_ms", "5", "--ttl", "60s").returncode == 0
        client.set(secrecy.GAME_KEY, json.dumps({"master_token_sha256": secrecy.token_digest("gm-token")}))
        hidden = chaoslab(stack, "chaos", "list", "--json")
        assert json.loads(hidden.stdout) == {"hidden": secrecy.HIDDEN}
        assert "latency_ms" not in chaoslab(stack, "chaos", "list", "--token", "wrong").stdout
        shown = chaoslab(stack, "chaos", "list", "--json", env={"CHAOSLAB_GAMEMASTER_TOKEN": "gm-token"})
        assert [f["key"] for f in json.loads(shown.stdout)] == ["chaos:inventory:latency_ms"]
        client.delete(secrecy.GAME_KEY)
        assert "latency_ms" in chaoslab(stack, "chaos", "list").stdout
    finally:
        client.delete(secrecy.GAME_KEY)
        client.close()
        chaoslab(stack, "chaos", "clear")


@pytest.mark.timeout(GAME_S + 180)
def test_the_baseline_responder_plays_an_easy_game_within_par(stack: StackLayout, baseline: dict):
    [pick] = baseline["picks"]
    assert pick["incident"] == INCIDENT and pick["over_at"] is not None
    score = baseline["score"]
    assert score["within_par"], score
    assert score["total"] == 100 and score["penalties"] == []
    assert [a["action"] for a in baseline["actions"]][:2] == ["ack", "diagnose"]
    assert baseline["verify"]["ok"]
    assert "chaos/scripts/payment_errors.sh disable" in {c["command"] for c in baseline["commands"]}
    with redis.Redis.from_url(stack.redis_url) as client:
        assert client.get(secrecy.GAME_KEY) is None  # the game is over: nothing hidden any more
    assert_verify_clean(stack)


@pytest.mark.timeout(2 * GAME_S + 180)
def test_a_wrong_responder_scores_worse_and_the_debrief_names_each_penalty(stack: StackLayout, baseline: dict):
    wrong = play(stack, "wrong")
    score = wrong["score"]
    assert score["total"] < baseline["score"]["total"] and not score["within_par"]
    # Its restart can start a second incident of its own making (the outbox ages while
    # notifications restarts): at least the first wrong moves are named.
    named = {(p["kind"], p["detail"].split()[0]) for p in score["penalties"]}
    assert {("wrong diagnosis", "notifications"), ("needless restart", "notifications")} <= named, named
    page = (stack.run_dir / "gameday" / wrong["game"] / "report.html").read_text()
    for penalty in score["penalties"]:
        assert f"<b>{penalty['kind']}</b> (-{penalty['points']})" in page
    assert "chaoslab restart notifications" in page  # the command, in the timeline
    assert_verify_clean(stack)


@pytest.mark.timeout(GAME_S + 180)
def test_the_baseline_responder_ends_monitoring_down_seen_only_by_the_dead_mans_switch(stack: StackLayout):
    game = play(stack, "baseline", "monitoring-down")
    [pick] = game["picks"]
    assert pick["detected_at"] is not None and pick["over_at"] is not None  # Watchdog left, then came back
    [incident] = game["score"]["incidents"]
    assert None not in incident["times"].values(), incident  # acknowledged, localized, mitigated
    assert game["score"]["penalties"] == []
    assert {"action": "diagnose", "service": "prometheus", "fault": "down"}.items() <= game["actions"][1].items()
    assert "chaoslab start prometheus" in {c["command"] for c in game["commands"]}
    assert_verify_clean(stack)
