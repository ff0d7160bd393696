"""Orders/s and latency of POST /orders through a native stack, against a bare chain.

In one run: the real stack with each inter-service client (aiohttp, httpx) and a bare
chain of FastAPI apps with the same hops and writes (bench/bare_chain.py), all running
at once and driven in turns at fixed concurrency for a fixed time, so that the ratio
of each to the bare chain holds on a machine shared with other work. Beside the rate and
latency it prints where the CPU went: each program's CPU time (its processes and their
children, from /proc, so PostgreSQL's backends count) per order answered. Prints
figures; asserts nothing.

Both wait the same time on the card processor per charge: the stack's payments holds a
processor connection for `processor_service_s` (50 ms in training), and the bare chain's
charge sleeps as long. That wait holds a client without using the machine: at 32 clients
and 300 orders/s, 15 of them are waiting on it at any moment. Compared with a bare chain
that did not wait, the stack was charged for its acquirer's time as if it were overhead
(61 % of the bare chain then, against 78 % with both waiting, and 73 % with neither).

    .venv/bin/python bench/orders.py [--duration 8] [--clients 16,32,64] [--set ADMISSION=static]

The clients post back to back and do not honour `Retry-After`: a request the stack sheds
(429) comes straight back. `--set NAME=VALUE` (repeatable) starts every service of the
stack with that environment variable, e.g. `--set ADMISSION=adaptive` to measure the
stack's capacity behind the adaptive door rather than the default static one.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import aiohttp

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from chaos import runner  # noqa: E402
from chaos.layout import SERVICES, free_ports  # noqa: E402
from services.common.web.settings import profile_defaults  # noqa: E402

# Orders spread over the catalogue like shoppers' (one hot SKU would measure row locks).
BODIES = [b'{"customer_id": "bench", "items": [{"sku": "SKU-%03d", "quantity": 1}]}' % i for i in range(1, 11)]


async def drive(url: str, clients: int, duration_s: float) -> Sample:
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
    return Sample(latencies, errors, elapsed)


class Sample:
    """What the clients saw in one window: the 2xx latencies, the other answers, the time,
    and the CPU seconds each program of the target used meanwhile. (A plain class:
    bench/resilience.py loads this file without registering it as a module, which a
    dataclass needs.)"""

    def __init__(
        self, latencies: list[float], errors: int, elapsed_s: float, cpu_s: dict[str, float] | None = None
    ) -> None:
        self.latencies, self.errors, self.elapsed_s = latencies, errors, elapsed_s
        self.cpu_s = dict(cpu_s or {})

    def add(self, other: Sample) -> None:
        self.latencies += other.latencies
        self.errors += other.errors
        self.elapsed_s += other.elapsed_s
        for program, seconds in other.cpu_s.items():
            self.cpu_s[program] = self.cpu_s.get(program, 0.0) + seconds

    def cpu_ms_per_order(self) -> dict[str, float]:
        """Each program's CPU milliseconds per order answered 2xx."""
        orders = len(self.latencies)
        return {program: seconds * 1000 / orders for program, seconds in self.cpu_s.items()} if orders else {}

    def figures(self) -> dict:
        latencies = sorted(self.latencies)

        def pct(p: float) -> float:
            return latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000 if latencies else float("nan")

        rate = len(latencies) / self.elapsed_s if self.elapsed_s else float("nan")
        return {"rate": rate, "p50": pct(0.50), "p99": pct(0.99), "errors": self.errors}


def measure(url: str, clients_list: list[int], duration_s: float) -> dict[int, dict]:
    """One target's figures at each concurrency (bench/overload.py uses it too)."""
    asyncio.run(drive(url, 8, 2.0))  # warm-up: pools, caches, connections
    return {c: asyncio.run(drive(url, c, duration_s)).figures() for c in clients_list}


def _cpu_ticks() -> tuple[dict[int, int], dict[int, list[int]]]:
    """Every process's CPU ticks (user + system) and every process's children, from /proc."""
    ticks: dict[int, int] = {}
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
        except OSError:  # ended meanwhile
            continue
        fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) "
        pid, ppid = int(entry.name), int(fields[1])
        ticks[pid] = int(fields[11]) + int(fields[12])
        children.setdefault(ppid, []).append(pid)
    return ticks, children


def cpu_seconds(programs: dict[str, int]) -> dict[str, float]:
    """CPU seconds used so far by each program: its process and all its descendants
    (PostgreSQL's backends, a wrapper's child)."""
    ticks, children = _cpu_ticks()
    per_second = os.sysconf("SC_CLK_TCK")

    def tree(pid: int) -> int:
        return ticks.get(pid, 0) + sum(tree(child) for child in children.get(pid, ()))

    return {name: tree(pid) / per_second for name, pid in programs.items()}


class Target:
    """A stack or a bare chain under measurement: where to send orders, and its programs'
    process ids by name, for the CPU they use."""

    def __init__(self, url: str, programs: dict[str, int]) -> None:
        self.url, self.programs = url, programs

    def window(self, clients: int, duration_s: float) -> Sample:
        before = cpu_seconds(self.programs)
        sample = asyncio.run(drive(self.url, clients, duration_s))
        after = cpu_seconds(self.programs)
        sample.cpu_s = {name: after[name] - before[name] for name in self.programs}
        return sample


def measure_in_turns(
    targets: dict[str, Target], clients_list: list[int], duration_s: float, rounds: int
) -> dict[str, dict[int, Sample]]:
    """Each target's sample at each concurrency, the targets taking turns in `rounds`
    windows (in turn order A B, then B A ...), so that whatever else runs on the machine
    weighs on every target alike and their ratio holds even when the absolute figures
    drift from one minute to the next."""
    for target in targets.values():
        # Warm-up at the highest concurrency measured: every pool grows to the size the
        # measurement needs (connections, their prepared statements) before it starts.
        asyncio.run(drive(target.url, max(clients_list), 3.0))
    results: dict[str, dict[int, Sample]] = {name: {} for name in targets}
    for clients in clients_list:
        totals = {name: Sample([], 0, 0.0) for name in targets}
        for turn in range(rounds):
            names = list(targets) if turn % 2 == 0 else list(reversed(targets))
            for name in names:
                totals[name].add(targets[name].window(clients, duration_s / rounds))
        for name, total in totals.items():
            results[name][clients] = total
    return results


@contextlib.contextmanager
def stack(settings: dict[str, str]) -> Iterator[Target]:
    """A fresh native stack started with `settings` for every service."""
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
        programs = {p.name: p.pid for p in runner.status(layout) if p.name in (*SERVICES, "postgres", "redis")}
        yield Target(layout.url("gateway"), programs)
    finally:
        runner.down(layout)


@contextlib.contextmanager
def bare_chain(acquirer_s: float) -> Iterator[Target]:
    """The bare chain, its charges waiting `acquirer_s` as the stack's card processor does,
    on the database of a stack started for it (whose idle services are not counted in its
    CPU; its PostgreSQL is)."""
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
            env = {**os.environ, **hops, "DATABASE_URL": layout.database_url, "BARE_ACQUIRER_S": str(acquirer_s)}
            procs.append(
                subprocess.Popen(
                    [sys.executable, str(REPO / "bench" / "bare_chain.py"), role, urls[role].rsplit(":", 1)[1]], env=env
                )
            )
        for role in roles:
            deadline = time.monotonic() + 30
            while not runner.http_ok(urls[role] + "/docs") and time.monotonic() < deadline:
                time.sleep(0.1)
        postgres = {p.name: p.pid for p in runner.status(layout) if p.name == "postgres"}
        yield Target(urls["gateway"], {**{role: proc.pid for role, proc in zip(roles, procs, strict=True)}, **postgres})
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=10)
        runner.down(layout)


def stack_figures(settings: dict[str, str], clients_list: list[int], duration_s: float) -> dict[int, dict]:
    """Figures of a fresh native stack started with `settings` (bench/resilience.py uses it)."""
    with stack(settings) as target:
        return measure(target.url, clients_list, duration_s)


def acquirer_time(settings: dict[str, str]) -> float:
    """How long the stack's card processor takes per charge: PROCESSOR_SERVICE_S when the
    bench sets it, else the training profile's."""
    if "PROCESSOR_SERVICE_S" in settings:
        return float(settings["PROCESSOR_SERVICE_S"])
    return float(profile_defaults("training", "payments")["processor_service_s"])


def _assignment(text: str, parser: argparse.ArgumentParser) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name:
        parser.error(f"--set takes NAME=VALUE, not {text!r}")
    return name, value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=8.0, help="seconds per measurement")
    parser.add_argument("--clients", default="16,32,64", help="comma-separated concurrency levels")
    parser.add_argument("--http-clients", default="aiohttp,httpx", help="inter-service clients to measure")
    parser.add_argument(
        "--rounds", type=int, default=4, help="windows each measurement is cut into, the targets taking turns"
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="an environment variable for every service of the stack (repeatable), e.g. ADMISSION=static",
    )
    args = parser.parse_args()
    clients_list = [int(c) for c in args.clients.split(",")]
    extra = dict(_assignment(a, parser) for a in args.set)
    try:
        acquirer_s = acquirer_time(extra)
    except ValueError:
        parser.error(f"--set PROCESSOR_SERVICE_S takes seconds, not {extra['PROCESSOR_SERVICE_S']!r}")
    with contextlib.ExitStack() as running:
        targets = {
            f"stack ({client})": running.enter_context(stack({**extra, "HTTP_CLIENT": client}))
            for client in args.http_clients.split(",")
        }
        targets["bare chain"] = running.enter_context(bare_chain(acquirer_s))
        samples = measure_in_turns(targets, clients_list, args.duration, max(1, args.rounds))
    results = {name: {c: sample.figures() for c, sample in by_clients.items()} for name, by_clients in samples.items()}
    bare = results["bare chain"]
    print(
        f"\nPOST /orders, {args.duration:.0f} s per point in {max(1, args.rounds)} turns, {os.cpu_count()} cores, "
        f"card processor {acquirer_s * 1000:.0f} ms per charge in both\n"
    )
    print(
        f"{'target':<18}{'clients':>8}{'orders/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}{'vs bare':>9}"
        f"{'p99 vs bare':>13}"
    )
    for name, figures in results.items():
        for clients, f in figures.items():
            ratio = f["rate"] / bare[clients]["rate"] if bare[clients]["rate"] else float("nan")
            p99_ratio = f["p99"] / bare[clients]["p99"] if bare[clients]["p99"] else float("nan")
            print(
                f"{name:<18}{clients:>8}{f['rate']:>10.0f}{f['p50']:>9.1f}{f['p99']:>9.1f}{f['errors']:>8}{ratio:>9.0%}"
                f"{p99_ratio:>12.1f}x"
            )
    print("\nCPU ms per order (each program with its child processes)\n")
    for name, by_clients in samples.items():
        for clients, sample in by_clients.items():
            per_order = sample.cpu_ms_per_order()
            cells = "  ".join(f"{program} {ms:.2f}" for program, ms in per_order.items())
            print(f"{name:<18}{clients:>8}  total {sum(per_order.values()):.2f}  {cells}")


if __name__ == "__main__":
    main()
