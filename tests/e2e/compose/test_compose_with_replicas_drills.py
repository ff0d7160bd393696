"""The two replica incidents drilled in compose: load past one payments container
(cannot-scale: fixed by `chaoslab scale payments 3 --target compose`) and one payments
container failing every call (worker-unhealthy: the fault targets replica 2, which knows
its number from its container's name).

Two cores carry about 45 order requests a second through the compose stack, past one
payments replica of the ci profile (30 charges/s) by too little to queue for sure:
payments runs with two card-processor connections (20 charges/s a replica), as
docs/scaling.md tells a small machine to. Runs after test_compose_with_replicas.py (file
order), on the same stack; it goes back to one payments container with the profile's
processor at the end.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.e2e.compose.conftest import Engine

DRILLS = ("cannot-scale", "worker-unhealthy")
SMALL_PROCESSOR = {"PROCESSOR_CONNECTIONS": "2"}


def recreate_payments(engine: Engine) -> None:
    engine.compose(
        "up", "-d", "--no-deps", "--force-recreate", "--wait", "--scale", "payments=1", "payments", timeout_s=240
    )


@pytest.fixture()
def small_processor(engine: Engine) -> Iterator[None]:
    engine.env.update(SMALL_PROCESSOR)  # the drills' own `chaoslab scale` passes it on too
    try:
        recreate_payments(engine)
        yield
    finally:
        for name in SMALL_PROCESSOR:
            engine.env.pop(name, None)
        recreate_payments(engine)


@pytest.mark.alone  # drill budgets
@pytest.mark.timeout(1200)
def test_replica_drills_run_against_compose(engine: Engine, small_processor, tmp_path):
    engine.drill(DRILLS, tmp_path, timeout_s=1000)
