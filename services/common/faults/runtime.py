"""A service's view of its faults: cached, refreshed in the background, applied locally.

The cache is refreshed from Redis every `chaos_refresh_s` (≤ 1 s), so no request pays a
Redis round trip. When Redis is unreachable the service runs with no faults and says
so: `chaos_store_up 0`. `chaos_active{service,fault}` shows what is on;
`chaos_changes_total` counts the changes this process saw, each also a log line.
Process faults (crash, crashloop, memory leak, CPU burn, held DB connections) are
carried out here; request faults by the injection middleware.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Callable
from typing import Any

from prometheus_client import Counter, Gauge

from services.common.faults.store import ActiveFault, ChaosStore, connect
from services.common.web import logging as log
from services.common.web.errors import ChaoslabError

chaos_active = Gauge("chaos_active", "1 while a fault is set for this service.", ["service", "fault"])
chaos_store_up = Gauge("chaos_store_up", "1 when the chaos store (Redis) answers, else 0.")
chaos_changes_total = Counter("chaos_changes_total", "Fault changes this process has seen.", ["service", "fault"])
service_starts_total = Counter("service_starts_total", "Starts of this service process.", ["service"])

_logger = log.get_logger("chaos")
_LEAK_CAP_MB = 1024


class ChaosRuntime:
    def __init__(
        self, service: str, replica: int, store: ChaosStore, refresh_s: float, crashloop_after_s: float
    ) -> None:
        self.service, self.replica, self.store, self.refresh_s = service, replica, store, refresh_s
        self.crashloop_after_s = crashloop_after_s
        self.started = time.monotonic()
        self.faults: dict[str, list[ActiveFault]] = {}
        self._leak: list[bytearray] = []
        self._burner: _CpuBurner | None = None
        self._effects: dict[str, Callable[[Any], Any]] = {}
        service_starts_total.labels(service).inc()

    @classmethod
    def for_service(cls, settings) -> ChaosRuntime:
        return cls(
            settings.service,
            settings.replica,
            ChaosStore(connect(settings.redis_url), settings.profile),
            settings.chaos_refresh_s,
            settings.crashloop_after_s,
        )

    def on_change(self, fault: str, effect: Callable[[Any], Any]) -> None:
        """Call `effect(value or None)` whenever `fault` changes (e.g. db_pool_hold)."""
        self._effects[fault] = effect

    def value(self, fault: str, path: str | None = None) -> Any:
        """The value of `fault` for this replica (and request path), most specific first."""
        match = self._match(fault, path)
        return None if match is None else match.value

    def key_of(self, fault: str, path: str | None = None) -> str | None:
        """The Redis key of the fault `value()` applies (error_first_n counts it down)."""
        match = self._match(fault, path)
        return None if match is None else match.key

    def _match(self, fault: str, path: str | None) -> ActiveFault | None:
        best, best_rank = None, -1
        for f in self.faults.get(fault, ()):
            if f.replica is not None and f.replica != self.replica:
                continue
            if f.route is not None and (path is None or not _under(path, f.route)):
                continue
            rank = (f.replica is not None) + 2 * (f.route is not None)
            if rank > best_rank:
                best, best_rank = f, rank
        return best

    async def run(self) -> None:
        while True:
            try:
                await self.refresh()
                self._tick()
            except Exception as exc:
                _logger.error("chaos.refresh_failed", error=repr(exc), exc_info=exc)
            await asyncio.sleep(self.refresh_s)

    async def refresh(self) -> None:
        try:
            current = await self.store.active(self.service)
        except ChaoslabError:
            if chaos_store_up._value.get() != 0:  # noqa: SLF001 - log the transition only
                _logger.warning("chaos.store_down", note="running with no faults")
            chaos_store_up.set(0)
            current = []
        else:
            chaos_store_up.set(1)
        faults: dict[str, list[ActiveFault]] = {}
        for f in current:
            faults.setdefault(f.fault, []).append(f)
        self._apply(faults)

    def _apply(self, faults: dict[str, list[ActiveFault]]) -> None:
        before = {n: self.value(n) for n in set(self.faults) | set(faults)}
        old_keys = {f.key: f.value for fs in self.faults.values() for f in fs}
        self.faults = faults
        new_keys = {f.key: f.value for fs in faults.values() for f in fs}
        for key in set(old_keys) | set(new_keys):
            if old_keys.get(key) != new_keys.get(key):
                fault = key.split(":")[2]
                chaos_changes_total.labels(self.service, fault).inc()
                event = "chaos.fault_cleared" if key not in new_keys else "chaos.fault_set"
                _logger.info(event, key=key, fault=fault, value=new_keys.get(key))
        for name in set(before) | set(faults):
            chaos_active.labels(self.service, name).set(1 if name in faults else 0)
            now = self.value(name)
            if now != before.get(name) and name in self._effects:
                self._effects[name](now)

    def _tick(self) -> None:
        if self.value("crash"):
            _logger.error("chaos.crash", note="exiting on the crash fault")
            asyncio.get_running_loop().create_task(self._crash_once())
        if self.value("crashloop") and time.monotonic() - self.started > self.crashloop_after_s:
            _logger.error("chaos.crashloop", note="exiting: crashloop is set")
            os._exit(3)
        leak = self.value("memory_leak_mb_s")
        if leak and sum(len(b) for b in self._leak) < _LEAK_CAP_MB * 2**20:
            chunk = bytearray(int(leak * self.refresh_s * 2**20))
            chunk[::4096] = b"x" * len(chunk[::4096])  # touch every page so it is resident
            self._leak.append(chunk)
        burn = self.value("cpu_burn_pct") or 0
        if burn and self._burner is None:
            self._burner = _CpuBurner()
            self._burner.start()
        if self._burner:
            self._burner.pct = burn
            if not burn:
                self._burner.stop()
                self._burner = None

    async def _crash_once(self) -> None:
        # Clear it first, so the restarted process does not crash again (crashloop does).
        try:
            await self.store.clear(self.service, "crash", who=f"{self.service}:crash")
        finally:
            os._exit(3)


def _under(path: str, route: str) -> bool:
    return path == route or path.startswith(route.rstrip("/") + "/")


class _CpuBurner(threading.Thread):
    """Busy-loops `pct` % of every 100 ms in a thread, contending for the GIL like real
    CPU-heavy code would."""

    def __init__(self) -> None:
        super().__init__(daemon=True, name="chaos-cpu-burn")
        self.pct = 0
        self._stopped = threading.Event()

    def run(self) -> None:
        while not self._stopped.is_set():
            busy_until = time.perf_counter() + 0.1 * self.pct / 100
            while time.perf_counter() < busy_until:
                pass
            self._stopped.wait(0.1 * (100 - self.pct) / 100)

    def stop(self) -> None:
        self._stopped.set()
