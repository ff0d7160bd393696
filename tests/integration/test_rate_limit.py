"""The gateway's rate limit cannot be evaded by inventing client ids, and its metric
keeps a bounded set of series whatever ids clients send.

Every request here comes from one address (127.0.0.1), as locust's users do: each user
names itself with an `X-Client-ID` of its own (loadtests/users.py).
"""

from __future__ import annotations

import re
import time
import uuid

import httpx
import pytest

from tests.support.chaos import clear_faults, put_fault

pytestmark = pytest.mark.stack

RATE = 1.0  # requests/s per client, set with the `rate_limit_rps` fault


@pytest.fixture(autouse=True)
def limited(stack, client):
    put_fault(client, stack, "gateway", "rate_limit_rps", RATE)
    yield
    clear_faults(client, stack)


def _get(client: httpx.Client, gateway: str, client_id: str) -> httpx.Response:
    return client.get(f"{gateway}/orders", params={"limit": 1}, headers={"X-Client-ID": client_id})


def _series(client: httpx.Client, stack) -> dict[str, float]:
    """client label -> value of every rate_limited_total series on the gateway."""
    text = client.get(f"{stack.url('gateway')}/metrics").text
    return {m[1]: float(m[2]) for m in re.finditer(r'^rate_limited_total\{client="([^"]*)"\} (\S+)$', text, re.M)}


def test_a_few_clients_on_one_address_each_get_their_own_limit(stack, gateway, client):
    """The locust case: several users, one address, each within its own limit."""
    users = [f"locust-shopper-{uuid.uuid4().hex[:12]}" for _ in range(6)]
    assert [_get(client, gateway, u).status_code for u in users] == [200] * 6
    # Each is then over its own limit, and is told so.
    refused = _get(client, gateway, users[0])
    assert refused.status_code == 429 and refused.json()["error"]["code"] == "rate_limited"
    assert int(refused.headers["Retry-After"]) >= 1
    # A known client's refusals are counted under its name (the family, not the user).
    assert _series(client, stack).get("locust", 0) >= 1


def test_rotating_client_ids_from_one_address_does_not_get_past_the_cap(stack, gateway, client):
    series_before = _series(client, stack)
    sent = 120
    started = time.monotonic()
    answers = [_get(client, gateway, f"rotating-{uuid.uuid4()}") for _ in range(sent)]
    elapsed = time.monotonic() - started
    admitted = sum(a.status_code == 200 for a in answers)
    refused = [a for a in answers if a.status_code == 429]
    assert refused, f"all {sent} requests with invented client ids were admitted"
    assert {a.json()["error"]["code"] for a in refused} == {"rate_limited"}
    assert admitted + len(refused) == sent

    # The address's bucket: a burst of `share` clients' worth, refilled at `share` x RATE.
    from services.gateway import ratelimit

    share = ratelimit.ADDRESS_SHARE
    assert admitted <= share * max(1.0, RATE) + share * RATE * elapsed + 1

    # Every invented id was refused under one bounded label, not a series of its own.
    series = _series(client, stack)
    assert set(series) - set(series_before) <= {"other"}
    assert series["other"] - series_before.get("other", 0) == len(refused)
    assert set(series) <= {*ratelimit.KNOWN_CLIENTS, ratelimit.OTHER}
