"""chaoslab load: shoppers and duplicate storms against the gateway, with optional shapes.

    locust -f loadtests/locustfile.py --host http://127.0.0.1:8000           # web UI, :8089
    locust -f loadtests/locustfile.py --host ... --class-picker              # UI picks users/shape
    locust -f loadtests/locustfile.py --host ... --headless -u 20 -r 5 -t 1m --tags shop
    CHAOSLAB_SHAPE=surge locust -f loadtests/locustfile.py --host ... --headless
    CHAOSLAB_SHAPE=step  locust -f loadtests/locustfile.py --host ... --headless
    CHAOSLAB_SHAPE=spike locust -f loadtests/locustfile.py --host ... --headless --tags shop
    CHAOSLAB_SHAPE=steady locust -f loadtests/locustfile.py --host ... --headless --tags shop

Tags: `shop` (Shopper), `orders` (the Shopper's orders only), `duplicates` (DuplicateStorm).
Shapes: `SurgeShape`, `StepShape`, `SpikeShape`, `SteadyShape`, exposed only when
`CHAOSLAB_SHAPE` names one or the class picker is on (locust would otherwise force the
first shape it finds on every run). Knobs: `loadtests/settings.py`.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

if importlib.util.find_spec("loadtests") is None:  # run by path from elsewhere
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from locust import events

from loadtests import shapes
from loadtests.settings import LoadSettingsError, shape_choice

try:
    from loadtests.users import DuplicateStorm, Shopper
except LoadSettingsError as bad:
    sys.exit(f"chaoslab load settings: {bad}")

__all__ = ["DuplicateStorm", "Shopper"]


def _class_picker_on() -> bool:
    return "--class-picker" in sys.argv or os.environ.get("LOCUST_USERCLASS_PICKER", "").lower() in (
        "1",
        "true",
        "yes",
        "on",
    )


try:
    _shapes = shapes.for_run(shape_choice(), class_picker=_class_picker_on())
except LoadSettingsError as bad:
    sys.exit(f"chaoslab load settings: {bad}")
globals().update({shape.__name__: shape for shape in _shapes})  # locust looks for them here
del _shapes


def _runs_with_tags(user_class, tags: set[str] | None, exclude: set[str] | None) -> bool:
    for t in user_class.tasks:
        tagged = getattr(t, "locust_tag_set", set())
        if (tags is None or tagged & tags) and not (exclude and tagged & exclude):
            return True
    return False


@events.init.add_listener
def _drop_users_left_without_tasks(environment, **_kwargs) -> None:
    """`--tags shop` leaves DuplicateStorm with no task, and locust would still spawn it
    (and fail); run only the users the tags leave something to do."""
    options = environment.parsed_options
    tags = set(options.tags) if options and options.tags else None
    exclude = set(options.exclude_tags) if options and options.exclude_tags else None
    if tags is None and exclude is None:
        return
    keep = [u for u in environment.user_classes if _runs_with_tags(u, tags, exclude)]
    if keep:
        environment.user_classes[:] = keep
