"""The resilience patterns' configs with the training profile's values, for tests and
benchmarks that run the patterns without a server: change only what a test is about."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from services.common.resilience.breaker import BreakerConfig
from services.common.resilience.policy import PolicyConfig, ResilienceSettings, policy_config
from services.common.web.settings import profile_defaults


def resilience_settings(profile: str = "training", **fields: Any) -> ResilienceSettings:
    """A service's resilience fields as the profile sets them, `fields` changed."""
    return ResilienceSettings(**{**profile_defaults(profile), **fields})


def policy_config_of(profile: str = "training", **changes: Any) -> PolicyConfig:
    """The PolicyConfig a service of `profile` builds, with PolicyConfig fields `changes`."""
    timeout_s = profile_defaults(profile)["downstream_timeout_s"]
    return replace(policy_config(resilience_settings(profile), "test", timeout_s), **changes)


def breaker_config(profile: str = "training", **changes: Any) -> BreakerConfig:
    """The profile's BreakerConfig with BreakerConfig fields `changes`."""
    return replace(policy_config_of(profile).breaker, **changes)
