"""One incident of a game: the drill engine's inject and recovery check, with the
remediation left to the responders, and how the game master knows its fault is gone
(the Redis keys its inject set deleted, a program it stopped running again)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import redis

from chaos import supervision
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

    def could_be_over(self) -> bool:
        """Detected, or its detect budget passed without the alert: before that, a quiet
        stack may only mean the fault has not shown yet (a relay stuck by a fault key that
        expires in seconds looks healthy until the outbox ages)."""
        if self.injected_at is None:
            return False
        return self.detected_at is not None or time.time() - self.injected_at >= self.drill.budgets.detect_s

    def fault_gone(self) -> bool:
        live = self.drill.fault_keys()
        stopped = {s for s, f in picking.causes(self.pick.definition) if f == "down"}
        pids = running_pids(self.drill.layout.run_dir)
        if any(not pids.get(program) for program in stopped):
            return False
        return not self.keys & live
