"""`chaoslab chaos` on a cluster talks to the services' /chaos/config (chaos/chaos_api.py):
here against the live native stack's real services, with the stack's Redis as witness."""

from __future__ import annotations

import asyncio

import pytest

from chaos.chaos_api import ApiRefused, ChaosApi
from services.common.faults.store import ChaosStore, connect
from tests.support.chaos import clear_faults


@pytest.fixture(autouse=True)
def no_faults_left(stack, client):
    yield
    clear_faults(client, stack)


def run(stack, token, action):
    async def go():
        api = ChaosApi(stack.url, token)
        store = ChaosStore(connect(stack.redis_url), stack.profile)
        try:
            return await action(api, store)
        finally:
            await api.aclose()
            await store.redis.aclose()

    return asyncio.run(go())


def test_set_list_and_clear_go_through_the_services_api(stack):
    async def scenario(api, store):
        fault = await api.set("payments", "error_rate", "0.3", ttl_s=60)
        in_redis = await store.active("payments")
        listed = await api.active()
        cleared = await api.clear("payments", "error_rate")
        return fault, in_redis, listed, cleared, await store.active()

    fault, in_redis, listed, cleared, left = run(stack, stack.chaos_token, scenario)
    assert (fault.service, fault.fault, fault.value) == ("payments", "error_rate", 0.3)
    assert 0 < fault.ttl_s <= 60
    assert [f.key for f in in_redis] == [fault.key] == [f.key for f in listed]
    assert cleared == 1 and left == []


def test_the_services_refusals_come_back_as_clear_errors(stack):
    async def bad_value(api, _store):
        await api.set("payments", "error_rate", "7")

    with pytest.raises(ApiRefused) as refused:
        run(stack, stack.chaos_token, bad_value)
    assert refused.value.http_status == 422 and refused.value.message.startswith("payments: ")

    async def wrong_token(api, _store):
        await api.set("payments", "error_rate", "0.1")

    with pytest.raises(ApiRefused) as refused:
        run(stack, "not-the-token", wrong_token)
    assert refused.value.http_status == 401 and refused.value.code == "chaos_token_invalid"
