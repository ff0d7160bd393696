"""payments' card processor: a fixed number of connections per replica, each busy for a
fixed service time, so one replica's capacity is connections / service time."""

from __future__ import annotations

import asyncio

import pytest

from services.common.web.errors import DeadlineExceeded
from services.payments.processor import IN_USE, Processor


def test_no_more_charges_run_at_once_than_there_are_connections():
    async def scenario() -> int:
        processor = Processor(connections=3, service_time_s=0.01)
        peak = 0

        async def charge() -> None:
            nonlocal peak
            task = asyncio.create_task(processor.authorise(lambda: True))
            await asyncio.sleep(0)
            peak = max(peak, int(IN_USE._value.get()))
            await task

        await asyncio.gather(*(charge() for _ in range(12)))
        return peak

    assert asyncio.run(scenario()) == 3
    assert IN_USE._value.get() == 0


def test_a_charge_whose_caller_gave_up_while_queueing_spends_no_connection_time():
    async def scenario() -> list[str]:
        processor = Processor(connections=1, service_time_s=0.05)
        outcomes = []

        async def charge(name: str, wanted: bool) -> None:
            try:
                await processor.authorise(lambda: wanted)
                outcomes.append(f"{name} authorised")
            except DeadlineExceeded:
                outcomes.append(f"{name} refused")

        await asyncio.gather(charge("first", True), charge("abandoned", False), charge("third", True))
        return outcomes

    assert asyncio.run(scenario()) == ["first authorised", "abandoned refused", "third authorised"]


@pytest.mark.parametrize("profile, capacity", [("ci", 30), ("training", 1280)])
def test_capacity_per_replica_comes_from_the_profile(profile, capacity):
    from services.payments.settings import Settings

    settings = Settings(chaoslab_profile=profile)
    assert settings.processor_connections / settings.processor_service_s == pytest.approx(capacity)
