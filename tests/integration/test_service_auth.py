"""Service credentials on a live stack (docs/security.md): every operation of every
service's OpenAPI is walked, and each internal one refuses a missing or wrong credential
with 401 before it reads the body; the open ones stay open; a rotation drops no order
and the old credential is refused once its grace window is over."""

from __future__ import annotations

import re
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from chaos.layout import SERVICES, StackLayout
from services.common.web import credentials
from services.common.web.credentials import read_file
from tests.support.api import SERVICE_HEADERS, SERVICE_TOKEN, place_order
from tests.support.chaos import metric
from tests.support.stack import wait_until

REPO = Path(__file__).resolve().parents[2]
CHAOSLAB = [sys.executable, "-m", "chaos.cli"]
# Open on every service, whatever the method: health, metrics and the schema itself.
OPEN = {"/health", "/metrics", "/openapi.json"}
# Open for reading: breakers and the active faults (writing faults needs the chaos token).
OPEN_READS = {"/status/breakers", "/chaos/config"}
# Not JSON at all: a route that parsed it would answer 422, not 401.
MALFORMED = b"{not json"
WRONG = {"Authorization": "Bearer not-the-credential", "X-Service-Name": "tests"}


def operations(schema: dict) -> list[tuple[str, str]]:
    return [
        (method.upper(), path)
        for path, item in schema["paths"].items()
        for method in item
        if method in ("get", "put", "post", "delete", "patch")
    ]


def concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "probe-1", path)


def send(url: str, method: str, headers: dict[str, str]) -> httpx.Response:
    with httpx.Client(timeout=10) as bare:  # no credential of its own (the `client` fixture has one)
        return bare.request(method, url, content=MALFORMED, headers={"Content-Type": "application/json", **headers})


def walk(stack: StackLayout) -> dict[str, list[tuple[str, str]]]:
    return {s: operations(httpx.get(f"{stack.url(s)}/openapi.json", timeout=10).json()) for s in SERVICES}


def test_every_internal_operation_refuses_a_missing_or_wrong_credential(stack):
    internal = 0
    for service, ops in walk(stack).items():
        for method, path in ops:
            if service == "gateway" or path in OPEN or path in OPEN_READS:
                continue
            url = stack.url(service) + concrete(path)
            for headers in ({}, WRONG, {"X-Service-Name": "orders"}):
                refused = send(url, method, headers)
                assert refused.status_code == 401, f"{service} {method} {path} with {headers}: {refused.status_code}"
                assert refused.json()["error"]["code"] == "service_credential_invalid"
                assert SERVICE_TOKEN not in refused.text
            # The credential is the only gate: with it, the route itself answers (the
            # malformed body: 422; or 404 for an unknown id).
            assert send(url, method, SERVICE_HEADERS).status_code != 401, f"{service} {method} {path}"
            internal += 1
    assert internal >= 14, f"only {internal} internal operations found: is the walk reading the schemas?"


def test_the_open_operations_stay_open(stack):
    for service, ops in walk(stack).items():
        for method, path in ops:
            if path == "/chaos/config" and method != "GET":
                continue  # the chaos token's, below
            if not (service == "gateway" or path in OPEN or (path in OPEN_READS and method == "GET")):
                continue
            answer = send(stack.url(service) + concrete(path), method, {})
            assert answer.status_code != 401, f"{service} {method} {path} refused without a credential"


@pytest.mark.parametrize("service", SERVICES)
def test_chaos_writes_without_the_token_are_401_before_the_body(stack, service):
    url = f"{stack.url(service)}/chaos/config"
    for method in ("PUT", "DELETE"):
        for headers in ({}, {"X-Chaos-Token": "wrong"}):
            refused = send(url, method, headers)
            assert refused.status_code == 401, f"{service} {method} {headers}: {refused.status_code}"
            assert refused.json()["error"]["code"] == "chaos_token_invalid"
    assert send(url, "PUT", {"X-Chaos-Token": stack.chaos_token}).status_code == 422  # then the body is judged


def test_every_judgement_is_counted_by_caller_and_credential(stack, client, gateway):
    url = stack.url("inventory")

    def counted(caller: str, credential: str) -> float:
        return metric(client, url, "service_auth_requests_total", caller=caller, credential=credential)

    strangers, from_orders = counted("unknown", "unknown"), counted("orders", "current")
    send(f"{url}/inventory/SKU-001", "GET", {"Authorization": "Bearer stolen", "X-Service-Name": "someone"})
    assert place_order(client, gateway, "SKU-002").status_code in (201, 409)
    assert counted("unknown", "unknown") == strangers + 1
    assert counted("orders", "current") > from_orders  # orders reserved stock under its own name


def test_a_rotation_drops_no_order_and_then_refuses_the_old_credential(stack, client, gateway):
    """Orders flow through the whole rotation: callers switch to the new credential while
    callees still accept the old one, so none fails; after the grace window the old one
    is refused and the new one accepted."""
    old = read_file(stack.credentials_file)
    rotating = threading.Event()
    rotating.set()

    def shop() -> list[int]:
        statuses = []
        while rotating.is_set():
            statuses.append(place_order(client, gateway, "SKU-002").status_code)
        return statuses

    try:
        with ThreadPoolExecutor(2) as pool:
            shoppers = [pool.submit(shop) for _ in range(2)]
            try:
                rotate = subprocess.run(
                    [
                        sys.executable,
                        "-m",
                        "chaos.cli",
                        "secret",
                        "rotate",
                        "--grace",
                        "3",
                        "--run-dir",
                        str(stack.run_dir),
                    ],
                    cwd=REPO,
                    capture_output=True,
                    text=True,
                    timeout=60,
                )
            finally:
                rotating.clear()
            statuses = [status for shopper in shoppers for status in shopper.result()]
        assert rotate.returncode == 0, rotate.stdout + rotate.stderr
        assert "previous credential is refused" in rotate.stdout
        assert old.current not in rotate.stdout + rotate.stderr
        assert len(statuses) >= 5, statuses
        assert all(s in (201, 409) for s in statuses), statuses  # 409: out of stock; never a 401 or 5xx
        new = read_file(stack.credentials_file)
        assert new.generation == old.generation + 1 and new.current != old.current
        payments = f"{stack.url('payments')}/charges?order_id=x"
        assert send(payments, "GET", {"Authorization": f"Bearer {old.current}"}).status_code == 401
        assert send(payments, "GET", {"Authorization": f"Bearer {new.current}"}).status_code == 200
    finally:
        restore(stack, old.current)


def restore(stack: StackLayout, token: str) -> None:
    """Put the test stacks' credential back (other tests send it), as a rotation would."""
    now = read_file(stack.credentials_file)
    if now.current != token:
        credentials.write_file(stack.credentials_file, now.rotated(token, grace_s=0.0, now=0.0))
    wait_until(
        lambda: send(f"{stack.url('payments')}/charges?order_id=x", "GET", SERVICE_HEADERS).status_code == 200,
        timeout_s=10,
        message="the test credential is accepted again",
    )
