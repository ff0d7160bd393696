"""Every knob of the load tests, read from the environment in one place.

Users and shapes take their numbers from here, so a drill or a person changes a run
with environment variables alone (locust's own `-u`/`-r`/`-t` still size runs without
a shape):

| variable | default | meaning |
|---|---|---|
| `CHAOSLAB_SHAPE` | (none) | `surge`, `step`, `spike` or `steady`: the load shape of a headless run |
| `CHAOSLAB_SURGE_BASE_USERS` | 10 | users before and after the surge |
| `CHAOSLAB_SURGE_PEAK_USERS` | 100 | users during the surge |
| `CHAOSLAB_SURGE_BASE_SECONDS` | 60 | length of the baseline, before and again after |
| `CHAOSLAB_SURGE_SECONDS` | 60 | length of the surge |
| `CHAOSLAB_SURGE_SPAWN_RATE` | 50 | users started (or stopped) per second on each change |
| `CHAOSLAB_STEP_USERS` | 10 | users added at each step |
| `CHAOSLAB_STEP_SECONDS` | 30 | length of each step |
| `CHAOSLAB_STEP_MAX_USERS` | 100 | the last step; it is held one step long, then the run ends |
| `CHAOSLAB_STEP_SPAWN_RATE` | step users | users started per second at each step |
| `CHAOSLAB_SPIKE_START_USERS` | 1 | users at the start of a spike |
| `CHAOSLAB_SPIKE_BASE_USERS` | 10 | users reached after the warm-up, and again after the spike |
| `CHAOSLAB_SPIKE_PEAK_USERS` | 500 | users at the top of the spike |
| `CHAOSLAB_SPIKE_WARM_SECONDS` | 10 | from the start users to the base users |
| `CHAOSLAB_SPIKE_RAMP_SECONDS` | 30 | from the base users to the peak, linearly |
| `CHAOSLAB_SPIKE_HOLD_SECONDS` | 60 | the peak is held this long |
| `CHAOSLAB_SPIKE_AFTER_SECONDS` | 30 | the base users again (dropped to at once), then the run ends |
| `CHAOSLAB_STEADY_USERS` | 20 | users of a steady run, all started in its first second |
| `CHAOSLAB_STEADY_SECONDS` | 180 | length of a steady run |
| `CHAOSLAB_THINK_MIN_S` / `CHAOSLAB_THINK_MAX_S` | 0.5 / 2 | a shopper's pause between actions |
| `CHAOSLAB_REPLAY_RATIO` | 0.05 | share of orders a shopper sends twice with the same key |
| `CHAOSLAB_READ_BACK_RATIO` | 1 | share of orders a shopper reads back (`GET /orders/{id}`) once placed |
| `CHAOSLAB_STORM_SIZE` | 20 | concurrent requests with one key in a duplicate storm |
| `CHAOSLAB_REQUEST_TIMEOUT_S` | 30 | a request with no answer by then is a failure |
| `CHAOSLAB_RETRY_AFTER_MAX_S` | 2 | the longest `Retry-After` a shopper waits; a longer one is cut to it |
| `CHAOSLAB_RETRY_JITTER_S` | 1 | a shopper told to come back later waits up to this much longer, at random |
| `CHAOSLAB_LEDGER` | (none) | append every answer to `POST /orders` to this file (`{pid}`: the process id) |

The client ledger (`chaos/ledger.py`) is one file per locust process; `chaoslab verify
--ledger FILE` holds its answers against the database.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TypeVar

from chaos import ledger

T = TypeVar("T", int, float)

SHAPE_VAR = "CHAOSLAB_SHAPE"


class LoadSettingsError(ValueError):
    """An environment variable holds something a load test cannot use."""


def _number(env: Mapping[str, str], name: str, default: T, kind: Callable[[str], T], *, minimum: float = 0) -> T:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = kind(raw)
    except ValueError:
        what = "a whole number" if kind is int else "a number"
        raise LoadSettingsError(f"{name}={raw!r} is not {what}") from None
    if value < minimum:
        raise LoadSettingsError(f"{name}={raw!r} must be at least {minimum:g}")
    return value


def _ratio(env: Mapping[str, str], name: str, default: float) -> float:
    ratio = _number(env, name, default, float)
    if ratio > 1:
        raise LoadSettingsError(f"{name}={ratio:g} must be between 0 and 1")
    return ratio


@dataclass(frozen=True)
class SurgeSettings:
    """Baseline, then a surge, then the baseline again; then the run ends."""

    base_users: int = 10
    peak_users: int = 100
    base_s: float = 60.0
    surge_s: float = 60.0
    spawn_rate: float = 50.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> SurgeSettings:
        return cls(
            base_users=_number(env, "CHAOSLAB_SURGE_BASE_USERS", cls.base_users, int, minimum=1),
            peak_users=_number(env, "CHAOSLAB_SURGE_PEAK_USERS", cls.peak_users, int, minimum=1),
            base_s=_number(env, "CHAOSLAB_SURGE_BASE_SECONDS", cls.base_s, float),
            surge_s=_number(env, "CHAOSLAB_SURGE_SECONDS", cls.surge_s, float, minimum=0.1),
            spawn_rate=_number(env, "CHAOSLAB_SURGE_SPAWN_RATE", cls.spawn_rate, float, minimum=0.1),
        )


@dataclass(frozen=True)
class StepSettings:
    """`step_users` more users every `step_s` seconds up to `max_users`; then the run ends."""

    step_users: int = 10
    step_s: float = 30.0
    max_users: int = 100
    spawn_rate: float | None = None  # None: the whole step within one second

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> StepSettings:
        rate = _number(env, "CHAOSLAB_STEP_SPAWN_RATE", 0.0, float)
        return cls(
            step_users=_number(env, "CHAOSLAB_STEP_USERS", cls.step_users, int, minimum=1),
            step_s=_number(env, "CHAOSLAB_STEP_SECONDS", cls.step_s, float, minimum=0.1),
            max_users=_number(env, "CHAOSLAB_STEP_MAX_USERS", cls.max_users, int, minimum=1),
            spawn_rate=rate or None,
        )


@dataclass(frozen=True)
class SpikeSettings:
    """A few users, the base, a linear ramp to the peak, the peak held, the base again at
    once; then the run ends (the project's spike test: 1 -> 10 -> 500 over 30 s, 60 s)."""

    start_users: int = 1
    base_users: int = 10
    peak_users: int = 500
    warm_s: float = 10.0
    ramp_s: float = 30.0
    hold_s: float = 60.0
    after_s: float = 30.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> SpikeSettings:
        return cls(
            start_users=_number(env, "CHAOSLAB_SPIKE_START_USERS", cls.start_users, int, minimum=1),
            base_users=_number(env, "CHAOSLAB_SPIKE_BASE_USERS", cls.base_users, int, minimum=1),
            peak_users=_number(env, "CHAOSLAB_SPIKE_PEAK_USERS", cls.peak_users, int, minimum=1),
            warm_s=_number(env, "CHAOSLAB_SPIKE_WARM_SECONDS", cls.warm_s, float),
            ramp_s=_number(env, "CHAOSLAB_SPIKE_RAMP_SECONDS", cls.ramp_s, float),
            hold_s=_number(env, "CHAOSLAB_SPIKE_HOLD_SECONDS", cls.hold_s, float, minimum=0.1),
            after_s=_number(env, "CHAOSLAB_SPIKE_AFTER_SECONDS", cls.after_s, float),
        )


@dataclass(frozen=True)
class SteadySettings:
    """`users` users for `duration_s` seconds; then the run ends."""

    users: int = 20
    duration_s: float = 180.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> SteadySettings:
        return cls(
            users=_number(env, "CHAOSLAB_STEADY_USERS", cls.users, int, minimum=1),
            duration_s=_number(env, "CHAOSLAB_STEADY_SECONDS", cls.duration_s, float, minimum=0.1),
        )


@dataclass(frozen=True)
class UserSettings:
    """How shoppers and duplicate storms behave."""

    think_min_s: float = 0.5
    think_max_s: float = 2.0
    replay_ratio: float = 0.05
    read_back_ratio: float = 1.0
    storm_size: int = 20
    request_timeout_s: float = 30.0
    retry_after_max_s: float = 2.0
    retry_jitter_s: float = 1.0
    ledger_path: str | None = None  # None: no client ledger is written

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> UserSettings:
        low = _number(env, "CHAOSLAB_THINK_MIN_S", cls.think_min_s, float)
        high = _number(env, "CHAOSLAB_THINK_MAX_S", max(low, cls.think_max_s), float, minimum=low)
        return cls(
            think_min_s=low,
            think_max_s=high,
            replay_ratio=_ratio(env, "CHAOSLAB_REPLAY_RATIO", cls.replay_ratio),
            read_back_ratio=_ratio(env, "CHAOSLAB_READ_BACK_RATIO", cls.read_back_ratio),
            storm_size=_number(env, "CHAOSLAB_STORM_SIZE", cls.storm_size, int, minimum=1),
            request_timeout_s=_number(env, "CHAOSLAB_REQUEST_TIMEOUT_S", cls.request_timeout_s, float, minimum=0.1),
            retry_after_max_s=_number(env, "CHAOSLAB_RETRY_AFTER_MAX_S", cls.retry_after_max_s, float),
            retry_jitter_s=_number(env, "CHAOSLAB_RETRY_JITTER_S", cls.retry_jitter_s, float),
            ledger_path=ledger.path_from_env(env),
        )


def shape_choice(env: Mapping[str, str] = os.environ) -> str | None:
    """The shape named by `CHAOSLAB_SHAPE` (lower case), or None."""
    return env.get(SHAPE_VAR, "").strip().lower() or None
