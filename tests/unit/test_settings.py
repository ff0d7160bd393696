"""Settings: the profile table fills every default, the environment wins over it."""

from __future__ import annotations

import os

import pytest
from pydantic import ValidationError

from services.common.resilience.policy import ResilienceSettings, policy_config
from services.common.web.settings import PROFILE_DEFAULTS, ServiceSettings, profile_defaults
from services.gateway.settings import Settings as GatewaySettings
from services.inventory.settings import Settings as InventorySettings
from services.notifications.settings import Settings as NotificationsSettings
from services.orders.settings import Settings as OrdersSettings
from services.payments.settings import Settings as PaymentsSettings

ALL = (GatewaySettings, OrdersSettings, PaymentsSettings, InventorySettings, NotificationsSettings)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    """No CHAOSLAB_PROFILE or setting from the shell running the tests."""
    names = {"chaoslab_profile"} | {n.split(".")[-1] for table in PROFILE_DEFAULTS.values() for n in table}
    for key in list(os.environ):
        if key.lower() in names:
            monkeypatch.delenv(key)


def test_both_profiles_set_the_same_fields_and_each_is_a_settings_field():
    assert set(PROFILE_DEFAULTS) == {"training", "ci"}
    assert set(PROFILE_DEFAULTS["training"]) == set(PROFILE_DEFAULTS["ci"])
    declared = set().union(*(cls.model_fields for cls in ALL))
    for name in PROFILE_DEFAULTS["training"]:
        service, _, field = name.rpartition(".")
        assert field in declared, name
        if service:
            assert any(cls.service == service and field in cls.model_fields for cls in ALL), name


def test_a_field_filled_from_the_table_has_no_default_of_its_own():
    for cls in ALL:
        for name in profile_defaults("training", cls.service):
            if name in cls.model_fields:
                assert cls.model_fields[name].is_required(), f"{cls.__module__}.{name}"
    for name in ResilienceSettings.model_fields:
        if name in PROFILE_DEFAULTS["training"]:
            assert ResilienceSettings.model_fields[name].is_required(), name


@pytest.mark.parametrize("profile", ["training", "ci"])
def test_the_profile_picks_the_values(monkeypatch, profile):
    monkeypatch.setenv("CHAOSLAB_PROFILE", profile)
    table = PROFILE_DEFAULTS[profile]
    for cls in ALL:
        settings = cls()
        assert settings.profile == profile
        for name, value in profile_defaults(profile, cls.service).items():
            if name in cls.model_fields:
                assert getattr(settings, name) == value, f"{cls.service}.{name}"
    orders, gateway = OrdersSettings(), GatewaySettings()
    assert orders.sweeper_interval_s == table["sweeper_interval_s"]
    assert orders.bulkhead_max_concurrent == table["bulkhead_max_concurrent"]
    assert gateway.bulkhead_max_concurrent == table["gateway.bulkhead_max_concurrent"]
    assert gateway.max_inflight == table["gateway.max_inflight"] and orders.max_inflight == table["max_inflight"]


def test_the_two_profiles_differ_where_the_table_says_so():
    training, ci = OrdersSettings(), OrdersSettings(chaoslab_profile="ci")
    assert training.profile == "training"  # the default profile
    assert (training.breaker_wait_open_s, ci.breaker_wait_open_s) == (30.0, 3.0)
    assert (training.downstream_timeout_s, ci.downstream_timeout_s) == (3.0, 1.5)
    assert (training.sweeper_interval_s, ci.sweeper_interval_s) == (30.0, 2.0)
    assert training.retry_max_attempts == ci.retry_max_attempts == 3


@pytest.mark.parametrize("profile", ["training", "ci"])
def test_the_gateway_calls_orders_slow_only_past_two_inner_calls(profile):
    """Orders' POST waits on inventory and on payments: a saturated leaf must not make
    the gateway's breaker refuse every route of orders, yet a slow orders still trips it
    within the gateway's own timeout."""
    orders, gateway = OrdersSettings(chaoslab_profile=profile), GatewaySettings(chaoslab_profile=profile)
    assert 2 * orders.downstream_timeout_s <= gateway.breaker_slow_call_s < gateway.request_timeout_s
    assert orders.breaker_slow_call_s < orders.downstream_timeout_s


def test_the_environment_wins_over_the_profile(monkeypatch):
    monkeypatch.setenv("CHAOSLAB_PROFILE", "ci")
    monkeypatch.setenv("BREAKER_WAIT_OPEN_S", "5")
    monkeypatch.setenv("BULKHEAD_MAX_CONCURRENT", "7")
    monkeypatch.setenv("MAX_INFLIGHT", "9")
    monkeypatch.setenv("SWEEPER_INTERVAL_S", "0.25")
    orders, gateway = OrdersSettings(), GatewaySettings()
    assert orders.breaker_wait_open_s == gateway.breaker_wait_open_s == 5.0
    assert orders.bulkhead_max_concurrent == gateway.bulkhead_max_concurrent == 7  # over `gateway.*` too
    assert gateway.max_inflight == 9
    assert orders.sweeper_interval_s == 0.25
    assert orders.breaker_slow_call_s == PROFILE_DEFAULTS["ci"]["breaker_slow_call_s"]  # the rest: the profile
    assert policy_config(orders, "payments", orders.downstream_timeout_s).breaker.wait_in_open_s == 5.0


def test_an_empty_variable_counts_as_unset(monkeypatch):
    monkeypatch.setenv("BREAKER_WAIT_OPEN_S", "")
    settings = PaymentsSettings()
    assert settings.breaker_wait_open_s == PROFILE_DEFAULTS["training"]["breaker_wait_open_s"]


def test_an_unknown_profile_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("CHAOSLAB_PROFILE", "staging")
    with pytest.raises(ValidationError, match=r"CHAOSLAB_PROFILE='staging' is not a profile; use one of: training, ci"):
        OrdersSettings()
    with pytest.raises(ValueError, match="staging"):
        profile_defaults("staging")


def test_service_settings_subclass_gets_its_service_values():
    class Gateway(ServiceSettings):
        service = "gateway"

    class Other(ServiceSettings):
        service = "other"

    assert Gateway().max_inflight == PROFILE_DEFAULTS["training"]["gateway.max_inflight"]
    assert Other().max_inflight == PROFILE_DEFAULTS["training"]["max_inflight"]
