"""runbook.md and chaos/experiments/ are generated from the incident catalogue: they
must not drift from the commands the drills run."""

from __future__ import annotations

import json
import re
from pathlib import Path

from chaos.drills import experiments, runbook
from chaos.drills.catalog import INCIDENTS
from tests.support import docs

REPO = Path(__file__).resolve().parents[2]


def test_runbook_is_generated_from_the_catalogue():
    assert (REPO / "runbook.md").read_text() == runbook.render(), "run `chaoslab runbook --write`"


def test_experiments_are_generated_from_the_catalogue():
    for name, text in experiments.render_all().items():
        assert (experiments.DIRECTORY / name).read_text() == text, f"{name}: run `chaoslab experiments --write`"


def test_every_incident_has_an_anchor_and_every_alert_a_section():
    text = (REPO / "runbook.md").read_text()
    for inc in INCIDENTS:
        assert f'<a id="{inc.id}"></a>' in text
    rules = "".join(p.read_text() for p in sorted((REPO / "prometheus" / "rules").glob("*.yml")))
    alerts = set(re.findall(r"- alert: (\w+)", rules))
    assert {inc.alert for inc in INCIDENTS if inc.alert} <= alerts


def test_the_catalogue_covers_the_wave_one_incidents():
    documented = docs.incident_ids(1)  # docs/incidents.md; fails when it is missing
    assert len(documented) == len(set(documented)), "an incident is listed twice in docs/incidents.md"
    assert set(documented) == {inc.id for inc in INCIDENTS}


def test_experiments_set_faults_through_the_chaos_api():
    for name, text in experiments.render_all().items():
        exp = json.loads(text)
        assert exp["steady-state-hypothesis"]["probes"], name
        assert any(r["provider"]["method"] == "DELETE" for r in exp["rollbacks"]), name
