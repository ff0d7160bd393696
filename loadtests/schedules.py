"""The timetables behind the load shapes: how many users at second `t`, or None to stop.

Plain functions of the settings and the time (no locust import), so tests check a whole
timetable without running it.
"""

from __future__ import annotations

import math

from loadtests.settings import SpikeSettings, SteadySettings, StepSettings, SurgeSettings

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


def spike_duration_s(s: SpikeSettings) -> float:
    return s.warm_s + s.ramp_s + s.hold_s + s.after_s


def spike(s: SpikeSettings, t: float) -> Tick:
    """`start_users` to `base_users` over `warm_s`, on to `peak_users` over `ramp_s`
    (linearly: the users of second `t`), the peak for `hold_s`, then `base_users` at once
    for `after_s`. Spawn rates let locust keep up with each change within a second."""
    if t >= spike_duration_s(s):
        return None
    ramp_rate = max(1.0, 2.0 * (s.peak_users - s.base_users) / s.ramp_s) if s.ramp_s > 0 else float(s.peak_users)
    if t < s.warm_s:
        users = s.start_users + (s.base_users - s.start_users) * t / s.warm_s
        return max(1, math.floor(users)), max(1.0, float(abs(s.base_users - s.start_users)))
    t -= s.warm_s
    if t < s.ramp_s:
        return s.base_users + math.floor((s.peak_users - s.base_users) * t / s.ramp_s), ramp_rate
    t -= s.ramp_s
    if t < s.hold_s:
        return s.peak_users, ramp_rate
    return s.base_users, float(max(s.peak_users, 1))  # the surge ends at once


def steady(s: SteadySettings, t: float) -> Tick:
    """`users` users, all started in the first second, for `duration_s`."""
    if t >= s.duration_s:
        return None
    return s.users, float(s.users)
