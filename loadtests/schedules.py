"""The timetables behind the load shapes: how many users at second `t`, or None to stop.

Plain functions of the settings and the time (no locust import), so tests check a whole
timetable without running it.
"""

from __future__ import annotations

import math

from loadtests.settings import StepSettings, SurgeSettings

Tick = tuple[int, float] | None  # (users, spawn rate per second), or None: the run is over


def surge_duration_s(s: SurgeSettings) -> float:
    return 2 * s.base_s + s.surge_s


def surge(s: SurgeSettings, t: float) -> Tick:
    """`base_users` for `base_s`, `peak_users` for `surge_s`, `base_users` for `base_s`."""
    if t >= surge_duration_s(s):
        return None
    users = s.peak_users if s.base_s <= t < s.base_s + s.surge_s else s.base_users
    return users, s.spawn_rate


def steps_duration_s(s: StepSettings) -> float:
    return math.ceil(s.max_users / s.step_users) * s.step_s


def steps(s: StepSettings, t: float) -> Tick:
    """`step_users` more every `step_s` up to `max_users`; the top step is held `step_s`."""
    if t >= steps_duration_s(s):
        return None
    users = min(s.max_users, (int(t // s.step_s) + 1) * s.step_users)
    return users, s.spawn_rate or float(s.step_users)
