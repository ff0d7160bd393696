"""The drill suite: every runbook incident, end to end, against the session's stack
(ci profile), and a few of them against a stack of the training profile.

Results are gathered and written as a report (JSON, JUnit XML, HTML) in
reports/drills/ (ci) and reports/drills/training/ at the end of the session, with each
drill's time to detect and time to recover and the budgets they were held to.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from chaos.drills import report
from chaos.drills.engine import DrillResult
from chaos.layout import StackLayout
from tests.support.stack import start_stack, stop_stack

REPORT_DIR = Path(__file__).resolve().parents[2] / "reports" / "drills"
RESULTS: list[DrillResult] = []
TRAINING_RESULTS: list[DrillResult] = []


def suite_wall_s(results: list[DrillResult] = RESULTS) -> float:
    """From the first drill's start to the last one's end: the rest of the session (the
    tests that run after the drills) is not the drill suite's time."""
    return max(r.ended_at for r in results) - min(r.started_at for r in results)


@pytest.fixture(scope="session")
def drill_results():
    yield RESULTS
    if RESULTS:
        report.write(RESULTS, REPORT_DIR, suite_wall_s())


@pytest.fixture(scope="session")
def training_stack() -> StackLayout:
    """A second stack, in the training profile (15 s scrapes, `for: 1m`, breakers open
    30 s): started only when a test asks for it, stopped when the session ends."""
    layout = start_stack(profile="training")
    try:
        yield layout
    finally:
        stop_stack(layout)


@pytest.fixture(scope="session")
def training_drill_results():
    yield TRAINING_RESULTS
    if TRAINING_RESULTS:
        report.write(TRAINING_RESULTS, REPORT_DIR / "training", suite_wall_s(TRAINING_RESULTS))


def pytest_terminal_summary(terminalreporter):
    for profile, results in (("ci", RESULTS), ("training", TRAINING_RESULTS)):
        if not results:
            continue
        wall = suite_wall_s(results)
        passed = sum(r.ok for r in results)
        terminalreporter.section(f"drills ({profile}): {passed}/{len(results)} passed in {wall:.0f}s")
        for r in results:
            terminalreporter.write_line(
                f"{r.incident:<22} {'passed' if r.ok else 'FAILED':<7} "
                f"detect {r.time_to_detect_s or '-':>5}s/{r.detect_budget_s or '-'}s  "
                f"recover {r.time_to_recover_s or '-':>5}s/{r.recover_budget_s or '-'}s  "
                f"orders {r.orders_succeeded or 0}/{r.orders_attempted or 0}  "
                f"verify {'clean' if r.verify.get('ok') else r.verify.get('failed', '-')}"
                + (f"  data lost: {report.loss_line(r)}" if r.rpo_orders is not None else "")
            )
        directory = REPORT_DIR / "training" if profile == "training" else REPORT_DIR
        terminalreporter.write_line(f"report: {directory / 'index.html'}")
