"""The sweeper resumes orders left `pending` by a crash or an unanswered step.

Every `sweeper_interval_s` it claims the pending orders whose lease has expired and runs
their saga again from the top: each step is idempotent, so resuming is safe. A saga that
is alive renews its lease (the heartbeat in saga.run), so an expired lease means its
owner died or gave up; the claim hands out a new lease token, which fences the old owner
out of every later write.
"""

from __future__ import annotations

import asyncio

from services.common.data.db import DB_ERRORS
from services.common.web import logging as log
from services.common.web.errors import ChaoslabError
from services.common.web.metrics import orders_resumed_total
from services.orders import saga, store

_logger = log.get_logger("sweeper")


async def sweep_once(deps: saga.SagaDeps, *, batch: int = 100, concurrency: int = 8) -> int:
    """Resume every abandoned order found now; returns how many were claimed."""
    async with deps.db.connection() as conn:
        candidates = await store.expired_pending(conn, batch)
    gate = asyncio.Semaphore(concurrency)
    claimed = 0

    async def resume(order_id: str) -> None:
        nonlocal claimed
        async with gate:
            async with deps.db.connection() as conn:
                order = await store.claim(conn, order_id, deps.lease_s)
            if order is None:
                return
            claimed += 1
            orders_resumed_total.inc()
            log.correlation_id.set(order.correlation_id)
            try:
                answer = await saga.run(deps, order, resumed=True)
                _logger.info("sweeper.resumed", order_id=order_id, status=answer.body.get("status"))
            except ChaoslabError as exc:
                _logger.warning("sweeper.still_pending", order_id=order_id, reason=exc.message)

    await asyncio.gather(*(resume(i) for i in candidates))
    return claimed


async def run_forever(deps: saga.SagaDeps, interval_s: float) -> None:
    while True:
        await asyncio.sleep(interval_s)
        try:
            await sweep_once(deps)
        except (ChaoslabError, *DB_ERRORS) as exc:
            _logger.warning("sweeper.failed", error=str(exc))
        except Exception as exc:
            _logger.error("sweeper.error", error=repr(exc), exc_info=exc)
