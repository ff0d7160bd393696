"""The runbook scripts in chaos/scripts against a real Redis of their own.

Each script's enable/status/disable round trip is checked in Redis itself (key, value,
PTTL, the `chaos:audit` entries) and through ChaosStore, so the scripts write exactly
what the services read. Also: --help, values just outside the catalogue's bounds,
scopes (--replica, --route, --service), and a Redis that is missing or never answers.
No stack needed: this module starts its own redis-server.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import pytest
import redis
import redis.asyncio as aioredis

from chaos.layout import free_ports
from services.common.faults.catalogue import lookup
from services.common.faults.store import ChaosStore

ROOT = Path(__file__).resolve().parents[2]
SCRIPTS = ROOT / "chaos" / "scripts"
REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"
USER = "tester"

pytestmark = pytest.mark.skipif(
    not (Path(REDIS_SERVER).exists() and shutil.which("redis-cli")),
    reason="needs redis-server and redis-cli",
)


@dataclass(frozen=True)
class Case:
    script: str
    service: str  # the default service
    fault: str  # the fault `enable` sets
    default: str  # the encoded default value
    value: str  # a value given on the command line
    encoded: str  # how it is stored
    outside: tuple[tuple[str, str], ...]  # (value just outside the bounds, text the message names)
    other_service: str | None = None  # for scripts with --service


CASES = [
    Case(
        "payment_errors",
        "payments",
        "error_rate",
        "0.5",
        "0.25",
        "0.25",
        (("1.01", "between 0 and 1"), ("-0.01", "between 0 and 1")),
    ),
    Case(
        "payment_slow",
        "payments",
        "latency_ms",
        "2000",
        "20000",
        "20000",
        (("30001", "30000 ms"), ("-1", "between 0 and 30000")),
    ),
    Case(
        "inventory_slow",
        "inventory",
        "latency_ms",
        "2000",
        "2500",
        "2500",
        (("30001", "30000 ms"), ("-1", "between 0 and 30000")),
    ),
    Case(
        "payment_hang",
        "payments",
        "hang_rate",
        "1",
        "0.5",
        "0.5",
        (("1.001", "between 0 and 1"), ("-0.001", "between 0 and 1")),
    ),
    Case(
        "inventory_lock",
        "inventory",
        "lock_contention_ms",
        "2000",
        "5000",
        "5000",
        (("30001", "30000 ms"), ("-1", "between 0 and 30000")),
    ),
    Case(
        "db_pool_hold",
        "orders",
        "db_pool_hold",
        "10",
        "3",
        "3",
        (("101", "between 0 and 100 connections"), ("-1", "between 0 and 100")),
        "payments",
    ),
    Case("outbox_pause", "orders", "outbox_paused", "1", "true", "1", (("2", "true/false or 1/0"),)),
    Case(
        "memory_leak",
        "payments",
        "memory_leak_mb_s",
        "5",
        "12.5",
        "12.5",
        (("50.1", "between 0 and 50 MB/s"), ("-0.1", "between 0 and 50")),
        "orders",
    ),
    Case(
        "cpu_burn",
        "payments",
        "cpu_burn_pct",
        "80",
        "40",
        "40",
        (("101", "between 0 and 100 %"), ("-1", "between 0 and 100")),
        "inventory",
    ),
    Case("crash", "payments", "crash", "1", "on", "1", (("2", "true/false or 1/0"),), "orders"),
    Case("unhealthy", "payments", "unhealthy", "1", "yes", "1", (("maybe", "true/false or 1/0"),), "gateway"),
    Case(
        "partition",
        "orders",
        "block",
        "payments",
        "inventory,payments",
        "inventory,payments",
        (("gateway", "inventory, payments, notifications"),),
        "gateway",
    ),
    Case(
        "rate_limit",
        "gateway",
        "rate_limit_rps",
        "1",
        "0.5",
        "0.5",
        (("0.09", "between 0.1 and 100000 requests/s"), ("100001", "100000 requests/s")),
    ),
    Case(
        "connection_reset",
        "payments",
        "reset_rate",
        "0.3",
        "0.6",
        "0.6",
        (("1.01", "between 0 and 1"), ("-0.01", "between 0 and 1")),
        "inventory",
    ),
]
IDS = [c.script for c in CASES]


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory) -> Iterator[str]:
    workdir = tmp_path_factory.mktemp("redis")
    [port] = free_ports(1)
    proc = subprocess.Popen(
        [
            REDIS_SERVER,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(workdir),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=0.2)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"redis-server did not start on port {port}") from None
                time.sleep(0.05)
        client.close()
        yield url
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, 15)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, 9)
            proc.wait()


@pytest.fixture()
def r(redis_url) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    client.flushdb()
    yield client
    client.close()


def script_env(redis_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("CHAOSLAB_PROFILE", "CHAOSLAB_PYTHON")}
    env.update(REDIS_URL=redis_url, USER=USER, CHAOSLAB_PYTHON=sys.executable)
    env.update(extra)
    return env


def run(
    redis_url: str,
    script: str,
    *args: str,
    env: dict[str, str] | None = None,
    scripts: Path = SCRIPTS,
    timeout: float = 20,
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(scripts / f"{script}.sh"), *args],
        capture_output=True,
        text=True,
        env=env or script_env(redis_url),
        timeout=timeout,
    )


def audit(r: redis.Redis) -> list[dict[str, str]]:
    entries = cast(list[tuple[str, dict[str, str]]], r.xrange("chaos:audit"))  # decode_responses=True
    return [fields for _, fields in entries]


def status_lines(out: str) -> dict[str, tuple[str, float]]:
    """key -> (value, remaining ttl in seconds) from `status`."""
    found = {}
    for line in out.splitlines():
        m = re.fullmatch(r"(\S+) = (\S+) \(ttl (\d+\.\d) s\)", line)
        assert m, f"unexpected status line {line!r}"
        found[m[1]] = (m[2], float(m[3]))
    return found


def active(redis_url: str, service: str):
    async def read():
        client = aioredis.from_url(redis_url, decode_responses=True)
        try:
            return await ChaosStore(client).active(service)
        finally:
            await client.aclose()

    return asyncio.run(read())


def assert_audited(entry: dict[str, str], action: str, key: str, value: str, ttl_s: str, script: str):
    assert {k: entry[k] for k in ("action", "key", "value", "ttl_s", "who")} == {
        "action": action,
        "key": key,
        "value": value,
        "ttl_s": ttl_s,
        "who": f"script:{script}:{USER}",
    }
    assert abs(float(entry["at"]) - time.time()) < 30
    assert re.fullmatch(r"\d+\.\d{3}", entry["at"])


# --- the round trip, every script -------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_enable_status_disable_round_trip(case: Case, redis_url, r):
    key = f"chaos:{case.service}:{case.fault}"

    # enable with no value: the default, the training TTL (600 s), one audit entry
    res = run(redis_url, case.script, "enable")
    assert res.returncode == 0, res.stderr
    assert r.get(key) == case.default
    assert 590_000 < r.pttl(key) <= 600_000
    assert sorted(r.keys("*")) == ["chaos:audit", key]
    [entry] = audit(r)
    assert_audited(entry, "set", key, case.default, "600", case.script)

    # the services read it as the catalogue's typed value
    [fault] = active(redis_url, case.service)
    assert (fault.fault, fault.key) == (case.fault, key)
    assert fault.value == lookup(case.fault).parse(case.default, case.service)

    # enable with a value and a TTL
    res = run(redis_url, case.script, "enable", case.value, "--ttl", "120")
    assert res.returncode == 0, res.stderr
    assert key in res.stdout
    assert r.get(key) == case.encoded
    assert 110_000 < r.pttl(key) <= 120_000
    assert_audited(audit(r)[-1], "set", key, case.encoded, "120", case.script)

    res = run(redis_url, case.script, "status")
    assert res.returncode == 0, res.stderr
    shown = status_lines(res.stdout)
    assert list(shown) == [key]
    value, ttl = shown[key]
    assert value == case.encoded
    assert 100 < ttl <= 120

    res = run(redis_url, case.script, "disable")
    assert res.returncode == 0, res.stderr
    assert f"cleared {key}" in res.stdout
    assert r.exists(key) == 0
    entries = audit(r)
    assert len(entries) == 3
    assert_audited(entries[-1], "clear", key, "", "", case.script)

    res = run(redis_url, case.script, "status")
    assert (res.returncode, res.stdout.strip()) == (0, "off")

    # disabling again changes nothing and audits nothing
    res = run(redis_url, case.script, "disable")
    assert res.returncode == 0 and "already off" in res.stdout
    assert len(audit(r)) == 3


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_disable_clears_scoped_and_unscoped_keys(case: Case, redis_url, r):
    base = f"chaos:{case.service}:{case.fault}"
    assert run(redis_url, case.script, "enable").returncode == 0
    assert run(redis_url, case.script, "enable", "--replica", "2").returncode == 0
    res = run(redis_url, case.script, "enable", case.value, "--route", "/orders", "--replica", "1", "--ttl", "60")
    assert res.returncode == 0, res.stderr
    scoped = [base, f"{base}:replica=1:route=/orders", f"{base}:replica=2"]
    assert sorted(k for k in r.keys("chaos:*") if k != "chaos:audit") == scoped
    assert r.get(f"{base}:replica=1:route=/orders") == case.encoded
    assert 50_000 < r.pttl(f"{base}:replica=1:route=/orders") <= 60_000
    assert {(f.replica, f.route) for f in active(redis_url, case.service)} == {(None, None), (1, "/orders"), (2, None)}

    res = run(redis_url, case.script, "status", "--replica", "2")
    assert list(status_lines(res.stdout)) == [f"{base}:replica=2"]
    res = run(redis_url, case.script, "status")
    assert sorted(status_lines(res.stdout)) == scoped

    res = run(redis_url, case.script, "disable", "--replica", "2")
    assert res.returncode == 0, res.stderr
    assert r.exists(f"{base}:replica=2") == 0 and r.exists(base) == 1

    res = run(redis_url, case.script, "disable")
    assert res.returncode == 0, res.stderr
    assert r.keys("chaos:*") == ["chaos:audit"]
    clears = [e["key"] for e in audit(r) if e["action"] == "clear"]
    assert sorted(clears) == scoped


# --- options of particular scripts --------------------------------------------------------------


def test_payment_errors_status_option_sets_error_status(redis_url, r):
    res = run(redis_url, "payment_errors", "enable", "0.9", "--status", "503", "--ttl", "30")
    assert res.returncode == 0, res.stderr
    assert r.get("chaos:payments:error_rate") == "0.9"
    assert r.get("chaos:payments:error_status") == "503"
    assert r.pttl("chaos:payments:error_status") <= 30_000
    assert [(e["action"], e["key"], e["value"]) for e in audit(r)] == [
        ("set", "chaos:payments:error_rate", "0.9"),
        ("set", "chaos:payments:error_status", "503"),
    ]

    res = run(redis_url, "payment_errors", "enable", "--status", "501")
    assert res.returncode == 2 and "500, 502, 503, 504" in res.stderr
    assert r.get("chaos:payments:error_rate") == "0.9"  # the refused call changed nothing

    res = run(redis_url, "payment_errors", "disable")
    assert res.returncode == 0
    assert r.keys("chaos:payments:*") == []


def test_payment_slow_jitter_option(redis_url, r):
    res = run(redis_url, "payment_slow", "enable", "20000", "--jitter=500")
    assert res.returncode == 0, res.stderr
    assert (r.get("chaos:payments:latency_ms"), r.get("chaos:payments:latency_jitter_ms")) == ("20000", "500")
    res = run(redis_url, "payment_slow", "enable", "--jitter", "30001")
    assert res.returncode == 2 and "30000 ms" in res.stderr
    run(redis_url, "payment_slow", "disable")
    assert r.keys("chaos:payments:*") == []


def test_crash_loop_option_and_disable_clears_both(redis_url, r):
    assert run(redis_url, "crash", "enable", "--service", "orders").returncode == 0
    res = run(redis_url, "crash", "enable", "--loop", "--service", "orders")
    assert res.returncode == 0, res.stderr
    assert (r.get("chaos:orders:crash"), r.get("chaos:orders:crashloop")) == ("1", "1")
    res = run(redis_url, "crash", "status")
    assert sorted(status_lines(res.stdout)) == ["chaos:orders:crash", "chaos:orders:crashloop"]
    run(redis_url, "crash", "disable")
    assert r.keys("chaos:orders:*") == []


@pytest.mark.parametrize("case", [c for c in CASES if c.other_service], ids=lambda c: c.script)
def test_service_option_scopes_enable_disable_and_status(case: Case, redis_url, r):
    assert case.other_service is not None  # the parametrisation keeps only those
    other = f"chaos:{case.other_service}:{case.fault}"
    default = f"chaos:{case.service}:{case.fault}"
    value = "orders" if case.fault == "block" else case.value  # gateway's only downstream
    res = run(redis_url, case.script, "enable", value, "--service", case.other_service)
    assert res.returncode == 0, res.stderr
    assert run(redis_url, case.script, "enable").returncode == 0
    assert r.exists(other) == r.exists(default) == 1

    res = run(redis_url, case.script, "status", "--service", case.other_service)
    assert list(status_lines(res.stdout)) == [other]
    res = run(redis_url, case.script, "status")
    assert sorted(status_lines(res.stdout)) == sorted([other, default])

    assert run(redis_url, case.script, "disable", "--service", case.other_service).returncode == 0
    assert (r.exists(other), r.exists(default)) == (0, 1)
    assert run(redis_url, case.script, "disable").returncode == 0  # every service
    assert r.exists(default) == 0


def test_service_option_refused_where_the_fault_does_not_apply(redis_url, r):
    res = run(redis_url, "db_pool_hold", "enable", "--service", "gateway")
    assert res.returncode == 2 and "does not apply to gateway" in res.stderr
    res = run(redis_url, "payment_errors", "enable", "--service", "orders")
    assert res.returncode == 2 and "--service" in res.stderr
    assert r.keys("chaos:*") == []


def test_ci_profile_shortens_the_default_ttl(redis_url, r):
    env = script_env(redis_url, CHAOSLAB_PROFILE="ci")
    assert run(redis_url, "payment_errors", "enable", env=env).returncode == 0
    assert 110_000 < r.pttl("chaos:payments:error_rate") <= 120_000
    assert audit(r)[-1]["ttl_s"] == "120"


def test_a_value_between_two_time_scales_has_its_own_default_in_ci(redis_url, r):
    # inventory_slow must stay under orders' timeout and over its slow-call threshold:
    # 2-3 s in training, 1-1.5 s in ci.
    ci = script_env(redis_url, CHAOSLAB_PROFILE="ci")
    assert run(redis_url, "inventory_slow", "enable", env=ci).returncode == 0
    assert r.get("chaos:inventory:latency_ms") == "1250"
    assert "default 2000; 1250 with CHAOSLAB_PROFILE=ci" in run(redis_url, "inventory_slow", "--help").stdout
    # a script without a ci default keeps its one default in ci
    assert run(redis_url, "payment_slow", "enable", env=ci).returncode == 0
    assert r.get("chaos:payments:latency_ms") == "2000"


# --- refusals -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "case,bad,bound",
    [(c, bad, bound) for c in CASES for bad, bound in c.outside],
    ids=[f"{c.script}:{bad}" for c in CASES for bad, _ in c.outside],
)
def test_value_just_outside_the_bounds_exits_2_and_sets_nothing(case: Case, bad: str, bound: str, redis_url, r):
    res = run(redis_url, case.script, "enable", bad)
    assert res.returncode == 2, res.stdout
    assert bound in res.stderr
    assert res.stderr.startswith(f"{case.script}.sh: ")
    assert r.keys("*") == []


@pytest.mark.parametrize(
    "args,message",
    [
        (["--ttl", "0"], "between 1 and 86400"),
        (["--ttl", "86401"], "between 1 and 86400"),
        (["--ttl", "soon"], "--ttl"),
        (["--ttl"], "--ttl needs a value"),
        (["--replica", "65"], "between 0 and 64"),
        (["--replica", "-1"], "between 0 and 64"),
        (["--route", "orders"], "starting with '/'"),
        (["0.5", "0.6"], "one value"),
        (["--bogus"], "unknown option"),
    ],
)
def test_bad_options_exit_2_and_set_nothing(args, message, redis_url, r):
    res = run(redis_url, "payment_errors", "enable", *args)
    assert res.returncode == 2
    assert message in res.stderr
    assert r.keys("*") == []


def test_bad_actions_exit_2(redis_url, r):
    res = run(redis_url, "payment_errors", "explode")
    assert res.returncode == 2 and "enable, disable or status" in res.stderr
    res = run(redis_url, "payment_errors", "disable", "0.5")
    assert res.returncode == 2 and "takes no value" in res.stderr
    res = run(redis_url, "payment_errors", "status", "--ttl", "5")
    assert res.returncode == 2
    res = run(redis_url, "payment_errors")  # no action: usage on stderr
    assert res.returncode == 2 and "Usage:" in res.stderr


# --- help ------------------------------------------------------------------------------------


@pytest.mark.parametrize("flag", ["--help", "-h"])
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_help_names_the_key_and_the_catalogue_bounds(case: Case, flag: str):
    # needs no Redis at all
    res = run("redis://127.0.0.1:1/0", case.script, flag)
    assert res.returncode == 0, res.stderr
    service = "<service>" if case.other_service else case.service
    assert f"chaos:{service}:{case.fault}" in res.stdout
    assert f"{case.script}.sh enable [VALUE]" in res.stdout
    assert re.search(r"default value [^\s;)]+[;)]", res.stdout)
    fault = lookup(case.fault)
    if fault.kind in ("rate", "int", "float"):
        high = str(int(fault.high)) if float(fault.high).is_integer() else str(fault.high)
        assert f"to {high}" in res.stdout
    if fault.unit:
        assert fault.unit in res.stdout
    assert fault.description in res.stdout
    assert "chaos:audit" in res.stdout and "--ttl SECONDS" in res.stdout


# --- Redis missing or not answering ------------------------------------------------------------


@pytest.mark.parametrize("action", [["enable"], ["status"], ["disable"]])
def test_unreachable_redis_fails_fast_with_a_clear_message(action):
    url = f"redis://:secret@127.0.0.1:{free_ports(1)[0]}/0"
    res = run(url, "payment_errors", *action, timeout=10)
    assert res.returncode == 3
    assert "unreachable" in res.stderr and "127.0.0.1" in res.stderr
    # Fast: it gave up on the refused connection, not by waiting out its Redis timeout
    # (how long it takes: bench/chaos_timings.py).
    assert "did not answer" not in res.stderr
    assert "secret" not in res.stderr


def test_redis_that_never_answers_times_out_by_itself():
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"redis://127.0.0.1:{silent.getsockname()[1]}/0"
        script = subprocess.Popen(
            [str(SCRIPTS / "payment_slow.sh"), "status"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=script_env(url),
        )
        try:
            silent.settimeout(30)
            conn, _ = silent.accept()  # the script reached the server, which never answers
            with conn:
                conn.settimeout(30)
                # The script hangs up first: the server still holds the connection open.
                while conn.recv(4096):
                    pass
                _, stderr = script.communicate(timeout=30)
        finally:
            if script.poll() is None:
                script.kill()
                script.wait()
    assert script.returncode == 3
    assert "did not answer" in stderr  # its own timeout, as the message says (bench/chaos_timings.py)


def test_missing_redis_cli_is_reported(tmp_path):
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for tool in ("bash", "env", "dirname"):
        (bindir / tool).symlink_to(shutil.which(tool))
    env = script_env("redis://127.0.0.1:6379/0", PATH=str(bindir))
    res = run("", "payment_errors", "status", env=env)
    assert res.returncode == 3
    assert "redis-cli is not installed" in res.stderr


# --- no python that can read the catalogue ---------------------------------------------------


def test_without_the_catalogue_values_are_written_unchecked(tmp_path, redis_url, r):
    copy = tmp_path / "chaos" / "scripts"
    shutil.copytree(SCRIPTS, copy)
    env = script_env(redis_url)
    del env["CHAOSLAB_PYTHON"]
    res = run(redis_url, "payment_slow", "--help", env=env, scripts=copy)
    assert res.returncode == 0
    assert "chaos:payments:latency_ms" in res.stdout and "no python here can import" in res.stdout

    res = run(redis_url, "payment_slow", "enable", "1500", "--ttl", "30", env=env, scripts=copy)
    assert res.returncode == 0, res.stderr
    assert "unchecked" in res.stderr
    assert r.get("chaos:payments:latency_ms") == "1500"
    assert r.pttl("chaos:payments:latency_ms") <= 30_000
    res = run(redis_url, "payment_slow", "disable", env=env, scripts=copy)
    assert res.returncode == 0 and r.exists("chaos:payments:latency_ms") == 0


# --- the scripts themselves ---------------------------------------------------------------------


def test_every_script_is_a_thin_executable_declaration_over_lib():
    names = sorted(p.stem for p in SCRIPTS.glob("*.sh") if p.name != "lib.sh")
    assert names == sorted(IDS)
    for name in names:
        path = SCRIPTS / f"{name}.sh"
        assert os.access(path, os.X_OK), f"{path} is not executable"
        text = path.read_text()
        assert "set -euo pipefail" in text and "/lib.sh" in text and 'chaos_main "$@"' in text
        assert "redis-cli" not in text, f"{name}.sh talks to Redis itself instead of through lib.sh"


@pytest.mark.skipif(not shutil.which("shellcheck"), reason="shellcheck is not installed")
def test_scripts_are_shellcheck_clean():
    res = subprocess.run(
        ["shellcheck", "-x", *sorted(str(p) for p in SCRIPTS.glob("*.sh"))], capture_output=True, text=True, cwd=SCRIPTS
    )
    assert res.returncode == 0, res.stdout
