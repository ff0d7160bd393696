"""The drill suite: every runbook incident, end to end, against the session's stack.

Results are gathered and written as a report (JSON, JUnit XML, HTML) in
reports/drills/ at the end of the session, with each drill's time to detect and
time to recover.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from chaos.drills import report
from chaos.drills.engine import DrillResult

REPORT_DIR = Path(__file__).resolve().parents[2] / "reports" / "drills"
RESULTS: list[DrillResult] = []


def suite_wall_s() -> float:
    """From the first drill's start to the last one's end: the rest of the session (the
    tests that run after the drills) is not the drill suite's time."""
    return max(r.ended_at for r in RESULTS) - min(r.started_at for r in RESULTS)


@pytest.fixture(scope="session")
def drill_results():
    yield RESULTS
    if RESULTS:
        report.write(RESULTS, REPORT_DIR, suite_wall_s())


def pytest_terminal_summary(terminalreporter):
    if not RESULTS:
        return
    wall = suite_wall_s()
    terminalreporter.section(f"drills: {sum(r.ok for r in RESULTS)}/{len(RESULTS)} passed in {wall:.0f}s")
    for r in RESULTS:
        terminalreporter.write_line(
            f"{r.incident:<22} {'passed' if r.ok else 'FAILED':<7} detect {r.time_to_detect_s or '-':>5}s  "
            f"recover {r.time_to_recover_s or '-':>5}s  orders {r.orders_succeeded or 0}/{r.orders_attempted or 0}  "
            f"verify {'clean' if r.verify.get('ok') else r.verify.get('failed', '-')}"
        )
    terminalreporter.write_line(f"report: {REPORT_DIR / 'index.html'}")
