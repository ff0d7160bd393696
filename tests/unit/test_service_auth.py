"""The service credential's rules as plain functions (services/common/web/credentials.py):
which token is accepted when, how a rotation changes the set, how a process follows the
file `chaoslab secret rotate` rewrites, and that no token shows in a repr."""

from __future__ import annotations

import os

import pytest

from chaos.secrets_rotation import refused_programs
from services.common.web import credentials
from services.common.web.auth import is_open
from services.common.web.credentials import CredentialSet, ServiceCredentials, bearer, caller_label
from services.orders.settings import Settings as OrdersSettings


def test_current_previous_within_its_window_then_expired():
    tokens = CredentialSet(current="new", previous="old", previous_until=100.0, generation=2)
    assert tokens.judge("new", now=50) == "current"
    assert tokens.judge("old", now=99.9) == "previous"
    assert tokens.judge("old", now=100.0) == "expired"
    assert tokens.judge("other", now=50) == "unknown"
    assert tokens.judge(None, now=50) == tokens.judge("", now=50) == "missing"


def test_a_rotation_keeps_one_previous_token_for_the_grace_window():
    first = CredentialSet(current="a")
    second = first.rotated("b", grace_s=30, now=1000)
    assert (second.current, second.previous, second.previous_until, second.generation) == ("b", "a", 1030, 2)
    third = second.rotated("c", grace_s=30, now=1010)
    assert third.judge("a", now=1010) == "unknown"  # two rotations back: forgotten at once
    assert third.judge("b", now=1039) == "previous"


def test_an_empty_set_accepts_nothing():
    assert CredentialSet(current="").judge("", now=0) == "missing"
    assert CredentialSet(current="").judge("x", now=0) == "unknown"


@pytest.mark.parametrize(
    "header, token",
    [("Bearer abc", "abc"), ("bearer abc ", "abc"), ("Basic abc", None), ("Bearer", None), ("", None), (None, None)],
)
def test_bearer_reads_only_the_bearer_scheme(header, token):
    assert bearer(header) == token


def test_callers_outside_the_stack_are_counted_as_unknown():
    assert caller_label("orders") == "orders"
    assert caller_label("nightly-export") == caller_label(None) == "unknown"
    assert caller_label(None, "Alertmanager/0.25.0") == "alertmanager"  # its webhook cannot name itself
    assert caller_label("someone", "Alertmanager/0.25.0") == "unknown"


@pytest.mark.parametrize(
    "method, path, open_",
    [
        ("GET", "/health", True),
        ("GET", "/metrics", True),
        ("GET", "/openapi.json", True),
        ("GET", "/status/breakers", True),
        ("GET", "/chaos/config", True),
        ("PUT", "/chaos/config", False),
        ("POST", "/charges", False),
        ("GET", "/charges", False),
        ("POST", "/health/../charges", False),
    ],
)
def test_what_is_open(method, path, open_):
    assert is_open(method, path) is open_


def test_a_process_follows_the_file_and_rereads_it_when_a_token_does_not_match(tmp_path):
    path = tmp_path / "service-credentials.json"
    credentials.write_file(path, CredentialSet(current="one"))
    held = ServiceCredentials(CredentialSet(current=""), path)
    assert held.judge("one") == "current"
    assert held.outgoing("orders") == {"Authorization": "Bearer one", "X-Service-Name": "orders"}
    credentials.write_file(path, CredentialSet(current="one").rotated("two", grace_s=60, now=0))
    os.utime(path, ns=(1, 1))  # a different mtime even on a coarse clock
    # Within its reload interval a caller may still send "one"; a callee that gets "two"
    # re-reads the file at once rather than refusing it.
    assert held.judge("two") == "current"
    assert held.current_set().generation == 2
    assert (path.parent / "service-credentials.current").read_text() == "two"
    assert oct(path.stat().st_mode & 0o777) == "0o600"


def test_a_broken_file_keeps_the_last_good_set(tmp_path):
    path = tmp_path / "service-credentials.json"
    credentials.write_file(path, CredentialSet(current="one"))
    held = ServiceCredentials(CredentialSet(current=""), path)
    path.write_text("{half")
    assert held.judge("one") == "current"


def test_no_token_in_a_repr(monkeypatch):
    monkeypatch.setenv("SERVICE_TOKEN", "s3cr3t-token")
    monkeypatch.setenv("SERVICE_TOKEN_PREVIOUS", "0ld-token")
    settings = OrdersSettings()
    held = ServiceCredentials.from_settings(settings)
    for text in (repr(settings), str(settings), repr(held.current_set())):
        assert "s3cr3t-token" not in text and "0ld-token" not in text
    assert held.judge("s3cr3t-token") == "current"
    assert held.judge("0ld-token") == "previous"  # a rolling restart's grace window, from the start


def test_a_rotation_counts_only_the_stacks_own_programs_refused_while_it_ran():
    before = {("payments", "orders", "current"): 10.0, ("payments", "orders", "missing"): 2.0}
    after = {
        ("payments", "orders", "current"): 50.0,
        ("payments", "orders", "missing"): 2.0,  # refused before the rotation: not its doing
        ("payments", "orders", "expired"): 1.0,
        ("payments", "unknown", "expired"): 9.0,  # a stranger (the leak, the check) refused: as it should be
        ("notifications", "alertmanager", "previous"): 1.0,  # accepted
    }
    assert refused_programs(before, after) == {("payments", "orders", "expired"): 1.0}
