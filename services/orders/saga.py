"""The order saga: reserve stock, charge, then commit the stock or release it.

Every step is idempotent per order, so the saga can be run again from the top after a
crash (by the sweeper) or a timeout (by a client retry with the same key). When a
step's outcome is unknown the order stays `pending` and the client gets 503 with
`Retry-After`; nothing is guessed. When inventory could not be asked at all (its breaker
open, its bulkhead full) the order is withdrawn instead, so that its key starts afresh:
the request and any duplicate waiting on it get 503 with `Retry-After`. A charge whose
outcome is unknown is declared failed together with its compensation: a void, delivered
to payments through the outbox until acknowledged, so a charge that did go through is
refunded and one that arrives late is refused.

A saga may legitimately outlive its order's lease (slow steps, retries): while it runs,
a heartbeat in the saga's own task group renews the lease every third of it, so the
sweeper does not take over an order whose owner is alive. The heartbeat ends with the
saga, whichever way it ends (an answer, an error, a cancelled or dead process); then the
lease runs out and the sweeper resumes the order. A renewal that comes too late changes
nothing: every write that renews or finishes an order is fenced by its lease token
(store.py), and a takeover hands out a new one.

Two patterns can be switched off here (PATTERNS): without `idempotency` every request
places a new order, whatever its key; without `outbox` the order's events are sent
once, right after its final status is committed (`deps.direct`), and lost if that fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass
from typing import Any

from services.common.data.contracts import OrderRequest
from services.common.data.db import Database
from services.common.data.idempotency import fingerprint
from services.common.data.outbox import DirectDelivery
from services.common.web import logging as log
from services.common.web.errors import Conflict, DependencyUnavailable
from services.common.web.http import Downstream
from services.common.web.metrics import idempotency_conflicts_total, orders_resumed_total
from services.common.web.middleware import request_deadline
from services.orders import steps, store
from services.orders.steps import Unsure
from services.orders.store import OrderRow

_logger = log.get_logger("saga")


@dataclass(frozen=True)
class SagaDeps:
    """What the saga runs on. `idempotency` False: a key does not make a repeat the same
    order. `direct`: the outbox is off and events go out through it, once."""

    db: Database
    inventory: Downstream
    payments: Downstream
    lease_s: float
    call_budget_s: float
    idempotency: bool = True
    direct: DirectDelivery | None = None


@dataclass(frozen=True)
class Answer:
    http_status: int
    body: dict[str, Any]
    replayed: bool = False


class _Finished:
    """Wakes requests waiting on an order this process is running (cross-process
    waiters fall back to polling the row)."""

    def __init__(self) -> None:
        self._events: dict[str, asyncio.Event] = {}

    def event(self, order_id: str) -> asyncio.Event:
        return self._events.setdefault(order_id, asyncio.Event())

    def set(self, order_id: str) -> None:
        event = self._events.pop(order_id, None)
        if event:
            event.set()


finished = _Finished()


async def place_order(deps: SagaDeps, *, key: str, request: OrderRequest, correlation_id: str | None) -> Answer:
    body = request.model_dump()
    async with deps.db.connection() as conn:
        order, created = await store.insert_pending(
            conn,
            key=key,
            request_hash=fingerprint(body),
            customer_id=request.customer_id,
            items=body["items"],
            correlation_id=correlation_id,
            lease_s=deps.lease_s,
            deduplicate=deps.idempotency,
        )
    if created:
        return await run(deps, order, resumed=False)
    if order.request_hash != fingerprint(body):
        idempotency_conflicts_total.labels("reused").inc()
        raise Conflict(
            "idempotency_key_reused",
            f"Idempotency-Key {key!r} was already used for order {order.order_id} with a "
            "different body; use a new key for a new order",
        )
    idempotency_conflicts_total.labels("replayed" if order.status != "pending" else "in_flight").inc()
    return await outcome_of(deps, order)


async def outcome_of(deps: SagaDeps, order: OrderRow) -> Answer:
    """A repeated request: replay a finished order, resume an abandoned one, or wait for
    the one in flight until this request's own deadline.

    The order waited for may vanish: its first request withdraws it when nothing was
    sent (`_run`). This request is then answered as that one was, 503 with Retry-After:
    its retry with the same key places the order afresh, still one order per key."""
    deadline = request_deadline.get() or (time.time() + deps.lease_s)
    while True:
        if order.status != "pending":
            return _replay(order)
        async with deps.db.connection() as conn:
            claimed = await store.claim(conn, order.order_id, deps.lease_s)
        if claimed:
            orders_resumed_total.inc()
            return await run(deps, claimed, resumed=True)
        left = deadline - time.time()
        if left <= 0:
            raise DependencyUnavailable(
                f"order {order.order_id} is still being processed; retry with the same Idempotency-Key", retry_after_s=1
            )
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(finished.event(order.order_id).wait(), min(left, 0.1))
        async with deps.db.connection() as conn:
            current = await store.get(conn, order.order_id)
        if current is None:
            raise _withdrawn(order)
        order = current


def _replay(order: OrderRow) -> Answer:
    # store.finish writes the final status and the answer together, in one statement.
    assert order.response_status is not None and order.response_body is not None, order.order_id
    return Answer(order.response_status, order.response_body, replayed=True)


def _withdrawn(order: OrderRow) -> DependencyUnavailable:
    """The answer for a request whose order was withdrawn while it waited."""
    return DependencyUnavailable(
        f"order {order.order_id} was withdrawn: a dependency was unavailable before anything was sent. "
        "Retry with the same Idempotency-Key",
        retry_after_s=1,
    )


# The heartbeat renews the lease this often, as a share of the lease: two beats may be
# missed (a slow database) before the lease runs out.
HEARTBEAT_SHARE = 1 / 3


async def run(deps: SagaDeps, order: OrderRow, *, resumed: bool) -> Answer:
    """Run (or resume) the saga for an order whose lease this caller holds, keeping the
    lease for as long as the saga runs."""
    try:
        failure: Exception | None = None
        async with asyncio.TaskGroup() as saga_tasks:
            heartbeat = saga_tasks.create_task(_keep_lease(deps, order))
            try:
                answer = await _run(deps, order, resumed)
            except Exception as exc:  # noqa: BLE001 - raised as itself below, not in an ExceptionGroup
                failure = exc
            finally:
                heartbeat.cancel()
        if failure is not None:
            raise failure
        return answer
    finally:
        finished.set(order.order_id)


async def _keep_lease(deps: SagaDeps, order: OrderRow) -> None:
    """Renew the order's lease until cancelled (by the saga's end) or until the lease is
    found lost. Never raises: a failed beat is only tried again at the next."""
    while True:
        await asyncio.sleep(deps.lease_s * HEARTBEAT_SHARE)
        try:
            async with deps.db.connection() as conn:
                held = await store.renew_lease(conn, order, deps.lease_s)
        except Exception as exc:  # noqa: BLE001 - a heartbeat never takes its saga down
            _logger.warning("order.lease_renewal_failed", order_id=order.order_id, error=str(exc))
            continue
        if not held:  # finished, withdrawn or given up just now, or taken over after a long stall
            _logger.info("order.lease_not_renewed", order_id=order.order_id)
            return


async def _run(deps: SagaDeps, order: OrderRow, resumed: bool) -> Answer:
    budget = deps.call_budget_s
    try:
        status, reservation = await steps.reserve(deps.inventory, order.order_id, order.requested_items, budget)
    except Unsure as unsure:
        if not unsure.sent and not resumed:
            async with deps.db.connection() as conn:
                await store.forget(conn, order)
            raise DependencyUnavailable(
                f"inventory unavailable: {unsure.reason}",
                dependency=unsure.downstream,
                retry_after_s=unsure.retry_after_s or 1,
            ) from unsure
        return await _postpone(deps, order, unsure)
    if status == 422:
        return await _finish(deps, order, "rejected", 422, reservation, None, None)
    items, total = reservation["items"], reservation["total_cents"]
    if status == 409:
        return await _finish(deps, order, "out_of_stock", 409, None, items, total)
    try:
        if reservation["status"] == "released":  # an earlier run gave up: make sure of it
            return await _finish(deps, order, "payment_failed", 402, None, items, total, void=True)
        paid, unknown = await _charge(deps, order, total, resumed)
        if paid:
            await steps.commit(deps.inventory, order.order_id, budget)
            return await _finish(deps, order, "confirmed", 201, None, items, total)
        await steps.release(deps.inventory, order.order_id, budget)
        return await _finish(deps, order, "payment_failed", 402, None, items, total, void=unknown)
    except Unsure as unsure:
        return await _postpone(deps, order, unsure)


async def _charge(deps: SagaDeps, order: OrderRow, total: int, resumed: bool) -> tuple[bool, bool]:
    """(paid, outcome unknown): paid; surely not paid (declined, voided, never sent);
    or unknown (sent without an answer, or sent by an earlier run of this saga)."""
    try:
        status = await steps.charge(
            deps.payments,
            key=order.idempotency_key,
            order_id=order.order_id,
            customer_id=order.customer_id,
            amount_cents=total,
            budget_s=deps.call_budget_s,
        )
    except Unsure as unsure:
        _logger.info("order.charge_failed", order_id=order.order_id, reason=unsure.reason, sent=unsure.sent)
        return False, unsure.sent or resumed
    return status == "succeeded", False


async def _postpone(deps: SagaDeps, order: OrderRow, unsure: Unsure) -> Answer:
    """Leave the order pending for a retry or the sweeper, and say so."""
    async with deps.db.connection() as conn:
        await store.give_up_lease(conn, order)
    _logger.warning("order.postponed", order_id=order.order_id, reason=unsure.reason)
    raise DependencyUnavailable(
        f"order {order.order_id} is pending: {unsure.reason}. Retry with the same Idempotency-Key",
        dependency=unsure.downstream,
        retry_after_s=unsure.retry_after_s or 1,
    )


async def _finish(
    deps: SagaDeps,
    order: OrderRow,
    status: str,
    http_status: int,
    error: dict[str, Any] | None,
    items,
    total,
    *,
    void: bool = False,
) -> Answer:
    view = {**order.view(), "status": status, "items": items or order.view()["items"], "total_cents": total}
    body = error if error is not None else view
    async with deps.db.connection() as conn:
        done = await store.finish(
            conn,
            order,
            status=status,
            http_status=http_status,
            body=body,
            items=items,
            total_cents=total,
            void_charge=void,
            outbox=deps.direct is None,
        )
        if not done:  # our lease ran out and someone else took the order over
            current = await store.get(conn, order.order_id)
    if not done:
        if current is None:  # only the first request withdraws, and never once a step was sent
            raise _withdrawn(order)
        return await outcome_of(deps, current)
    if deps.direct is not None:  # the outbox is off: announce it now, once, or never
        await deps.direct.send(store.final_events(order, status=status, total_cents=total, void_charge=void))
    _logger.info("order.finished", order_id=order.order_id, status=status, total_cents=total)
    return Answer(http_status, body)
