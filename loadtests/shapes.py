"""Load shapes: a surge past capacity (gateway-overload), capacity steps (cannot-scale),
the spike of bench/overload.py (a ramp to several times capacity, held) and a steady
load (partial-failure runs).

Both end by themselves (`tick` answers None), so a headless run stops on its own. Their
numbers come from `loadtests.settings` (environment variables), their timetables from
`loadtests.schedules`.

`for_run` picks what the locustfile exposes to locust. Locust runs the first shape it
finds in a locustfile unless the web UI's class picker is on, so a shape is exposed only
when asked for: by `CHAOSLAB_SHAPE=surge|step|spike|steady`, or all of them for the picker.
"""

from __future__ import annotations

from locust import LoadTestShape

from loadtests import schedules
from loadtests.settings import (
    SHAPE_VAR,
    LoadSettingsError,
    SpikeSettings,
    SteadySettings,
    StepSettings,
    SurgeSettings,
)


class SurgeShape(LoadTestShape):
    """Baseline users, a surge to several times as many, the baseline again, then stop
    (`CHAOSLAB_SURGE_*`)."""

    def __init__(self, settings: SurgeSettings | None = None) -> None:
        super().__init__()
        self.settings = settings or SurgeSettings.from_env()

    def tick(self) -> schedules.Tick:
        return schedules.surge(self.settings, self.get_run_time())


class StepShape(LoadTestShape):
    """A step of users more every few seconds up to a maximum, held one step, then stop
    (`CHAOSLAB_STEP_*`)."""

    def __init__(self, settings: StepSettings | None = None) -> None:
        super().__init__()
        self.settings = settings or StepSettings.from_env()

    def tick(self) -> schedules.Tick:
        return schedules.steps(self.settings, self.get_run_time())


class SpikeShape(LoadTestShape):
    """A ramp from the base users to the peak, held, then the base again at once; then
    stop (`CHAOSLAB_SPIKE_*`)."""

    def __init__(self, settings: SpikeSettings | None = None) -> None:
        super().__init__()
        self.settings = settings or SpikeSettings.from_env()

    def tick(self) -> schedules.Tick:
        return schedules.spike(self.settings, self.get_run_time())


class SteadyShape(LoadTestShape):
    """The same users for a while, then stop (`CHAOSLAB_STEADY_*`)."""

    def __init__(self, settings: SteadySettings | None = None) -> None:
        super().__init__()
        self.settings = settings or SteadySettings.from_env()

    def tick(self) -> schedules.Tick:
        return schedules.steady(self.settings, self.get_run_time())


SHAPES: dict[str, type[LoadTestShape]] = {
    "surge": SurgeShape,
    "step": StepShape,
    "spike": SpikeShape,
    "steady": SteadyShape,
}


def for_run(choice: str | None, *, class_picker: bool) -> list[type[LoadTestShape]]:
    """The shape classes a locustfile should expose for this run.

    `choice` is `CHAOSLAB_SHAPE` (`surge`, `step`, `spike`, `steady` or None). With no choice a run has no
    shape (plain `-u`/`-r`), unless the class picker is on: then the web UI offers every
    shape next to "Default".
    """
    if choice is None:
        return list(SHAPES.values()) if class_picker else []
    try:
        return [SHAPES[choice]]
    except KeyError:
        raise LoadSettingsError(f"{SHAPE_VAR}={choice!r} is not a shape; use one of: " + ", ".join(SHAPES)) from None
