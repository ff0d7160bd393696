"""One incident of a game: the drill engine's inject and recovery check, with the
remediation left to the responders, and how the game master knows its fault is gone
(the Redis keys its inject set deleted, a program it stopped running again).

The incident's own load (its inject's `start_load`) is the game master's, since only the
load generator can stop it: it stops it when the runbook's remediation says `stop_load`
and the responders have done their part (the fault gone; for an incident that is only
load, its cause named), and once the incident is over in any case. A surge whose shape
ends stops by itself.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis

from chaos import ledger as client_ledger
from chaos import supervision
from chaos import verify as verifier
from chaos.drills.engine import STEADY_LOAD, Drill
from chaos.gameday import picking
from chaos.gameday.picking import Pick
from chaos.layout import StackLayout
from services.common.faults.catalogue import parse_key


def running_pids(run_dir: Path) -> dict[str, int]:
    """Each supervised program's pid (0 when it is not running), as supervisord says now."""
    try:
        procs = supervision.Supervisor(StackLayout.load(run_dir)).processes()
    except OSError:
        return {}
    return {p["name"]: p["pid"] for p in procs}


class GameDrill(Drill):
    """One incident of the game: the drill's inject and recovery check, no remediation."""

    def command_env(self) -> dict[str, str]:
        return {**super().command_env(), "CHAOSLAB_RESPONDER": "game master"}

    def inject(self) -> set[str]:
        """Run the incident's inject steps; the fault keys they set."""
        before = self.fault_keys()
        self._mark("inject")
        self.pages.armed(self._firing())
        self._run_steps(self.incident.inject)
        return self.fault_keys() - before

    def detected(self) -> bool:
        if self.switch is not None:
            return self.switch.armed() is False
        return self.incident.alert in self._firing()

    def expiries(self, keys: set[str]) -> dict[str, float | None]:
        """When each of `keys` expires (wall time; None without a TTL): a key gone earlier
        with no audited clear was deleted by hand."""
        client = redis.Redis.from_url(self.layout.redis_url, socket_timeout=2, decode_responses=True)
        try:
            now = time.time()
            return {k: (now + ms / 1000 if (ms := client.pttl(k)) >= 0 else None) for k in keys}
        except (redis.RedisError, OSError):
            return dict.fromkeys(keys)
        finally:
            client.close()

    def stop_extra_load(self) -> None:
        """The incident's own load (a surge, a storm, the peak), not the game's shoppers."""
        for load in self.extra_loads:
            load.stop()

    def extra_load_running(self) -> bool:
        return any(load.running() for load in self.extra_loads)

    def ledger_violations(self) -> dict[str, list[str]]:
        """Every violation of the client-ledger checks (verify keeps five examples of each),
        one line per client key: the orders lost or doubled, counted one by one."""
        files = self._ledger_files()
        if not files:
            return {}
        report = asyncio.run(
            verifier.snapshot(self.layout.database_url, 0, ledger=client_ledger.read(files), examples=1_000_000)
        )
        return {c.name: c.examples for c in report.failed if c.name in client_ledger.LEDGER_CHECKS}

    def fault_keys(self) -> set[str]:
        client = redis.Redis.from_url(self.layout.redis_url, socket_timeout=2, decode_responses=True)
        try:
            return {k for k in client.scan_iter(match="chaos:*", count=500) if parse_key(k)}
        except (redis.RedisError, OSError):
            return set()
        finally:
            client.close()

    def start_load(self) -> None:
        self._load(users=self.users, tags="shop", env=STEADY_LOAD)

    def steady(self) -> None:
        self._step("steady state", self._steady)

    def finish(self) -> None:
        """Stop the load, roll every fault back and verify (quietly: the score reads them)."""
        for load in self.loads:
            load.stop()
        self._judge_loads()
        self._step_quietly("roll back", self.rollback)
        self.result.marks.setdefault("recovered", time.time())
        self._step_quietly("verify", self._verify)
        if any(name in client_ledger.LEDGER_CHECKS for name in self.result.verify.get("failed", {})):
            self.result.verify["ledger_violations"] = self.ledger_violations()
        if "inject" in self.result.marks:  # no orders to count when the game never began
            self._count_orders()
        self.result.ended_at = time.time()
        self.result.timeline = self._timeline()


@dataclass
class Played:
    """One pick as it went: wall times, and the fault keys its inject set."""

    pick: Pick
    drill: GameDrill
    injected_at: float | None = None
    detected_at: float | None = None
    over_at: float | None = None
    keys: set[str] = field(default_factory=set)
    expires: dict[str, float | None] = field(default_factory=dict)  # when each key's TTL ends
    gone: dict[str, float] = field(default_factory=dict)  # when each key was first seen gone

    def could_be_over(self) -> bool:
        """Detected, or its detect budget passed without the alert: before that, a quiet
        stack may only mean the fault has not shown yet (a relay stuck by a fault key that
        expires in seconds looks healthy until the outbox ages)."""
        if self.injected_at is None:
            return False
        return self.detected_at is not None or time.time() - self.injected_at >= self.drill.budgets.detect_s

    def watch_keys(self) -> None:
        """Note when each key the inject set is first seen gone (cleared, expired or deleted)."""
        if self.keys - self.gone.keys():
            now = time.time()
            for key in self.keys - self.drill.fault_keys() - self.gone.keys():
                self.gone[key] = now

    def fault_gone(self) -> bool:
        stopped = {s for s, f in picking.causes(self.pick.definition) if f == "down"}
        pids = running_pids(self.drill.layout.run_dir)
        if any(not pids.get(program) for program in stopped):
            return False
        return self.keys <= self.gone.keys()

    def load_due(self, localized: bool) -> bool:
        """The runbook's `stop_load` is due: the responders have done their part (the fault
        gone; for an incident that is only load, its cause named)."""
        inc = self.pick.definition
        if not self.drill.extra_load_running() or not any(s.action == "stop_load" for s in inc.remediate):
            return False
        return localized if picking.load_only(inc) else self.fault_gone()

    def remedied(self) -> bool:
        """The runbook's remediation is done: the fault gone, and the load stopped if it says so."""
        stops = any(s.action == "stop_load" for s in self.pick.definition.remediate)
        return self.fault_gone() and not (stops and self.drill.extra_load_running())
