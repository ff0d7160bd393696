"""Bulkhead: limit, wait, rejection, hand-over, cancellation. No sleeps: events only."""

from __future__ import annotations

import asyncio
import itertools

import pytest
from prometheus_client import REGISTRY

from services.common.resilience.bulkhead import Bulkhead
from services.common.web import errors

_names = itertools.count()


def bulkhead(max_concurrent: int, max_wait_s: float) -> Bulkhead:
    return Bulkhead(f"bulkhead-test-{next(_names)}", max_concurrent, max_wait_s)


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_admits_up_to_the_limit_and_rejects_at_once_without_wait():
    async def scenario():
        b = bulkhead(2, 0)
        await b.acquire()
        await b.acquire()
        assert metric("bulkhead_inflight", downstream=b.name) == 2
        with pytest.raises(errors.BulkheadFull) as caught:
            await b.acquire()
        assert caught.value.downstream == b.name
        assert caught.value.headers() == {"Retry-After": "1", "X-Failed-Dependency": b.name}
        assert metric("bulkhead_rejections_total", downstream=b.name) == 1
        b.release()
        await b.acquire()  # the freed slot is usable again
        b.release()
        b.release()
        assert b.inflight == 0
        assert metric("bulkhead_inflight", downstream=b.name) == 0

    asyncio.run(scenario())


def test_context_manager_releases_on_error():
    async def scenario():
        b = bulkhead(1, 0)
        with pytest.raises(RuntimeError):
            async with b:
                assert b.inflight == 1
                raise RuntimeError("boom")
        assert b.inflight == 0

    asyncio.run(scenario())


def test_a_waiter_gets_the_freed_slot_first_come_first_served():
    async def scenario():
        b = bulkhead(1, 60.0)
        await b.acquire()
        order: list[str] = []

        async def waiter(label: str) -> None:
            async with b:
                order.append(label)

        first = asyncio.create_task(waiter("first"))
        second = asyncio.create_task(waiter("second"))
        await asyncio.sleep(0)  # let both queue up (a yield, not a timed wait)
        assert b.inflight == 1 and not first.done()
        b.release()
        await asyncio.gather(first, second)
        assert order == ["first", "second"]
        assert b.inflight == 0

    asyncio.run(scenario())


def test_a_newcomer_cannot_overtake_a_waiter():
    async def scenario():
        b = bulkhead(1, 60.0)
        await b.acquire()
        waiting = asyncio.create_task(b.acquire())
        await asyncio.sleep(0)
        b.release()  # handed straight to the waiter
        with pytest.raises(errors.BulkheadFull):
            b.max_wait_s = 0
            await b.acquire()
        await waiting
        assert b.inflight == 1

    asyncio.run(scenario())


def test_waiting_longer_than_max_wait_is_rejected():
    async def scenario():
        b = bulkhead(1, 0.001)  # a timer that fires by itself: nothing hopes on timing
        await b.acquire()
        with pytest.raises(errors.BulkheadFull):
            await b.acquire()
        assert b.inflight == 1
        b.release()
        assert b.inflight == 0
        assert metric("bulkhead_rejections_total", downstream=b.name) == 1

    asyncio.run(scenario())


def test_a_cancelled_waiter_gives_up_its_place():
    async def scenario():
        b = bulkhead(1, 60.0)
        await b.acquire()
        waiting = asyncio.create_task(b.acquire())
        await asyncio.sleep(0)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        b.release()
        assert b.inflight == 0

    asyncio.run(scenario())


def test_a_waiter_cancelled_after_the_hand_over_passes_the_slot_on():
    async def scenario():
        b = bulkhead(1, 60.0)
        await b.acquire()
        first = asyncio.create_task(b.acquire())
        second = asyncio.create_task(b.acquire())
        await asyncio.sleep(0)
        b.release()  # slot handed to `first` ...
        first.cancel()  # ... which is cancelled before it runs
        with pytest.raises(asyncio.CancelledError):
            await first
        await second  # so `second` gets it
        assert b.inflight == 1
        b.release()
        assert b.inflight == 0

    asyncio.run(scenario())
