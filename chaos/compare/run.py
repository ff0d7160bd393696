"""Running a comparison: for each set, a fresh stack on free ports with that set's
patterns, then the same load and the same fault, then its figures.

Per set: start the stack (`PATTERNS=<the set's>`), warm up under load, switch the fault
on for `fault_s`, switch it off and keep the load on for `recover_s`, stop the load,
let the stack settle (no pending order, an empty outbox, at most `settle_s`), then
`chaoslab verify` with the client ledger and the figures (measure.py, collect.py); the
stack is deleted whatever happened. A fresh stack per set costs seconds (start and
delete) and keeps each set's orders, charges and events apart, so every count is the
set's own.

Ctrl-C stops the load, the fault and the stack being run (by their pids and sockets,
nothing else), and the comparison returns what it has.
"""

from __future__ import annotations

import contextlib
import math
import os
import secrets
import signal
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from chaos import ledger, runner
from chaos.compare import collect, measure
from chaos.compare.faults import Fault
from chaos.compare.faults import clear as clear_fault
from chaos.compare.faults import inject as inject_fault
from chaos.compare.sets import PatternSet
from chaos.drills.load import Load
from chaos.layout import StackLayout
from chaos.ledger_figures import order_windows
from services.common.resilience.patterns import describe_patterns

# The shoppers' pause between orders: a few orders per second per user, well inside what
# two cores carry with every pattern on, so the fault (not the load) makes the difference.
THINK = {"CHAOSLAB_THINK_MIN_S": "0.5", "CHAOSLAB_THINK_MAX_S": "1.0"}
SPIKE_PEAK_TIMES = 8  # the spike's peak, in times the base users


@dataclass(frozen=True)
class Timing:
    """How long each phase of a set lasts, in seconds."""

    warm_s: float
    fault_s: float
    recover_s: float
    settle_s: float  # the longest wait, after the load, for the stack to finish what it holds

    @property
    def load_s(self) -> float:
        return self.warm_s + self.fault_s + self.recover_s


# Per profile: the recovery outlasts training's 30 s open breaker; settling covers a
# lease and two sweeper passes (the profile's time scales, services/common/web/settings.py).
TIMINGS = {
    "training": Timing(warm_s=20, fault_s=60, recover_s=60, settle_s=60),
    "ci": Timing(warm_s=10, fault_s=30, recover_s=30, settle_s=20),
}
QUICK = {"warm_s": 5.0, "fault_s": 20.0, "recover_s": 20.0}


@dataclass(frozen=True)
class Plan:
    fault: Fault
    sets: list[PatternSet]
    profile: str
    timing: Timing
    users: int
    out: Path


@dataclass
class SetResult:
    name: str
    patterns: str
    summary: str
    status: str = "waiting"  # waiting, running, done, failed, interrupted
    phase: str = ""
    phase_ends: float = 0.0  # when the phase in progress ends (Unix time; 0: not timed)
    phases: measure.Phases | None = None
    figures: measure.Figures = field(default_factory=measure.Figures)
    answers: dict[str, int] = field(default_factory=dict)
    verify: collect.Verdict = field(default_factory=collect.Verdict)
    settled_after_s: float = 0.0
    load_average: float = math.nan  # the machine's, over the last minute of the load: others' work shows
    wall_s: float = 0.0
    notes: list[str] = field(default_factory=list)
    files: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("phase_ends")
        data["verify"] = self.verify.as_dict()
        return data


@dataclass
class Comparison:
    plan: Plan
    results: list[SetResult]
    started_at: float = 0.0
    wall_s: float = 0.0
    interrupted: bool = False

    @property
    def finished(self) -> list[SetResult]:
        return [r for r in self.results if r.status == "done"]


Progress = Callable[[Comparison], None]


def run(plan: Plan, progress: Progress = lambda _c: None) -> Comparison:
    """Every set of the plan, one after the other; Ctrl-C ends the comparison early
    (`interrupted`), with the running set's stack stopped and deleted."""
    comparison = Comparison(
        plan,
        [SetResult(s.name, describe_patterns(s.patterns), s.summary) for s in plan.sets],
        started_at=time.time(),
    )
    plan.out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="chaoslab-compare-"))
    work.chmod(0o755)  # PostgreSQL runs as another user and must reach its data
    try:
        for pattern_set, result in zip(plan.sets, comparison.results, strict=True):
            _SetRun(plan, pattern_set, result, work / pattern_set.name, lambda: progress(comparison)).run()
    except KeyboardInterrupt:
        comparison.interrupted = True
        for result in comparison.results:
            if result.status in ("waiting", "running"):
                result.status = "interrupted" if result.status == "running" else "not run"
    finally:
        comparison.wall_s = round(time.time() - comparison.started_at, 1)
        with contextlib.suppress(OSError):
            work.rmdir()
        progress(comparison)
    return comparison


@contextlib.contextmanager
def _no_interrupt() -> Iterator[None]:
    """Cleaning up is not interrupted by a second Ctrl-C: the stack must not be left running."""
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


class _SetRun:
    def __init__(
        self, plan: Plan, pattern_set: PatternSet, result: SetResult, run_dir: Path, tick: Callable[[], None]
    ) -> None:
        self.plan, self.set, self.result, self.run_dir, self.tick = plan, pattern_set, result, run_dir, tick
        self.dir = plan.out / f"set-{pattern_set.name}"
        self.ledger_path = self.dir / "ledger.jsonl"
        self.layout: StackLayout | None = None
        self.load: Load | None = None
        self.fault_on = False
        self._read_at = 0.0

    def run(self) -> None:
        result, started = self.result, time.time()
        result.status = "running"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.ledger_path.unlink(missing_ok=True)
        result.files = {"ledger": str(self.ledger_path), "locust_log": str(self.dir / "locust.log")}
        try:
            self._phase("starting its stack")
            self.layout = runner.up(
                self.run_dir,
                profile=self.plan.profile,
                chaos_token=secrets.token_urlsafe(12),
                pick_free_ports=True,
                timeout_s=180,
                progress=lambda _m: self.tick(),
                env=self.set.env,
            )
            self._load_and_fault()
            self._collect()
            result.status = "done"
        except KeyboardInterrupt:
            result.status = "interrupted"
            raise
        except Exception as exc:  # noqa: BLE001 - one set failing is reported; the others still run
            result.status = "failed"
            result.notes.append(f"{result.phase}: {exc}")
        finally:
            with _no_interrupt():
                self._clean_up()
            result.phase = "" if result.status == "done" else result.phase
            result.wall_s = round(time.time() - started, 1)
            self.tick()

    # -- the load, the fault and the recovery ---------------------------------------------

    def _load_and_fault(self) -> None:
        plan, fault, timing = self.plan, self.plan.fault, self.plan.timing
        assert self.layout is not None
        env = {**THINK, ledger.LEDGER_VAR: str(self.ledger_path), **_shape_env(fault, timing, plan.users)}
        self.load = Load(
            self.layout.url("gateway"),
            users=plan.users,
            tags="orders",
            shape=fault.shape,
            max_s=timing.load_s + 30,  # stops by itself even if we never stop it
            log=self.dir / "locust.log",
            env=env,
        ).start()
        start = time.time()
        self._wait("warm-up", start + timing.warm_s)
        before = self._charge_calls()
        fault_at = time.time()
        if fault.shape is None:
            inject_fault(self.layout, fault, ttl_s=timing.fault_s + 60)  # expires by itself, should we die
            self.fault_on = True
        self._wait(f"fault: {fault.name}", fault_at + timing.fault_s)
        cleared_at = time.time()
        after = self._charge_calls()
        if self.fault_on:
            clear_fault(self.layout, fault)
            self.fault_on = False
        self._wait("recovery", cleared_at + timing.recover_s)
        end = time.time()
        self.result.load_average = round(os.getloadavg()[0], 2)
        self.load.stop()
        phases = measure.Phases(start, fault_at, cleared_at, end)
        entries = ledger.read([self.ledger_path]).entries if self.ledger_path.exists() else []
        if fault.shape is not None and entries:
            # The shape's clock starts with locust, a moment after we started it: its first
            # order marks it.
            t0 = entries[0].t
            phases = measure.Phases(t0, t0 + timing.warm_s, t0 + timing.warm_s + timing.fault_s, end)
        self.result.phases = phases
        figures = measure.from_ledger(entries, phases)
        figures.payments_calls = after - before
        figures.amplification = measure.amplification(figures.payments_calls, _orders_between(entries, phases))
        self.result.figures = figures
        self.result.answers = _by_status(entries)
        if not entries:
            self.result.notes.append(f"the client ledger is empty: see {self.dir / 'locust.log'}")

    def _wait(self, phase: str, until: float) -> None:
        self._phase(phase, until)
        while (left := until - time.time()) > 0:
            self._live()
            self.tick()
            time.sleep(min(0.5, left))
        if self.load is not None and not self.load.running() and self.plan.fault.shape is None:
            self.result.notes.append(f"locust stopped early, during the {phase} (see {self.dir / 'locust.log'})")

    def _phase(self, phase: str, until: float = 0.0) -> None:
        self.result.phase, self.result.phase_ends = phase, until
        self.tick()

    def _live(self) -> None:
        """The figures so far, from the ledger as it grows (re-read every 2 s)."""
        now = time.time()
        if now - self._read_at < 2.0 or not self.ledger_path.exists():
            return
        self._read_at = now
        entries = ledger.read([self.ledger_path]).entries
        figures = self.result.figures
        figures.confirmed = len({e.key for e in entries if e.status == 201 and e.order_status == "confirmed"})
        last = order_windows(entries, now - 12.0, now - 2.0, 10.0)
        figures.success_rate = last[0].success if last else math.nan

    def _charge_calls(self) -> float:
        assert self.layout is not None
        try:
            return collect.payments_calls(self.layout)
        except OSError as exc:
            self.result.notes.append(f"payments' /metrics did not answer: {exc}")
            return math.nan

    # -- after the load ---------------------------------------------------------------------

    def _collect(self) -> None:
        assert self.layout is not None
        self._phase("settling", time.time() + self.plan.timing.settle_s)
        self.result.settled_after_s = collect.settle(self.layout, self.plan.timing.settle_s, self.tick)
        self._phase("verify")
        harm = collect.harm(self.layout)
        figures = self.result.figures
        figures.duplicate_orders = harm["duplicate_orders"]
        figures.double_charges = harm["double_charges"]
        figures.events_lost = harm["events_lost"]
        entries = ledger.read([self.ledger_path]) if self.ledger_path.exists() else ledger.Ledger([])
        self.result.verify = collect.verify(self.layout, entries)

    def _clean_up(self) -> None:
        if self.load is not None:
            self.load.stop()
        if self.layout is not None and self.fault_on:
            with contextlib.suppress(Exception):
                clear_fault(self.layout, self.plan.fault)
        self._phase("deleting its stack")
        runner.clean(self.run_dir)


def _shape_env(fault: Fault, timing: Timing, users: int) -> dict[str, str]:
    """A spike's timetable: warm-up at the base users, the fault phase as the ramp and
    the hold at the peak, the recovery at the base users again."""
    if fault.shape != "spike":
        return {}
    ramp = min(10.0, timing.fault_s / 3)
    return {
        "CHAOSLAB_SPIKE_START_USERS": str(max(1, users // 4)),
        "CHAOSLAB_SPIKE_BASE_USERS": str(users),
        "CHAOSLAB_SPIKE_PEAK_USERS": str(users * SPIKE_PEAK_TIMES),
        "CHAOSLAB_SPIKE_WARM_SECONDS": f"{timing.warm_s:g}",
        "CHAOSLAB_SPIKE_RAMP_SECONDS": f"{ramp:g}",
        "CHAOSLAB_SPIKE_HOLD_SECONDS": f"{timing.fault_s - ramp:g}",
        "CHAOSLAB_SPIKE_AFTER_SECONDS": f"{timing.recover_s:g}",
    }


def _orders_between(entries: list[ledger.Entry], phases: measure.Phases) -> int:
    first: dict[str, float] = {}
    for e in entries:
        first.setdefault(e.key, e.t)
    return sum(1 for t in first.values() if phases.fault <= t < phases.cleared)


def _by_status(entries: list[ledger.Entry]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for e in entries:
        label = "no answer" if e.status == 0 else str(e.status)
        counts[label] = counts.get(label, 0) + 1
    return dict(sorted(counts.items()))
