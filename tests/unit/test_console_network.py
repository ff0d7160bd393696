"""The compose console's view of the stack: compose's service names by default, each
address movable from the environment."""

from __future__ import annotations

from chaos.console.network import NetworkStack


def test_addresses_default_to_compose_service_names_and_ports() -> None:
    stack = NetworkStack.from_env({})
    assert stack.url("gateway") == "http://gateway:8000"
    assert stack.url("alertmanager") == "http://alertmanager:9093"
    assert (stack.redis_url, stack.profile, stack.chaos_token) == ("redis://redis:6379/0", "training", "")


def test_the_environment_moves_an_address_and_sets_the_token() -> None:
    env = {"PAYMENTS_URL": "http://10.0.0.5:9002/", "CHAOS_TOKEN": "t", "CHAOSLAB_PROFILE": "ci"}
    stack = NetworkStack.from_env(env)
    assert stack.url("payments") == "http://10.0.0.5:9002"
    assert (stack.chaos_token, stack.profile) == ("t", "ci")


def test_a_program_that_does_not_answer_reads_unreachable() -> None:
    stack = NetworkStack.from_env(
        {
            "REDIS_URL": "redis://127.0.0.1:1/0",
            **{
                f"{n}_URL": "http://127.0.0.1:1"
                for n in ("GATEWAY", "ORDERS", "PAYMENTS", "INVENTORY", "NOTIFICATIONS", "PROMETHEUS", "ALERTMANAGER")
            },
        }
    )
    rows = stack.status()
    assert {r.name for r in rows} >= {"gateway", "redis", "alertmanager"}
    assert {(r.state, r.healthy) for r in rows} == {("UNREACHABLE", False)}
