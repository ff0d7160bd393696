"""Every way a drill can fail, proven with the real engine against the session's stack.

Each test builds a small incident of its own (never one of the catalogue), made to fail
in exactly one way, with budgets of seconds, and asserts the verdict, the step that
failed and its message. A drill whose verdict cannot fail proves nothing: if the engine
stops catching one of these failure modes, its test fails.

Most of them start from one quick, real incident (payments fails 90 % of its charges,
PaymentsErrors fires, the fault is cleared, the stack recovers) and break one thing on
top of it. The stack is shared with the tests that run after these: every fault and
every change to the data is undone, and `chaoslab verify` is clean when the module ends.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest
import redis

from chaos.drills.engine import Drill, DrillResult, StepResult
from chaos.drills.model import Incident, sh
from chaos.layout import StackLayout
from tests.support.stack import assert_verify_clean

REPO = Path(__file__).resolve().parents[2]
STRAY_KEY = "chaos:verdict-test:error_rate"  # a service no runbook command can clear
CORRUPT_SKU = "SKU-010"
RETAGGED = ":verdict-test"  # appended to one order's idempotency key, then taken off again


def incident(**changes: object) -> Incident:
    """The quick incident: payments fails most charges, PaymentsErrors fires, the fix works."""
    fields: dict[str, object] = {
        "id": "verdict-test",
        "title": "a drill built to fail one way",
        "severity": "SEV3",
        "what_happens": "payments fails most charges",
        "alert": "PaymentsErrors",
        "symptoms": (),
        "diagnose": (),
        "inject": (sh("chaos/scripts/payment_errors.sh enable 0.9"),),
        "remediate": (sh("chaos/scripts/payment_errors.sh disable"),),
        "recovered": "PaymentsErrors resolved",
        "data_loss": "none",
    }
    return Incident(**{**fields, **changes})  # type: ignore[arg-type]


def run(
    stack: StackLayout, inc: Incident, log_dir: Path, *, detect_s: float = 40, recover_s: float = 40, workers: int = 1
) -> DrillResult:
    """The real engine, with budgets of seconds instead of the profile's."""
    drill = Drill(stack, inc, log_dir=log_dir, workers=workers)
    drill.budgets = dataclasses.replace(drill.budgets, detect_s=detect_s, recover_s=recover_s)
    drill.result.detect_budget_s, drill.result.recover_budget_s = detect_s, recover_s
    drill.steady_budget_s = 40
    drill.verify_budget_s = 5
    drill.rollback_confirm_s = 2
    return drill.run()


def failed(result: DrillResult) -> StepResult:
    """The one step that failed (and every step before it passed)."""
    assert not result.ok, f"the drill passed: {result.steps}"
    bad = [s for s in result.steps if not s.ok]
    assert len(bad) == 1, f"more than one step failed: {bad}"
    return bad[0]


def steps(result: DrillResult) -> list[str]:
    return [s.name for s in result.steps]


def chaoslab(stack: StackLayout, *args: str) -> None:
    env = {
        **os.environ,
        "CHAOSLAB_RUN_DIR": str(stack.run_dir),
        "REDIS_URL": stack.redis_url,
        "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}",
    }
    done = subprocess.run([sys.executable, "-m", "chaos.cli", *args], env=env, cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, f"chaoslab {' '.join(args)}: {done.stdout}{done.stderr}"


def sql(stack: StackLayout, statement: str) -> list[str]:
    """Run one statement; the first column of the rows it returns."""

    async def go() -> list[str]:
        conn = await asyncpg.connect(stack.database_url, timeout=10)
        try:
            return [str(row[0]) for row in await conn.fetch(statement)]
        finally:
            await conn.close()

    return asyncio.run(go())


def untag(stack: StackLayout) -> list[str]:
    """Give the retagged order its own key back; the ids of the orders it touched."""
    return sql(
        stack,
        f"UPDATE orders.orders SET idempotency_key = left(idempotency_key, -{len(RETAGGED)}) "
        f"WHERE idempotency_key LIKE '%{RETAGGED}' RETURNING order_id",
    )


@pytest.fixture(scope="module", autouse=True)
def leave_the_stack_clean(stack: StackLayout) -> Iterator[None]:
    yield
    chaoslab(stack, "chaos", "clear")
    redis.Redis.from_url(stack.redis_url).delete(STRAY_KEY)
    untag(stack)
    assert_verify_clean(stack, timeout_s=60)


# -- distributed load --------------------------------------------------------------------


def test_a_drill_whose_load_runs_over_two_locust_workers_passes_and_ledgers_both(stack, tmp_path):
    """`chaoslab drill --workers 2`: each worker process keeps its own ledger file, and
    the verdict reads every one of them."""
    result = run(stack, incident(), tmp_path, workers=2)
    assert result.ok, result.steps
    assert result.ledger["keys"] > 0
    ledgers = {p.name.rsplit("-ledger-", 1)[1] for p in tmp_path.glob("verdict-test-locust-*-ledger-*.jsonl")}
    assert len(ledgers) >= 2, sorted(p.name for p in tmp_path.iterdir())  # one per worker process


# -- steady state ------------------------------------------------------------------------


def test_a_steady_state_that_never_holds_fails_the_drill_before_any_fault(stack, tmp_path):
    result = run(stack, incident(steady_success=1.01), tmp_path)  # a success rate can never be over 1
    step = failed(result)
    assert step.name == "steady state"
    assert "the steady state never held" in step.detail
    assert "success rate" in step.detail.partition("never held")[2]  # and what kept it from holding
    assert steps(result) == ["steady state", "roll back"]  # nothing injected, nothing to verify


# -- detect ------------------------------------------------------------------------------


def test_an_alert_that_never_fires_fails_detect(stack, tmp_path):
    result = run(stack, incident(alert="PaymentsDown", inject=()), tmp_path, detect_s=3)  # payments stays up
    step = failed(result)
    assert step.name == "detect"
    assert "PaymentsDown never fired (3s)" in step.detail
    assert result.time_to_detect_s is None


def test_a_detection_later_than_its_budget_fails_even_when_the_alert_fires(stack, tmp_path):
    """The budget runs from the inject mark, as the reported time does: an inject step
    that takes longer than the whole budget cannot be followed by an on-time detection."""
    slow_inject = (sh("chaos/scripts/payment_errors.sh enable 0.9"), sh("sleep 20"))
    result = run(stack, incident(inject=slow_inject), tmp_path, detect_s=15)
    step = failed(result)
    assert step.name == "detect"
    assert "over the 15s budget" in step.detail, step.detail
    assert result.time_to_detect_s is not None and result.time_to_detect_s > 15


# -- recover -----------------------------------------------------------------------------


def test_a_remediation_that_does_not_fix_fails_recover(stack, tmp_path):
    result = run(stack, incident(remediate=(sh("true"),)), tmp_path, recover_s=8)  # the fault stays on
    step = failed(result)
    assert step.name == "recover"
    fixing_s = next(s.seconds for s in result.steps if s.name == "remediate")
    assert result.recover_budget_s is not None and 8 < result.recover_budget_s <= 8 + fixing_s + 1  # plus its time
    assert f"did not recover within budget ({result.recover_budget_s}s)" in step.detail
    assert steps(result)[-1] == "roll back" and result.steps[-1].ok  # the rollback cleared the fault


def test_no_order_finishing_is_not_recovered(stack, tmp_path):
    """The alert resolves, but the gateway turns every order away (503), so no order
    finishes and the success rate is NaN: that is not a success rate of 0.9."""
    # The gateway turns orders away first, and the payments fault goes only once no order
    # is left in the success rate's window: else the orders that slipped through before
    # would make a rate, and the drill would rightly count it.
    no_rate_left = tmp_path / "no_rate_left.py"
    no_rate_left.write_text(
        textwrap.dedent("""
            import json, math, os, time, urllib.parse, urllib.request
            query = urllib.parse.urlencode({"query": "order_success_rate"})
            url = os.environ["PROMETHEUS_URL"] + "/api/v1/query?" + query
            deadline = time.monotonic() + 90
            while time.monotonic() < deadline:
                result = json.load(urllib.request.urlopen(url, timeout=3))["data"]["result"]
                if not result or math.isnan(float(result[0]["value"][1])):
                    raise SystemExit(0)
                time.sleep(0.5)
            raise SystemExit("order_success_rate still has a value")
        """)
    )
    remediate = (
        sh("chaoslab chaos set gateway error_status 503"),
        sh("chaoslab chaos set gateway error_rate 1.0"),
        sh(f"{sys.executable} {no_rate_left}"),
        sh("chaos/scripts/payment_errors.sh disable"),
    )
    result = run(stack, incident(remediate=remediate), tmp_path, recover_s=25)
    step = failed(result)
    assert step.name == "recover"
    # The remediation's own time (its wait for the rate to go) is added to the budget.
    assert result.recover_budget_s is not None and result.recover_budget_s > 25
    assert f"did not recover within budget ({result.recover_budget_s}s)" in step.detail
    # The clients were turned away: counted as the incident's effect, not a contract violation.
    assert result.load_failures["expected"], result.load_failures
    assert not result.load_failures["violations"], result.load_failures


# -- verify ------------------------------------------------------------------------------


def test_data_that_verify_rejects_fails_the_drill_after_a_clean_recovery(stack, tmp_path):
    """One more unit of initial stock than the shelves and reservations account for."""
    sql(stack, f"UPDATE inventory.products SET initial = initial + 1 WHERE sku = '{CORRUPT_SKU}'")
    try:
        result = run(stack, incident(), tmp_path)
    finally:
        sql(stack, f"UPDATE inventory.products SET initial = initial - 1 WHERE sku = '{CORRUPT_SKU}'")
    step = failed(result)
    assert step.name == "verify"
    assert "verify still fails" in step.detail and "stock_conserved" in step.detail, step.detail
    assert CORRUPT_SKU in step.detail
    assert result.time_to_detect_s is not None and result.time_to_recover_s is not None


def test_a_contract_violation_seen_by_locust_fails_the_drill(stack, tmp_path):
    """The gateway answers some requests 500 while the fault is on: the stack recovers
    and the databases are clean, but a client was told something the contract forbids."""
    inject = (
        sh("chaos/scripts/payment_errors.sh enable 0.9"),
        sh("chaoslab chaos set gateway error_status 500"),
        sh("chaoslab chaos set gateway error_rate 0.2"),
    )
    remediate = (sh("chaos/scripts/payment_errors.sh disable"), sh("chaoslab chaos clear gateway"))
    result = run(stack, incident(inject=inject, remediate=remediate), tmp_path)
    step = failed(result)
    assert step.name == "verify"
    assert "locust's checks found contract violations" in step.detail, step.detail
    assert "unexpected 500 injected_fault" in step.detail
    assert result.verify["ok"], result.verify  # the databases themselves are clean
    assert result.load_failures["violations"].get("unexpected 500 injected_fault", 0) > 0


# -- the client ledger -------------------------------------------------------------------


def test_an_answer_the_database_no_longer_keeps_fails_the_drill_and_names_the_order(stack, tmp_path):
    """A client was answered with an order for its key; the remediation (a bad one) moves
    that order to another key. The databases still agree with each other, so only the
    client ledger (every answer the drill's loads got) can tell."""
    # The order must be one this drill's own clients were answered 201 for: its ledger
    # (in the drill's log directory) says which; an older order is in no ledger of it.
    script = tmp_path / "retag.py"
    script.write_text(
        textwrap.dedent(f"""
            import glob, json, subprocess, time
            deadline = time.monotonic() + 60
            while True:  # a busy machine may not have confirmed an order yet: wait for one
                lines = [line for f in glob.glob({str(tmp_path)!r} + "/*ledger*.jsonl") for line in open(f)]
                entries = [json.loads(line) for line in lines if line.endswith("\\n")]  # not one being written
                keys = [e["key"] for e in entries if e["status"] == 201]
                if keys or time.monotonic() > deadline:
                    break
                time.sleep(0.5)
            key = keys[len(keys) // 2]  # answered a while ago: finished and settled
            sql = "UPDATE orders.orders SET idempotency_key = idempotency_key || '{RETAGGED}' "
            sql += "WHERE idempotency_key = '" + key + "'"
            subprocess.run(["psql", {stack.database_url!r}, "-v", "ON_ERROR_STOP=1", "-c", sql], check=True)
        """)
    )
    retag = sh(f"{sys.executable} {script}")
    try:
        result = run(stack, incident(remediate=(sh("chaos/scripts/payment_errors.sh disable"), retag)), tmp_path)
    finally:
        retagged = untag(stack)
    assert len(retagged) == 1, retagged
    step = failed(result)
    assert step.name == "verify"
    assert "the client ledger contradicts the database" in step.detail, step.detail
    assert "ledger_one_order_per_key" in step.detail and retagged[0] in step.detail, step.detail
    assert "verify still fails" not in step.detail  # the databases agree with each other
    assert result.ledger["answers"] > 0, result.ledger


def test_a_storm_of_5xx_beyond_the_incident_share_fails_the_drill(stack, tmp_path):
    """Payments fails and the gateway answers 503 to most orders while it does:
    each one keeps the contract (a 503 is allowed), but the incident allows 10 %."""
    inject = (
        sh("chaos/scripts/payment_errors.sh enable 0.9"),
        sh("chaoslab chaos set gateway error_status 503"),
        sh("chaoslab chaos set gateway error_rate 0.6"),
    )
    remediate = (sh("chaos/scripts/payment_errors.sh disable"), sh("chaoslab chaos clear gateway"))
    result = run(stack, incident(inject=inject, remediate=remediate), tmp_path)
    step = failed(result)
    assert step.name == "verify"
    assert "5xx storm" in step.detail and "over 10%" in step.detail, step.detail
    assert "contract violations" not in step.detail, step.detail
    assert result.ledger["window_5xx"] > 0.1 * result.ledger["window_answers"], result.ledger


# -- roll back ---------------------------------------------------------------------------


def test_a_fault_the_rollback_cannot_clear_fails_the_drill_and_is_named(stack, tmp_path):
    """A fault key under a service no runbook command knows: `chaoslab chaos clear`
    leaves it, and the rollback must say so instead of claiming every fault is gone."""
    inject = (
        sh("chaos/scripts/payment_errors.sh enable 0.9"),
        sh(f'redis-cli -u "$REDIS_URL" SET {STRAY_KEY} 0.5 EX 300'),
    )
    try:
        result = run(stack, incident(inject=inject), tmp_path)
    finally:
        redis.Redis.from_url(stack.redis_url).delete(STRAY_KEY)
    step = failed(result)
    assert step.name == "roll back"
    assert f"fault keys in Redis: {STRAY_KEY}" in step.detail, step.detail
    assert steps(result) == ["steady state", "inject", "detect", "remediate", "recover", "roll back"]
