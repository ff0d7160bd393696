"""Orders/s and latency of POST /orders through a native stack, against a bare chain.

In one run: the real stack with each inter-service client (aiohttp, httpx), then a bare
chain of FastAPI apps with the same hops and writes (bench/bare_chain.py), each driven
at fixed concurrency for a fixed time. Prints figures; asserts nothing.

    .venv/bin/python bench/orders.py [--duration 8] [--clients 16,32,64]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import aiohttp

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from chaos import runner  # noqa: E402
from chaos.layout import free_ports  # noqa: E402

# Orders spread over the catalogue like shoppers' (one hot SKU would measure row locks).
BODIES = [b'{"customer_id": "bench", "items": [{"sku": "SKU-%03d", "quantity": 1}]}' % i for i in range(1, 11)]


async def drive(url: str, clients: int, duration_s: float) -> dict:
    """`clients` loops posting orders back to back; latencies of the 2xx answers."""
    latencies: list[float] = []
    errors = 0
    stop_at = time.perf_counter() + duration_s
    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def client() -> None:
            nonlocal errors
            while time.perf_counter() < stop_at:
                started = time.perf_counter()
                headers = {"Idempotency-Key": str(uuid.uuid4()), "Content-Type": "application/json"}
                try:
                    body = random.choice(BODIES)
                    async with session.post(url + "/orders", data=body, headers=headers) as resp:
                        await resp.read()
                        ok = resp.status < 300
                except aiohttp.ClientError:
                    ok = False
                if ok:
                    latencies.append(time.perf_counter() - started)
                else:
                    errors += 1

        began = time.perf_counter()
        await asyncio.gather(*(client() for _ in range(clients)))
        elapsed = time.perf_counter() - began
    latencies.sort()

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000 if latencies else float("nan")

    return {"rate": len(latencies) / elapsed, "p50": pct(0.50), "p99": pct(0.99), "errors": errors}


def measure(url: str, clients_list: list[int], duration_s: float) -> dict[int, dict]:
    asyncio.run(drive(url, 8, 2.0))  # warm-up: pools, caches, JIT-free but not cold
    return {c: asyncio.run(drive(url, c, duration_s)) for c in clients_list}


def stack_figures(settings: dict[str, str], clients_list: list[int], duration_s: float) -> dict[int, dict]:
    """Figures of a fresh native stack started with `settings` for every service."""
    base = Path(tempfile.mkdtemp(prefix="chaoslab-bench-"))
    base.chmod(0o755)
    print(f"  starting the stack with {settings} ...", flush=True)
    layout = runner.up(
        base / "run",
        profile="training",
        chaos_token="bench",
        pick_free_ports=True,
        timeout_s=120,
        progress=lambda _m: None,
        env=settings,
    )
    try:
        return measure(layout.url("gateway"), clients_list, duration_s)
    finally:
        runner.down(layout)


def bare_figures(clients_list: list[int], duration_s: float) -> dict[int, dict]:
    """The bare chain, on the database of a stack started for it."""
    base = Path(tempfile.mkdtemp(prefix="chaoslab-bench-bare-"))
    base.chmod(0o755)
    print("  starting PostgreSQL and the bare chain ...", flush=True)
    layout = runner.up(
        base / "run",
        profile="training",
        chaos_token="bench",
        pick_free_ports=True,
        timeout_s=120,
        progress=lambda _m: None,
    )
    roles = ["payments", "inventory", "orders", "gateway"]
    urls = {role: f"http://127.0.0.1:{port}" for role, port in zip(roles, free_ports(4), strict=True)}
    hops = {"BARE_ORDERS": urls["orders"], "BARE_INVENTORY": urls["inventory"], "BARE_PAYMENTS": urls["payments"]}
    procs = []
    try:
        for role in roles:
            env = {**os.environ, **hops, "DATABASE_URL": layout.database_url}
            procs.append(
                subprocess.Popen(
                    [sys.executable, str(REPO / "bench" / "bare_chain.py"), role, urls[role].rsplit(":", 1)[1]], env=env
                )
            )
        for role in roles:
            deadline = time.monotonic() + 30
            while not runner.http_ok(urls[role] + "/docs") and time.monotonic() < deadline:
                time.sleep(0.1)
        return measure(urls["gateway"], clients_list, duration_s)
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=10)
        runner.down(layout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=8.0, help="seconds per measurement")
    parser.add_argument("--clients", default="16,32,64", help="comma-separated concurrency levels")
    parser.add_argument("--http-clients", default="aiohttp,httpx", help="inter-service clients to measure")
    args = parser.parse_args()
    clients_list = [int(c) for c in args.clients.split(",")]
    results = {}
    for client in args.http_clients.split(","):
        results[f"stack ({client})"] = stack_figures({"HTTP_CLIENT": client}, clients_list, args.duration)
    results["bare chain"] = bare_figures(clients_list, args.duration)
    bare = results["bare chain"]
    print(f"\nPOST /orders, {args.duration:.0f} s per point, {os.cpu_count()} cores\n")
    print(f"{'target':<18}{'clients':>8}{'orders/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}{'vs bare':>9}")
    for name, figures in results.items():
        for clients, f in figures.items():
            ratio = f["rate"] / bare[clients]["rate"] if bare[clients]["rate"] else float("nan")
            print(
                f"{name:<18}{clients:>8}{f['rate']:>10.0f}{f['p50']:>9.1f}{f['p99']:>9.1f}{f['errors']:>8}{ratio:>9.0%}"
            )


if __name__ == "__main__":
    main()
