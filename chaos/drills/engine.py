"""The drill engine: one incident of the runbook, run end to end under load.

The six steps of every drill (docs/incidents.md): steady state, inject, detect (the
named alert firing in Prometheus; time to detect), remediate (the runbook's own
commands, run as written), recover within budget (time to recover), and `chaoslab
verify` clean. Whatever happens (a failed step, Ctrl-C), every fault is rolled back
before it returns: faults cleared, stopped programs started, extra replicas removed,
load stopped.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from chaos import runner, supervision
from chaos import verify as verifier
from chaos.compose import ComposeStack
from chaos.drills.load import Load
from chaos.drills.model import Incident, Step
from chaos.drills.prom import Prometheus, PrometheusUnavailable
from chaos.layout import SERVICES, StackLayout

REPO = Path(__file__).resolve().parents[2]
Progress = Callable[[str, str, str], None]  # (incident id, step, status text)

SUCCESS_RATE = "order_success_rate"
TIMELINE = {
    "order success rate": "order_success_rate",
    "gateway p99 (s)": 'job:http_request_duration_seconds:p99_rate1m{job="gateway"}',
    "breakers open": "max(breaker_state)",
    "outbox pending": "sum(outbox_pending)",
}


# Brisk shoppers, so that a 10-second rate window holds enough orders to judge.
STEADY_LOAD = {"CHAOSLAB_THINK_MIN_S": "0.1", "CHAOSLAB_THINK_MAX_S": "0.3"}


class StepFailed(Exception):
    pass


@dataclass
class StepResult:
    name: str
    ok: bool
    seconds: float
    detail: str = ""


@dataclass
class DrillResult:
    incident: str
    title: str
    alert: str | None
    ok: bool = False
    steps: list[StepResult] = field(default_factory=list)
    time_to_detect_s: float | None = None
    time_to_recover_s: float | None = None
    orders_attempted: float | None = None
    orders_succeeded: float | None = None
    verify: dict = field(default_factory=dict)
    started_at: float = 0.0
    ended_at: float = 0.0
    marks: dict[str, float] = field(default_factory=dict)
    timeline: dict[str, list[tuple[float, float]]] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)


class Drill:
    def __init__(
        self,
        layout: StackLayout | ComposeStack,
        incident: Incident,
        *,
        log_dir: Path,
        progress: Progress = lambda *_: None,
        users: int = 6,
    ) -> None:
        self.layout, self.incident, self.progress, self.users = layout, incident, progress, users
        self.prom = Prometheus(layout.url("prometheus"))
        self.log_dir = log_dir
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.log = self.log_dir / f"{incident.id}.log"
        self.extra_loads: list[Load] = []
        self.result = DrillResult(incident.id, incident.title, incident.alert)
        scale = 1.0 if layout.profile == "ci" else 4.0
        self.steady_budget_s = 60 * scale
        self.verify_budget_s = 60 * scale

    # -- the six steps ---------------------------------------------------------------

    def run(self) -> DrillResult:
        inc = self.incident
        self.result.started_at = time.time()
        load = Load(self.layout.url("gateway"), users=self.users, tags="shop", log=self.log, env=STEADY_LOAD).start()
        try:
            self._step("steady state", self._steady)
            self.result.marks["inject"] = time.time()
            self._step("inject", lambda: self._run_steps(inc.inject))
            self._step("detect", self._detect)
            self.result.marks["remediate"] = time.time()
            self._step("remediate", lambda: self._run_steps(inc.remediate))
            self._step("recover", self._recover)
            self._count_orders()
        except StepFailed:
            pass
        except KeyboardInterrupt:
            self.result.steps.append(StepResult("interrupted", False, 0, "Ctrl-C: rolled back"))
            raise
        finally:
            for extra in self.extra_loads:
                extra.stop()
            load.stop()
            self._step_quietly("roll back", self.rollback)
        if all(s.ok for s in self.result.steps):
            self._step_quietly("verify", self._verify)
        self.result.ended_at = time.time()
        self.result.ok = all(s.ok for s in self.result.steps) and len(self.result.steps) >= 7
        self.result.timeline = self._timeline()
        return self.result

    def _steady(self) -> str:
        alert = self.incident.alert

        def holds() -> str | None:
            if not self.prom.up():
                return None
            rate = self.prom.value(SUCCESS_RATE)
            firing = self.prom.firing()
            if rate is not None and rate >= self.incident.steady_success and alert not in firing:
                return f"success rate {rate:.2f}, {alert or 'no alert'} silent"
            return None

        return self._poll(holds, self.steady_budget_s, "the steady state never held")

    def _detect(self) -> str:
        alert = self.incident.alert
        started = self.result.marks["inject"]

        def detected() -> str | None:
            if alert is None:  # the watchdog: Prometheus itself is what broke
                return None if self.prom.up() else "watchdog: Prometheus does not answer"
            try:
                return f"{alert} firing" if alert in self.prom.firing() else None
            except PrometheusUnavailable:
                return None

        detail = self._poll(detected, self.incident.detect_budget_s, f"{alert or 'the watchdog'} never fired")
        self.result.time_to_detect_s = round(time.time() - started, 1)
        outputs = self._run_steps(self.incident.diagnose, diagnose=True)
        return f"{detail} after {self.result.time_to_detect_s}s; {outputs}"

    def _recover(self) -> str:
        alert = self.incident.alert
        started = self.result.marks["remediate"]

        def recovered() -> str | None:
            try:
                if alert is not None and alert in self.prom.firing():
                    return None
                rate = self.prom.value(SUCCESS_RATE)
            except PrometheusUnavailable:
                return None
            if rate is None or rate < self.incident.steady_success:
                return None
            if self.incident.recovered_when and self.prom.value(self.incident.recovered_when) is None:
                return None
            return f"{alert or 'Prometheus'} resolved, success rate {rate:.2f}"

        detail = self._poll(recovered, self.incident.recover_budget_s, "did not recover within budget")
        self.result.time_to_recover_s = round(time.time() - started, 1)
        return f"{detail} after {self.result.time_to_recover_s}s"

    def _verify(self) -> str:
        deadline = time.monotonic() + self.verify_budget_s
        while True:
            checks, counts = verifier.verify(self.layout.database_url, grace_s=0)
            failed = {c.name: c.examples for c in checks if not c.ok}
            self.result.verify = {"ok": not failed, "orders": counts, "failed": failed}
            if not failed:
                return f"clean: {counts}"
            if time.monotonic() > deadline:
                raise StepFailed(f"verify still fails: {failed}")
            time.sleep(1)

    # -- rollback: no fault outlives a drill -------------------------------------------

    def rollback(self) -> str:
        env = self.command_env()
        subprocess.run(
            [sys.executable, "-m", "chaos.cli", "chaos", "clear"],
            env=env,
            cwd=REPO,
            capture_output=True,
            timeout=60,
            check=False,
        )
        if isinstance(self.layout, ComposeStack):
            started = self.layout.start_stopped()
            self.layout.wait_healthy(timeout_s=60)
            return "faults cleared" + (f"; started {', '.join(started)}" if started else "")
        # The runbook's commands may have scaled services: the layout on disk is current.
        self.layout = StackLayout.load(self.layout.run_dir)
        sup = supervision.Supervisor(self.layout)
        for service in SERVICES:
            if len(self.layout.replica_ports(service)) > 1:
                runner.scale(self.layout, service, 1)
        started = []
        for info in sup.processes():
            if info["statename"] != "RUNNING":
                sup.start(info["name"])
                started.append(info["name"])
        runner.wait_healthy(self.layout, timeout_s=60, progress=lambda _m: None)
        return "faults cleared" + (f"; started {', '.join(started)}" if started else "")

    # -- helpers ---------------------------------------------------------------------

    def command_env(self) -> dict[str, str]:
        """What the runbook's commands need to find this stack (the defaults otherwise)."""
        bin_dir = str(Path(sys.executable).parent)
        target = "compose" if isinstance(self.layout, ComposeStack) else "native"
        return {
            **os.environ,
            "PATH": f"{bin_dir}:{os.environ.get('PATH', '')}",
            "CHAOSLAB_TARGET": target,
            "CHAOSLAB_RUN_DIR": str(self.layout.run_dir),
            "REDIS_URL": self.layout.redis_url,
            "CHAOSLAB_PROFILE": self.layout.profile,
            "CHAOSLAB_PYTHON": sys.executable,
            "GATEWAY_URL": self.layout.url("gateway"),
            "PROMETHEUS_URL": self.layout.url("prometheus"),
        }

    def _run_steps(self, steps: tuple[Step, ...], *, diagnose: bool = False) -> str:
        done = []
        for step in steps:
            if step.action:
                self._action(step.action)
                done.append(step.action)
                continue
            with open(self.log, "a") as out:
                out.write(f"\n$ {step.run}\n")
                out.flush()
                result = subprocess.run(
                    step.run,
                    shell=True,
                    cwd=REPO,
                    env=self.command_env(),
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    timeout=180,
                    check=False,
                )
            # Diagnosis commands may well report trouble (exit 1); they must still run.
            broken = result.returncode in (126, 127) if diagnose else result.returncode != 0
            if broken:
                raise StepFailed(f"`{step.run}` exited {result.returncode} (see {self.log})")
            done.append(step.run)
        return "; ".join(done) or "nothing to run"

    def _action(self, action: str) -> None:
        kind, _, arg = action.partition(":")
        if kind == "start_load":
            tags, _, shape = arg.partition("/")
            env = {k: v for k, v in self.incident.extra.items() if k.startswith("CHAOSLAB_")}
            self.extra_loads.append(
                Load(
                    self.layout.url("gateway"),
                    users=int(self.incident.extra.get("users", 40)),
                    tags=tags,
                    shape=shape or None,
                    log=self.log,
                    env=env,
                ).start()
            )
        elif kind == "stop_load":
            for extra in self.extra_loads:
                extra.stop()
        else:
            raise StepFailed(f"unknown drill action {action!r}")

    def _poll(self, check: Callable[[], str | None], budget_s: float, failure: str) -> str:
        deadline = time.monotonic() + budget_s
        while time.monotonic() < deadline:
            try:
                found = check()
            except PrometheusUnavailable:
                found = None
            if found:
                return found
            time.sleep(0.5)
        raise StepFailed(f"{failure} ({budget_s:.0f}s)")

    def _step(self, name: str, body: Callable[[], str]) -> None:
        self.progress(self.incident.id, name, "running")
        started = time.monotonic()
        try:
            detail = body()
        except StepFailed as exc:
            self.result.steps.append(StepResult(name, False, round(time.monotonic() - started, 1), str(exc)))
            self._note(f"step {name}: FAILED ({exc})")
            self.progress(self.incident.id, name, f"failed: {exc}")
            raise
        self.result.steps.append(StepResult(name, True, round(time.monotonic() - started, 1), detail))
        self._note(f"step {name}: ok ({detail})")
        self.progress(self.incident.id, name, "ok")

    def _note(self, line: str) -> None:
        with open(self.log, "a") as out:
            out.write(f"# {time.strftime('%H:%M:%S')} {line}\n")

    def _step_quietly(self, name: str, body: Callable[[], str]) -> None:
        try:
            self._step(name, body)
        except StepFailed:
            pass
        except Exception as exc:  # noqa: BLE001 - a rollback problem is reported, never hidden
            self.result.steps.append(StepResult(name, False, 0, f"{type(exc).__name__}: {exc}"))

    def _count_orders(self) -> None:
        window = int(time.time() - self.result.marks["inject"]) + 1
        base = 'http_requests_total{job="gateway",route="/orders",method="POST"'
        try:
            self.result.orders_attempted = round(self.prom.value(f"sum(increase({base}}}[{window}s]))") or 0)
            self.result.orders_succeeded = round(
                self.prom.value(f'sum(increase({base},status="201"}}[{window}s]))') or 0
            )
        except PrometheusUnavailable:
            pass

    def _timeline(self) -> dict[str, list[tuple[float, float]]]:
        step = 1.0 if self.layout.profile == "ci" else 5.0
        out = {}
        for name, expr in TIMELINE.items():
            try:
                out[name] = self.prom.series(expr, self.result.started_at, time.time(), step)
            except PrometheusUnavailable:
                out[name] = []
        return out
