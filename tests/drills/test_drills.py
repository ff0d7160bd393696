"""Every wave-1 incident of the runbook, drilled end to end under locust load, in the
ci profile; and three of them in the training profile, where the budgets are the
realistic ones: a Redis-key fault, a killed process and an outbox backlog."""

from __future__ import annotations

import pytest

from chaos.drills import budgets
from chaos.drills.catalog import BY_ID, INCIDENTS
from chaos.drills.engine import Drill, DrillResult

TRAINING = ("payments-errors", "payments-down", "outbox-backlog")
# Drills of what the stack can carry (a surge, a load past one replica, a duplicate
# storm's bursts): a busy neighbour changes their verdict, so they run alone.
CAPACITY = ("gateway-overload", "cannot-scale", "duplicate-storm")
# Room for the steady state, the load starting and stopping, roll back and verify.
OVERHEAD_S = 300


def training_timeout_s(incident_id: str) -> float:
    """A training drill waits for its alert and its SLO page to fire and then to resolve,
    each within its budget: the test may take their sum, past pytest's default 300 s."""
    b = budgets.of(BY_ID[incident_id], "training")
    return max(b.detect_s, b.page_s or 0.0) + b.recover_s + OVERHEAD_S


def check(result: DrillResult) -> None:
    failed = [f"{s.name}: {s.detail}" for s in result.steps if not s.ok]
    assert result.ok, f"{result.incident} failed at {failed or 'an unfinished step'}"
    assert result.verify["ok"]
    assert result.timeline["order success rate"], "the report's timeline has no data"
    attempted, succeeded = result.orders_attempted or 0, result.orders_succeeded or 0
    assert succeeded <= attempted, f"{succeeded} orders succeeded of {attempted} attempted"


@pytest.mark.parametrize(
    "incident",
    [pytest.param(inc, marks=[pytest.mark.alone] if inc.id in CAPACITY else [], id=inc.id) for inc in INCIDENTS],
)
def test_drill(stack, incident, drill_results, tmp_path_factory):
    result = Drill(stack, incident, log_dir=tmp_path_factory.mktemp("drill-logs")).run()
    drill_results.append(result)
    check(result)


@pytest.mark.parametrize(
    "incident",
    [
        pytest.param(BY_ID[i], marks=[pytest.mark.training, pytest.mark.timeout(training_timeout_s(i))], id=i)
        for i in TRAINING
    ],
)
def test_drill_in_training(training_stack, incident, training_drill_results, tmp_path_factory):
    result = Drill(training_stack, incident, log_dir=tmp_path_factory.mktemp("drill-logs-training")).run()
    training_drill_results.append(result)
    check(result)
