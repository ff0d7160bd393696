"""Every wave-1 incident of the runbook, drilled end to end under locust load."""

from __future__ import annotations

import pytest

from chaos.drills.catalog import INCIDENTS
from chaos.drills.engine import Drill


@pytest.mark.parametrize("incident", INCIDENTS, ids=lambda inc: inc.id)
def test_drill(stack, incident, drill_results, tmp_path_factory):
    result = Drill(stack, incident, log_dir=tmp_path_factory.mktemp("drill-logs")).run()
    drill_results.append(result)
    failed = [f"{s.name}: {s.detail}" for s in result.steps if not s.ok]
    assert result.ok, f"{incident.id} failed at {failed or 'an unfinished step'}"
    assert result.verify["ok"]
    assert result.timeline["order success rate"], "the report's timeline has no data"
