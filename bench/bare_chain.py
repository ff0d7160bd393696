"""A bare chain of FastAPI apps with the order flow's hops and writes, and nothing else.

gateway -> orders (INSERT) -> inventory (write) -> payments (write) -> inventory (write)
-> orders (UPDATE): the same four inter-service calls and five write transactions as a
real order, without validation, idempotency, middleware, metrics or resilience. Its
charge waits as long as payments' card processor takes to authorise one (BARE_ACQUIRER_S
seconds, the stack's `processor_service_s`): an acquirer's time is part of what a charge
is, not overhead of the stack. It is the ceiling the real stack is compared with in
bench/orders.py.

Run one hop: `python bench/bare_chain.py <gateway|orders|inventory|payments> PORT`, with
DATABASE_URL, BARE_ACQUIRER_S (payments; 0 when unset) and the next hops' base URLs
(BARE_ORDERS for the gateway; BARE_INVENTORY and BARE_PAYMENTS for orders) in the
environment.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import uuid
from collections.abc import AsyncIterator

import aiohttp
import asyncpg
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import Response

ROLE = sys.argv[1] if len(sys.argv) > 1 else "gateway"
ACQUIRER_S = float(os.environ.get("BARE_ACQUIRER_S", "0"))
DDL = """CREATE SCHEMA IF NOT EXISTS bench;
CREATE TABLE IF NOT EXISTS bench.hops (id uuid PRIMARY KEY, role text, state text)"""

state: dict = {}


@contextlib.asynccontextmanager
async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
    state["session"] = aiohttp.ClientSession()
    if ROLE != "gateway":
        state["pool"] = await asyncpg.create_pool(os.environ["DATABASE_URL"], min_size=2, max_size=10)
        async with state["pool"].acquire() as conn:
            await conn.execute("SELECT pg_advisory_lock(42)")
            await conn.execute(DDL)
            await conn.execute("SELECT pg_advisory_unlock(42)")
    yield
    await state["session"].close()


app = FastAPI(lifespan=lifespan)


async def _post(hop: str, path: str, body: bytes) -> bytes:
    async with state["session"].post(
        os.environ[f"BARE_{hop}"] + path, data=body, headers={"content-type": "application/json"}
    ) as resp:
        return await resp.read()


async def _write(sql: str, *args) -> None:
    async with state["pool"].acquire() as conn, conn.transaction():
        await conn.execute(sql, *args)


@app.post("/orders")
async def orders(request: Request) -> Response:
    body = await request.body()
    if ROLE == "gateway":
        return Response(await _post("ORDERS", "/orders", body), media_type="application/json")
    order_id = uuid.uuid4()
    await _write("INSERT INTO bench.hops VALUES ($1, 'order', 'pending')", order_id)
    await _post("INVENTORY", "/reserve", body)
    await _post("PAYMENTS", "/charge", body)
    await _post("INVENTORY", "/commit", body)
    await _write("UPDATE bench.hops SET state = 'confirmed' WHERE id = $1", order_id)
    return Response(b'{"status":"confirmed"}', media_type="application/json")


@app.post("/reserve")
@app.post("/commit")
async def stock(request: Request) -> Response:
    await _write("INSERT INTO bench.hops VALUES ($1, 'stock', $2)", uuid.uuid4(), request.url.path)
    return Response(b"{}", media_type="application/json")


@app.post("/charge")
async def charge(request: Request) -> Response:
    await asyncio.sleep(ACQUIRER_S)
    await _write("INSERT INTO bench.hops VALUES ($1, 'charge', 'succeeded')", uuid.uuid4())
    return Response(b"{}", media_type="application/json")


if __name__ == "__main__":
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=int(sys.argv[2]),
        loop="uvloop",
        http="httptools",
        access_log=False,
        log_level="warning",
    )
