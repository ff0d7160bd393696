"""`--target compose` says clearly what is wrong before any stack is reached."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from chaos.compose import ComposeError, _timestamp, program_name, scale_command

REPO = Path(__file__).resolve().parents[2]


def chaoslab(*args: str, path: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "chaos.cli", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PATH": path, "COLUMNS": "200"},
    )


def test_an_unknown_target_is_a_usage_error():
    result = chaoslab("status", "--target", "kubernetes", path=os.environ["PATH"])
    assert result.returncode == 2
    assert "--target must be native, compose or k8s, not 'kubernetes'" in result.stderr


def test_compose_without_a_docker_command_says_so(tmp_path):
    for command in (("status",), ("verify",), ("chaos", "list"), ("kill", "payments"), ("drill", "payments-errors")):
        result = chaoslab(*command, "--target", "compose", path=str(tmp_path))
        assert result.returncode == 1, (command, result.stdout, result.stderr)
        assert "no `docker` command on PATH" in result.stderr and "Traceback" not in result.stderr


def test_docker_timestamps_with_nanoseconds_read_as_epoch_seconds():
    assert _timestamp("2026-11-30T06:41:39.123456789Z") == 1796020899.0
    assert _timestamp("2026-11-30T07:41:39.5+01:00") == 1796020899.0
    assert _timestamp("") == 0.0


def test_scale_runs_the_service_alone_keeping_running_replicas():
    assert scale_command("payments", 3) == [
        "up",
        "-d",
        "--no-deps",
        "--no-recreate",
        "--scale",
        "payments=3",
        "payments",
    ]
    assert scale_command("inventory", 1)[-2:] == ["inventory=1", "inventory"]


@pytest.mark.parametrize(
    ("service", "count", "message"),
    [
        ("gateway", 2, "cannot scale 'gateway' in compose"),
        ("postgres", 2, "cannot scale 'postgres' in compose"),
        ("payments", 0, "replicas must be between 1 and 8, not 0"),
        ("payments", 9, "replicas must be between 1 and 8, not 9"),
    ],
)
def test_scale_refuses_what_compose_cannot_run(service, count, message):
    with pytest.raises(ComposeError, match=re.escape(message)):
        scale_command(service, count)


def test_replicas_are_named_as_natively():
    assert [program_name("payments", n) for n in (1, 2, 3)] == ["payments", "payments-1", "payments-2"]


def test_compose_scale_without_a_docker_command_says_so(tmp_path):
    result = chaoslab("scale", "payments", "3", "--target", "compose", path=str(tmp_path))
    assert result.returncode == 1 and "no `docker` command on PATH" in result.stderr, result.stderr
