"""Overload and partial failure on a training stack, measured from the client's side.

Starts its own training stack on free ports (or uses a running one: `--run-dir`), then:

a. the stack's best orders/s (bench/orders.py's closed-loop clients);
b. the spike (locust `CHAOSLAB_SHAPE=spike`, orders only, 0.1 s think time, a fresh key
   each, none read back unless `CHAOSLAB_READ_BACK_RATIO` says so, a shed shopper waiting
   as long as Retry-After says, up to the gateway's longest wait unless
   `CHAOSLAB_RETRY_AFTER_MAX_S` is set, plus up to `CHAOSLAB_RETRY_JITTER_S`)
   with a client ledger: goodput while the peak is held against (a), 5xx by error code,
   admitted and 429 latency, Retry-After, recovery after the drop, breakers, and how the
   CPU splits between the stack and the load generator;
c. payments `error_rate` 0.2 under steady users: orders confirmed per 10 s window,
   breaker openings, retries against the budget;
d. payments `error_rate` 0.9 under the same users: time until orders' breaker on
   payments opens, and how fast refused orders are answered.

Every figure is printed next to its target; nothing is asserted. Figures come from the
client ledger (chaos/ledger.py), the services' /status/breakers and /metrics, and
Prometheus.

    .venv/bin/python bench/overload.py [--quick] [--run-dir DIR] [--set gateway:ADMISSION=adaptive ...]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import random
import secrets
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench import orders as orders_bench  # noqa: E402
from bench import resilience_micro  # noqa: E402
from chaos import ledger, runner, supervision  # noqa: E402
from chaos.compare import collect  # noqa: E402
from chaos.layout import StackLayout  # noqa: E402
from chaos.ledger_figures import (  # noqa: E402
    between,
    confirmed,
    latencies,
    order_windows,
    percentile,
    status_counts,
)
from loadtests.settings import UserSettings  # noqa: E402
from services.common.web.settings import profile_defaults  # noqa: E402
from tests.support.profiles import policy_config_of  # noqa: E402

LOCUSTFILE = REPO / "loadtests" / "locustfile.py"
CHAOSLAB = REPO / ".venv" / "bin" / "chaoslab"


# --- pure figures from a ledger (unit-tested; the shared ones live in chaos/ledger_figures.py) --


@dataclass
class SpikeFigures:
    requests: int
    by_status: dict[str, int]
    overload_5xx: int  # 5xx and no-answers: nothing was down, so overload caused every one
    hold_goodput: float  # confirmed orders/s while the peak was held
    admitted_p99_ms: float
    shed_p99_ms: float
    shed_without_retry_after: int
    after_success: float  # share of orders confirmed, first asked from 5 s after the drop to the end
    first_5s_success: float  # the same for orders first asked in the 5 s right after the drop
    phases: dict[str, float] = field(default_factory=dict)


def spike_figures(
    entries: Sequence[ledger.Entry],
    t0: float,
    warm_s: float,
    ramp_s: float,
    hold_s: float,
    after_s: float,
    settle_s: float = 5.0,
) -> SpikeFigures:
    """The spike's figures from its ledger; `t0` is when the shape's clock started."""
    hold_start, drop = t0 + warm_s + ramp_s, t0 + warm_s + ramp_s + hold_s
    hold = between(entries, hold_start, drop)
    shed = [e for e in entries if e.status == 429]

    def share(start: float, end: float) -> float:
        """Of the orders first answered between `start` and `end`, the share confirmed
        (a 429 then a confirmed retry is a confirmed order)."""
        window = order_windows(entries, start, end, end - start)
        return window[0].success if window else math.nan

    return SpikeFigures(
        requests=len(entries),
        by_status=status_counts(entries),
        overload_5xx=sum(1 for e in entries if e.status == 0 or e.status >= 500),
        hold_goodput=sum(map(confirmed, hold)) / hold_s if hold_s else math.nan,
        admitted_p99_ms=percentile(latencies(hold, admitted=True), 0.99),
        shed_p99_ms=percentile(latencies(hold, admitted=False), 0.99),
        shed_without_retry_after=sum(1 for e in shed if not e.retry_after),
        after_success=share(drop + settle_s, drop + after_s - 2),  # the last orders had no time to retry
        first_5s_success=share(drop, drop + settle_s),
        phases={"hold_start": hold_start, "drop": drop},
    )


# --- talking to the stack ---------------------------------------------------------------------


def get_json(url: str, timeout_s: float = 2.0) -> Any:
    with urllib.request.urlopen(url, timeout=timeout_s) as resp:
        return json.loads(resp.read())


def prom(layout: StackLayout, query: str, at: float | None = None) -> float:
    """One number from Prometheus (the first series' value), NaN when there is none."""
    params = {"query": query, **({"time": f"{at:.3f}"} if at else {})}
    try:
        body = get_json(f"{layout.url('prometheus')}/api/v1/query?{urllib.parse.urlencode(params)}", 5.0)
        result = body["data"]["result"]
        return float(result[0]["value"][1]) if result else math.nan
    except (OSError, ValueError, KeyError, IndexError):
        return math.nan


def metric_sum(layout: StackLayout, service: str, name: str, **labels: str) -> float:
    """The sum of a metric's samples on one service's /metrics matching `labels`."""
    with urllib.request.urlopen(f"{layout.url(service)}/metrics", timeout=5) as resp:
        return collect.metric_sum(resp.read().decode(), name, **labels)


def open_breakers(layout: StackLayout) -> list[str]:
    """The breakers not closed, on orders and the gateway (their /status/breakers)."""
    found = []
    for service in ("gateway", "orders"):
        try:
            view = get_json(f"{layout.url(service)}/status/breakers")
        except (OSError, ValueError):
            found.append(f"{service}: /status/breakers did not answer")
            continue
        found += [f"{service}->{b['name']}:{b['state']}" for b in view.get("breakers", []) if b["state"] != "closed"]
    return found


class BreakerWatch(threading.Thread):
    """Polls /status/breakers every `every_s`; keeps (time, breakers not closed)."""

    def __init__(self, layout: StackLayout, every_s: float = 0.5) -> None:
        super().__init__(daemon=True)
        self.layout, self.every_s = layout, every_s
        self.seen: list[tuple[float, list[str]]] = []
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.is_set():
            self.seen.append((time.time(), open_breakers(self.layout)))
            self.stopped.wait(self.every_s)

    def open_between(self, start: float, end: float) -> list[str]:
        return sorted({b for t, bs in self.seen if start <= t < end for b in bs})


def set_fault(layout: StackLayout, service: str, fault: str, value: str | None) -> None:
    action = ["chaos", "set", service, fault, value, "--ttl", "15m"] if value else ["chaos", "clear", service]
    subprocess.run(
        [str(CHAOSLAB), *action, "--run-dir", str(layout.run_dir)], check=True, capture_output=True, cwd=REPO
    )


def locust(
    layout: StackLayout, shape: str, env: dict[str, str], ledger_path: Path, log: Path, processes: int = 1
) -> subprocess.Popen:
    """Headless locust running `shape` with orders only; `processes` > 1 spreads the users
    over that many worker processes (one ledger file each: `{pid}` in `ledger_path`)."""
    command = [
        sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "--host", layout.url("gateway"),
        "--tags", "orders", "--only-summary", "--stop-timeout", "2", "--exit-code-on-error", "0",
    ]  # fmt: skip
    if processes > 1:
        command += ["--processes", str(processes)]
    full = {**os.environ, **env, "CHAOSLAB_SHAPE": shape, "CHAOSLAB_LEDGER": str(ledger_path)}
    full["CHAOSLAB_REPLAY_RATIO"] = "0"
    with open(log, "ab") as out:
        return subprocess.Popen(command, env=full, stdout=out, stderr=subprocess.STDOUT, cwd=REPO)


# --- CPU: the stack against the load generator -------------------------------------------------


def _tree_cpu(pid: int) -> float:
    import psutil

    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0.0
    total = 0.0
    for p in procs:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.Error:
            pass
    return total


def cpu_sample(layout: StackLayout, locust_pid: int) -> dict[str, float]:
    """CPU seconds used so far: per stack program (its process tree), the load generator,
    and the machine."""
    sample = {}
    for info in supervision.Supervisor(layout).processes():
        if info.get("pid"):
            sample[info["name"]] = _tree_cpu(info["pid"])
    sample["LOAD GENERATOR (locust)"] = _tree_cpu(locust_pid)
    sample["MACHINE (all processes)"] = machine_busy_s()
    return sample


def machine_busy_s() -> float:
    """CPU seconds the machine has been busy, in every process: those at a raised nice
    value too, which Linux counts apart from `user`."""
    import psutil

    t = psutil.cpu_times()
    return sum(getattr(t, field, 0.0) for field in ("user", "nice", "system", "irq", "softirq"))


def cpu_split(before: dict[str, float], after: dict[str, float], seconds: float) -> dict[str, float]:
    """Cores used on average between two samples, per name."""
    return {name: (after[name] - before.get(name, 0.0)) / seconds for name in after}


# --- the phases ------------------------------------------------------------------------------


def load_average() -> str:
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


def spike_bodies(n: int = 200, seed: int = 7) -> list[bytes]:
    """Orders like the spike's shoppers send (loadtests/api.py's random_order: 1 to 3 SKUs,
    1 to 3 units each), fixed by `seed`."""
    rng = random.Random(seed)
    skus = [f"SKU-{i:03d}" for i in range(1, 11)]
    return [
        json.dumps(
            {
                "customer_id": "bench",
                "items": [{"sku": s, "quantity": rng.randint(1, 3)} for s in rng.sample(skus, rng.randint(1, 3))],
            }
        ).encode()
        for _ in range(n)
    ]


def phase_best(layout: StackLayout, clients: list[int], duration_s: float) -> tuple[float, float]:
    """bench/orders.py's best orders/s: with its own orders (one SKU each), and with
    orders like the spike's (several SKUs: more rows locked per order)."""
    print(f"\n(a) best orders/s, {duration_s:.0f} s per point, {load_average()}", flush=True)
    bench_bodies = orders_bench.BODIES
    best = {}
    for name, bodies in (("bench/orders.py's orders", bench_bodies), ("the spike's orders", spike_bodies())):
        orders_bench.BODIES = bodies
        try:
            best[name] = _best(layout, clients, duration_s, name)
        finally:
            orders_bench.BODIES = bench_bodies
    return best["bench/orders.py's orders"], best["the spike's orders"]


def _best(layout: StackLayout, clients: list[int], duration_s: float, name: str) -> float:
    print(f"    {name} ({load_average()})")
    figures = orders_bench.measure(layout.url("gateway"), clients, duration_s)
    for c, f in figures.items():
        print(f"    {c:>4} clients: {f['rate']:6.1f} orders/s  p50 {f['p50']:6.1f} ms  p99 {f['p99']:7.1f} ms  "
              f"errors {f['errors']}")  # fmt: skip
    return max(f["rate"] for f in figures.values())


def longest_retry_after(layout: StackLayout) -> str:
    """The longest Retry-After the stack's gateway says, as the gateway reads it: its
    environment (`--set`), else its profile's default."""
    setting = layout.service_env("gateway").get("ADMISSION_RETRY_AFTER_MAX_S")
    return setting or str(profile_defaults(layout.profile, "gateway")["admission_retry_after_max_s"])


def phase_spike(layout: StackLayout, work: Path, quick: bool, best: float, best_mix: float, processes: int) -> None:
    spec = {"start": 1, "base": 10, "peak": 500, "warm": 10.0, "ramp": 30.0, "hold": 60.0, "after": 30.0}
    if quick:
        spec |= {"peak": 200, "warm": 3.0, "ramp": 8.0, "hold": 15.0, "after": 12.0}
    env = {
        "CHAOSLAB_SPIKE_START_USERS": str(spec["start"]),
        "CHAOSLAB_SPIKE_BASE_USERS": str(spec["base"]),
        "CHAOSLAB_SPIKE_PEAK_USERS": str(spec["peak"]),
        "CHAOSLAB_SPIKE_WARM_SECONDS": str(spec["warm"]),
        "CHAOSLAB_SPIKE_RAMP_SECONDS": str(spec["ramp"]),
        "CHAOSLAB_SPIKE_HOLD_SECONDS": str(spec["hold"]),
        "CHAOSLAB_SPIKE_AFTER_SECONDS": str(spec["after"]),
        "CHAOSLAB_THINK_MIN_S": "0.1",
        "CHAOSLAB_THINK_MAX_S": "0.1",
        # The original project's spike posts orders and reads none back (every answer it
        # counted was a 201, 429 or 503), as phase (a) does: a read-back would load the stack
        # with a GET per order that (a)'s best never paid for. The caller may ask for one.
        "CHAOSLAB_READ_BACK_RATIO": os.environ.get("CHAOSLAB_READ_BACK_RATIO", "0"),
        # Shoppers wait as the contract asks, as long as Retry-After says, unless the caller
        # sets how long they wait.
        "CHAOSLAB_RETRY_AFTER_MAX_S": os.environ.get("CHAOSLAB_RETRY_AFTER_MAX_S", longest_retry_after(layout)),
    }
    shopper = UserSettings.from_env({**os.environ, **env})
    print(f"\n(b) spike {spec['start']} -> {spec['base']} -> {spec['peak']} users over {spec['ramp']:.0f} s, "
          f"held {spec['hold']:.0f} s, back to {spec['base']}; {shopper.read_back_ratio:.0%} of orders read back "
          f"(CHAOSLAB_READ_BACK_RATIO); a shed shopper waits Retry-After up to "
          f"{shopper.retry_after_max_s:g} s (CHAOSLAB_RETRY_AFTER_MAX_S), plus up to {shopper.retry_jitter_s:g} s "
          f"at random (CHAOSLAB_RETRY_JITTER_S); {load_average()}", flush=True)  # fmt: skip
    watch = BreakerWatch(layout)
    watch.start()
    proc = locust(layout, "spike", env, work / "spike-ledger-{pid}.jsonl", work / "spike-locust.log", processes)
    hold_at = spec["warm"] + spec["ramp"]
    time.sleep(hold_at + 2)
    cpu_before, cpu_t0 = cpu_sample(layout, proc.pid), time.monotonic()
    load_at_hold = load_average()
    time.sleep(max(1.0, spec["hold"] - 4))
    split = cpu_split(cpu_before, cpu_sample(layout, proc.pid), time.monotonic() - cpu_t0)
    # The adaptive limit over the hold's last 30 s: its mean hides swings, so its range too.
    limit = {f: prom(layout, f'{f}_over_time(concurrency_limit{{job="gateway"}}[30s])') for f in ("avg", "min", "max")}
    # The gateway's own view of the same answers (Prometheus, over the hold's last 40 s).
    quantile = (
        'histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket{{job="gateway",{}}}[40s])))'
    )
    server_shed_p99 = prom(layout, quantile.format('route="unmatched",method="POST"'))
    server_admitted_p99 = prom(layout, quantile.format('route="/orders",method="POST"'))
    min_rtt = prom(layout, 'max(concurrency_min_rtt_seconds{job="gateway"})')
    proc.wait(timeout=spec["warm"] + spec["ramp"] + spec["hold"] + spec["after"] + 120)
    watch.stopped.set()
    entries = ledger.read(sorted(work.glob("spike-ledger-*.jsonl"))).entries
    if not entries:
        print("    the ledger is empty: see", work / "spike-locust.log")
        return
    t0 = entries[0].t
    f = spike_figures(entries, t0, spec["warm"], spec["ramp"], spec["hold"], spec["after"])
    ratio = f.hold_goodput / best if best else math.nan
    ratio_mix = f.hold_goodput / best_mix if best_mix else math.nan
    print(f"    answers to POST /orders: {f.requests}, by status: {f.by_status}")
    row("5xx or no answer caused by overload", f"{f.overload_5xx}", "0", f.overload_5xx == 0)
    row("goodput while held, vs the spike's orders", f"{f.hold_goodput:.1f} = {ratio_mix:.0%} of {best_mix:.1f}",
        ">= 75%", ratio_mix >= 0.75)  # fmt: skip
    row("  vs bench/orders.py's one-SKU orders", f"{f.hold_goodput:.1f} = {ratio:.0%} of {best:.1f}", ">= 75%",
        ratio >= 0.75)  # fmt: skip
    row("admitted p99 while held", f"{f.admitted_p99_ms:.0f} ms", "<= 500 ms", f.admitted_p99_ms <= 500)
    row("429 p99 while held", f"{f.shed_p99_ms:.1f} ms", "<= 50 ms", f.shed_p99_ms <= 50)
    print(
        f"    the gateway's own p99 (Prometheus, last 40 s of the hold): admitted {server_admitted_p99 * 1000:.0f} ms, "
        f"429 {server_shed_p99 * 1000:.1f} ms (histogram buckets: an upper bound)"
    )
    row("429 without Retry-After", f"{f.shed_without_retry_after}", "0", f.shed_without_retry_after == 0)
    row("success in the 5 s after the drop", f"{f.first_5s_success:.1%}", "(for information)", True)
    row("success from 5 s after the drop", f"{f.after_success:.1%}", ">= 95%", f.after_success >= 0.95)
    late = watch.open_between(f.phases["drop"] + 5, f.phases["drop"] + spec["after"])
    row("breakers open from 5 s after the drop", ", ".join(late) or "none", "none", not late)
    anywhere = watch.open_between(t0, t0 + 10_000)
    print(f"    breakers seen not closed during the whole spike: {', '.join(anywhere) or 'none'}")
    if not limit["avg"] > 0:  # 0 (or no series): a static door
        print("    gateway concurrency_limit: none (static admission)")
    else:
        learnt = f"; min_rtt {min_rtt * 1000:.1f} ms (the adaptive door's)" if min_rtt > 0 else ""
        print(f"    gateway concurrency_limit (last 30 s of hold): avg {limit['avg']:.1f}, range {limit['min']:.0f}-"
              f"{limit['max']:.0f}{learnt}")  # fmt: skip
    print(f"    CPU while held, in cores of {os.cpu_count()} ({load_at_hold} at its start):")
    stack = sum(v for k, v in split.items() if k not in ("LOAD GENERATOR (locust)", "MACHINE (all processes)"))
    for name, cores in sorted(split.items(), key=lambda kv: -kv[1]):
        if cores >= 0.005:
            print(f"      {name:<34}{cores:5.2f}")
    print(f"      {'stack (every supervised program)':<34}{stack:5.2f}")


def phase_partial(layout: StackLayout, work: Path, quick: bool) -> None:
    users, partial_s, total_s = 20, 180.0, 30.0
    if quick:
        partial_s, total_s = 40.0, 15.0
    warm_s = 10.0
    env = {"CHAOSLAB_STEADY_USERS": str(users), "CHAOSLAB_STEADY_SECONDS": str(warm_s + partial_s + total_s),
           "CHAOSLAB_THINK_MIN_S": "0.5", "CHAOSLAB_THINK_MAX_S": "1.0"}  # fmt: skip
    path = work / "steady-ledger.jsonl"
    print(f"\n(c) payments error_rate 0.2 for {partial_s:.0f} s under {users} steady users; {load_average()}",
          flush=True)  # fmt: skip
    proc = locust(layout, "steady", env, path, work / "steady-locust.log")
    time.sleep(warm_s)
    watch = BreakerWatch(layout, every_s=0.1)
    watch.start()
    before = {
        "requests": metric_sum(layout, "orders", "downstream_requests_total", to_service="payments"),
        "retries": metric_sum(layout, "orders", "retry_attempts_total", downstream="payments"),
        "exhausted": metric_sum(layout, "orders", "retry_budget_exhausted_total", downstream="payments"),
        "opened": metric_sum(layout, "orders", "breaker_transitions_total", downstream="payments", to="open"),
        "charges": metric_sum(layout, "payments", "http_requests_total", route="/charges", method="POST"),
    }
    start = time.time()
    set_fault(layout, "payments", "error_rate", "0.2")
    time.sleep(partial_s)
    end = time.time()
    after = {
        "requests": metric_sum(layout, "orders", "downstream_requests_total", to_service="payments"),
        "retries": metric_sum(layout, "orders", "retry_attempts_total", downstream="payments"),
        "exhausted": metric_sum(layout, "orders", "retry_budget_exhausted_total", downstream="payments"),
        "opened": metric_sum(layout, "orders", "breaker_transitions_total", downstream="payments", to="open"),
        "charges": metric_sum(layout, "payments", "http_requests_total", route="/charges", method="POST"),
    }
    load_partial = load_average()
    already = any("orders->payments:open" in b for b in open_breakers(layout))
    set_fault(layout, "payments", "error_rate", "0.9")
    total_start = time.time()
    opened_at = None
    while time.time() < total_start + total_s:
        if opened_at is None and any("orders->payments:open" in b for b in open_breakers(layout)):
            opened_at = time.time()
        time.sleep(0.05)
    set_fault(layout, "payments", "error_rate", None)
    proc.wait(timeout=warm_s + partial_s + total_s + 120)
    watch.stopped.set()
    entries = ledger.read([path]).entries
    windows = order_windows(entries, start, end, 10.0)
    rates = [w.success for w in windows if w.orders]
    worst = min(rates) if rates else math.nan
    delta = {k: after[k] - before[k] for k in after}
    attempts = delta["requests"]
    print(f"    orders per 10 s window: {sum(w.orders for w in windows) / max(1, len(windows)):.0f}; "
          f"success per window: {' '.join(f'{r:.0%}' for r in rates)}")  # fmt: skip
    row("worst 10 s window, orders confirmed", f"{worst:.1%}", ">= 95%", worst >= 0.95)
    opened = watch.open_between(start, end)
    row("breakers open under error_rate 0.2", ", ".join(opened) or "none", "none", not opened)
    print(f"    orders->payments: {attempts:.0f} attempts, {delta['retries']:.0f} retries "
          f"({delta['retries'] / max(1, attempts - delta['retries']):.1%} of first attempts), "
          f"{delta['exhausted']:.0f} refused by the budget; breaker openings {delta['opened']:.0f}; "
          f"({load_partial})")  # fmt: skip
    print(f"\n(d) payments error_rate 0.9 under the same users ({load_average()})")
    took = opened_at - total_start if opened_at else math.nan
    if already:
        print(
            "    (orders' breaker on payments was already open when error_rate 0.9 began: the time below means nothing)"
        )
    row("orders' breaker on payments opens after", f"{took:.1f} s", "<= 5 s", took <= 5)
    healthy = [e.latency_ms for e in between(entries, start - warm_s, start) if confirmed(e) and e.latency_ms]
    refused = [
        e.latency_ms
        for e in between(entries, opened_at or math.inf, total_start + total_s)
        if e.status == 402 and e.latency_ms
    ]
    # The breaker's refusal is what must be fast; a refused order still reserves and then
    # releases its stock, so its latency is an order's, shown for information.
    call_us = asyncio.run(resilience_micro.refused_call_us("http://127.0.0.1:1", 2000, policy_config_of("training")))
    row("a call refused by the open breaker", f"{call_us / 1000:.3f} ms", "< 5 ms", call_us < 5000)
    added = percentile(refused, 0.5) - percentile(healthy, 0.5)
    print(f"    refused orders (402 while open): p50 / p99 {percentile(refused, 0.5):.1f} / "
          f"{percentile(refused, 0.99):.1f} ms, p50 {added:+.1f} ms against a healthy order's")  # fmt: skip
    rejected = prom(
        layout, 'sum(increase(breaker_calls_total{job="orders",downstream="payments",outcome="rejected"}[1m]))'
    )
    print(f"    orders' breaker refused {rejected:.0f} calls in the last minute (Prometheus)")


def row(what: str, value: str, target: str, ok: bool) -> None:
    print(f"    {what:<44}{value:>26}   target {target:<18}{'ok' if ok else 'MISSED'}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run-dir", type=Path, help="a running stack to use instead of starting one")
    parser.add_argument("--quick", action="store_true", help="shorten every phase (a smoke run)")
    parser.add_argument("--set", dest="settings", action="append", default=[], metavar="[SERVICE:]NAME=VALUE",
                        help="a setting for the stack this starts (as chaoslab up --set)")  # fmt: skip
    parser.add_argument("--processes", type=int, default=2, help="locust worker processes for the spike")
    parser.add_argument("--phases", default="abcd", help="which phases to run (a, b, c+d as c)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="chaoslab-overload-"))
    work.chmod(0o755)
    env = {}
    for item in args.settings:
        name, _, value = item.partition("=")
        service, colon, name = name.rpartition(":") if ":" in name else ("", "", name)
        env[f"{service}:{name.upper()}" if colon else name.upper()] = value
    started = args.run_dir is None
    if started:
        print(f"starting a training stack in {work / 'run'} with {env or 'the defaults'} ...", flush=True)
        layout = runner.up(work / "run", profile="training", chaos_token=secrets.token_urlsafe(12),
                           pick_free_ports=True, timeout_s=180, progress=lambda _m: None, env=env)  # fmt: skip
    else:
        layout = StackLayout.load(args.run_dir)
    print(f"stack: {layout.run_dir} ({layout.profile}); settings {layout.env or 'default'}; {os.cpu_count()} cores; "
          f"files in {work}")  # fmt: skip
    try:
        best = best_mix = math.nan
        if "a" in args.phases:
            best, best_mix = phase_best(layout, [16, 32] if args.quick else [8, 16, 32, 64], 4.0 if args.quick else 8.0)
        if "b" in args.phases:
            time.sleep(5)
            phase_spike(layout, work, args.quick, best, best_mix, args.processes)
        if "c" in args.phases:
            time.sleep(10)
            phase_partial(layout, work, args.quick)
    finally:
        if started:
            runner.clean(layout.run_dir)


if __name__ == "__main__":
    main()
