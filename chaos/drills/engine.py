"""The drill engine: one incident of the runbook, run end to end under load.

The six steps of every drill (docs/incidents.md): steady state, inject, detect (the
named alert firing in Prometheus; time to detect; and the SLO page, for an incident
that must page: chaos/drills/symptoms.py), remediate (the runbook's own commands, run
as written), recover within budget (time to recover), and `chaoslab verify` clean.
Whatever happens (a failed step, Ctrl-C), every fault is rolled back before it returns:
faults cleared, stopped programs started, extra replicas removed, load stopped.
"""

from __future__ import annotations

import asyncio
import math
import os
import subprocess
import sys
import time
import xmlrpc.client
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import redis

from chaos import infra, prometheus_config, runner, supervision
from chaos import ledger as client_ledger
from chaos import verify as verifier
from chaos.compose import ComposeError, ComposeStack
from chaos.db import reconcile as reconciling
from chaos.drills import budgets, symptoms
from chaos.drills.load import Failures, Load
from chaos.drills.model import Incident, Step
from chaos.drills.page_budget import PageBudget
from chaos.drills.prom import Prometheus, PrometheusUnavailable
from chaos.drills.watchdog import DeadMansSwitch
from chaos.k8s import K8sError
from chaos.k8s_stack import K8sStack
from chaos.layout import SERVICES, StackLayout
from chaos.slo import spec as slo_spec
from services.common.faults.catalogue import parse_key

REPO = Path(__file__).resolve().parents[2]
Progress = Callable[[str, str, str], None]  # (incident id, step, status text)

SUCCESS_RATE = "order_success_rate"
TIMELINE = {
    "order success rate": "order_success_rate",
    "gateway p99 (s)": 'job:http_request_duration_seconds:p99_rate1m{job="gateway"}',
    "breakers open": "max(breaker_state)",
    "outbox pending": "sum(outbox_pending)",
    # The page fires while this (over 5 m, and over 1 h) is above 14.4 (docs/slo.md).
    "availability burn rate (5m)": (
        'slo:sli_error:ratio_rate5m{slo="orders-availability"} / on (slo) slo:error_budget:ratio'
    ),
}


# Brisk shoppers, so that a 10-second rate window holds enough orders to judge.
STEADY_LOAD = {"CHAOSLAB_THINK_MIN_S": "0.1", "CHAOSLAB_THINK_MAX_S": "0.3"}


class StepFailed(Exception):
    pass


def rate_text(rate: float | None) -> str:
    """A success rate as a drill reports it: no sample and NaN say what they mean."""
    if rate is None:
        return "unknown (no sample)"
    return "unknown (no order finished)" if math.isnan(rate) else f"{rate:.2f}"


def rate_holds(rate: float | None, threshold: float) -> bool:
    """A success rate at or over its threshold. No sample, or NaN (no order finished in
    the window, as when the database is down), is not holding."""
    return rate is not None and not math.isnan(rate) and rate >= threshold


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
    # The budgets those times are held to (chaos/drills/budgets.py, for the stack's profile).
    detect_budget_s: float | None = None
    recover_budget_s: float | None = None
    orders_attempted: float | None = None
    orders_succeeded: float | None = None
    verify: dict = field(default_factory=dict)
    started_at: float = 0.0
    ended_at: float = 0.0
    marks: dict[str, float] = field(default_factory=dict)
    # locust's own checks, by class (loadtests/checks.py `classify`): contract violations
    # fail the drill; failures expected of the incident are counted here.
    load_failures: dict = field(default_factory=dict)
    # The client ledger's counts (chaos/ledger.py Summary) and its 5xx in the incident's window.
    ledger: dict = field(default_factory=dict)
    # The customers' side (chaos/drills/symptoms.py): the SLO page that fired first, in
    # seconds since the inject, the budget it is held to (an incident that must page),
    # whether it came before, with or after the alert above, and per SLO the error
    # budget the drill spent from the inject to the recovery.
    page_alert: str | None = None
    time_to_page_s: float | None = None
    page_budget_s: float | None = None
    page_vs_alert: str = ""
    budget_spent: dict[str, dict[str, float]] = field(default_factory=dict)
    # An incident that loses data by design (measures_rpo): what the restore lost of what
    # clients were told (orders, and the span of their answers), the span it is held to, and
    # the time from the fault in place (the database destroyed) to recovered.
    rpo_orders: int | None = None
    rpo_s: float | None = None
    rpo_budget_s: float | None = None
    rto_s: float | None = None
    timeline: dict[str, list[tuple[float, float]]] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)


class Drill:
    def __init__(
        self,
        layout: StackLayout | ComposeStack | K8sStack,
        incident: Incident,
        *,
        log_dir: Path,
        progress: Progress = lambda *_: None,
        users: int = 6,
        workers: int = 1,
    ) -> None:
        self.layout, self.incident, self.progress, self.users = layout, incident, progress, users
        self.workers = workers  # locust processes each load of the drill spreads its users over
        self.prom = Prometheus(layout.url("prometheus"))
        self.log_dir = log_dir
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.log = self.log_dir / f"{incident.id}.log"
        self.extra_loads: list[Load] = []
        self.loads: list[Load] = []  # every locust run of this drill, judged after it stops
        # When each timed step began (time.monotonic()): a budget's deadline and the time
        # the report gives are both measured from here.
        self.clock: dict[str, float] = {}
        self.result = DrillResult(incident.id, incident.title, incident.alert)
        self.budgets = budgets.of(incident, layout.profile)
        self.result.detect_budget_s, self.result.recover_budget_s = self.budgets.detect_s, self.budgets.recover_s
        self.result.page_budget_s = self.budgets.page_s
        self.pages = symptoms.PageWatch.of(incident.slos)
        # The page the drill waits for (fired in detect, resolved in recover), if any.
        self.page = slo_spec.by_name(incident.page.slo).alert(slo_spec.PAGE) if incident.page else None
        self.page_budget = (
            PageBudget(self.prom, incident, layout.profile, self.budgets.page_s or 0.0) if incident.page else None
        )
        # Detected by the dead man's switch: Watchdog, as Alertmanager lists it.
        self.switch = DeadMansSwitch(layout.url("alertmanager")) if incident.detection == "dead-mans-switch" else None
        # The replicas each service runs before the drill: the rollback brings them back.
        self.replicas = (
            {}
            if isinstance(layout, ComposeStack | K8sStack)
            else {s: len(StackLayout.load(layout.run_dir).replica_ports(s)) for s in SERVICES}
        )
        self.rollback_confirm_s = 10.0
        scale = 1.0 if layout.profile == "ci" else 4.0
        # The steady state is a precondition, not a verdict: waiting longer for it costs
        # nothing once it holds, and a busy machine (CI's test lanes side by side) can keep
        # ci's success rate, with its 1.5 s timeouts, under the threshold for a minute.
        self.steady_budget_s = 120.0 if layout.profile == "ci" else 240.0
        self.verify_budget_s = 60 * scale

    # -- the six steps ---------------------------------------------------------------

    def run(self) -> DrillResult:
        inc = self.incident
        self.result.started_at = time.time()
        load = self._load(users=self.users, tags="shop", env=STEADY_LOAD)
        try:
            self._step("steady state", self._steady)
            self._mark("inject")
            self.pages.armed(self._firing())
            if self.page_budget:
                self.page_budget.before_inject()
            self._step("inject", lambda: self._run_steps(inc.inject))
            self.result.marks["injected"] = time.time()
            self._step("detect", self._detect)
            self._mark("remediate")
            self._step("remediate", lambda: self._run_steps(inc.remediate))
            self._step("recover", self._recover)
            self.result.marks["recovered"] = time.time()
            if inc.measures_rpo:
                self.result.rto_s = round(self.result.marks["recovered"] - self.result.marks["injected"], 1)
            self._count_orders()
        except StepFailed:
            pass
        except KeyboardInterrupt:
            self.result.steps.append(StepResult("interrupted", False, 0, "Ctrl-C: rolled back"))
            raise
        finally:
            self._symptoms()
            for extra in self.extra_loads:
                extra.stop()
            load.stop()
            self._judge_loads()
            self._step_quietly("roll back", self.rollback)
        if all(s.ok for s in self.result.steps):
            self._step_quietly("verify", self._verify)
        self.result.ended_at = time.time()
        self.result.ok = all(s.ok for s in self.result.steps) and len(self.result.steps) >= 7
        self.result.timeline = self._timeline()
        return self.result

    def _steady(self) -> str:
        alert = self.incident.prometheus_alert
        quiet = f"{alert} silent" if alert else f"{self.incident.alert} in Alertmanager"
        quiet += f", {self.page} silent" if self.page else ""

        # What kept the steady state from holding, last time it was looked at: a drill
        # that never starts says why.
        unmet = ["Prometheus did not answer"]
        silent = {name for name in (alert, self.page) if name}

        def holds() -> str | None:
            if not self.prom.up():
                unmet[:] = ["Prometheus is down"]
                return None
            rate = self.prom.value(SUCCESS_RATE)
            unmet[:] = [
                *([] if rate_holds(rate, self.incident.steady_success) else [f"success rate {rate_text(rate)}"]),
                *(f"{name} firing" for name in sorted(silent & self.prom.firing())),
                *([] if self._switch_armed() else ["the dead man's switch not in Alertmanager"]),
            ]
            return None if unmet else f"success rate {rate:.2f}, {quiet}"

        try:
            return self._poll(holds, self.steady_budget_s, "the steady state never held")[0]
        except StepFailed as exc:
            raise StepFailed(f"{exc}: {', '.join(unmet)}") from None

    def _detect(self) -> str:
        """The incident's alert, then (for an incident that must page) its SLO page too,
        each timed from the inject and held to its own budget."""
        alert = self.incident.alert
        budget_s = self.budgets.detect_s
        never = f"{alert} never {'fired' if self.switch is None else 'left Alertmanager'} ({budget_s:.0f}s)"

        def detected() -> str | None:
            firing = self._firing()
            # The dead man's switch: Prometheus itself is what broke.
            found = self.switch.armed() is False if self.switch is not None else alert in firing
            took_s = time.monotonic() - self.clock["inject"]
            self.pages.see(firing, took_s)
            if self.result.time_to_detect_s is None:
                if not found:
                    if took_s >= budget_s:
                        raise StepFailed(never)
                    return None
                self.result.time_to_detect_s = round(took_s, 1)
            if self.page_budget and self.page not in self.pages.fired_s:
                page_budget_s = self.page_budget.at(took_s)
                self.result.page_budget_s = round(page_budget_s)
                if took_s >= page_budget_s:
                    raise StepFailed(f"{self.page} never fired ({page_budget_s:.0f}s{self._page_note()})")
                return None
            return f"{alert} {'firing' if self.switch is None else 'gone from Alertmanager'}"

        bound_s = max(budget_s, self.page_budget.bound_s if self.page_budget else 0.0)
        detail, _ = self._poll(detected, bound_s, never, since=self.clock["inject"])
        self._within_budget("detected", self.result.time_to_detect_s or 0.0, budget_s)
        if self.page_budget and self.page:
            paged_s = self.pages.fired_s[self.page]
            self._within_budget(f"{self.page} fired", paged_s, self.page_budget.budget_s)
            detail += f" after {self.result.time_to_detect_s}s, {self.page} after {paged_s}s{self._page_note()}"
        else:
            detail += f" after {self.result.time_to_detect_s}s"
        outputs = self._run_steps(self.incident.diagnose, diagnose=True)
        return f"{detail}; {outputs}"

    def _page_note(self) -> str:
        return f"; {self.page_budget.note}" if self.page_budget and self.page_budget.note else ""

    def _firing(self) -> set[str]:
        """The alerts firing in Prometheus now; none while it does not answer."""
        try:
            return self.prom.firing()
        except PrometheusUnavailable:
            return set()

    def _symptoms(self) -> None:
        """Once the drill is over, passed or not: the first SLO page and how it came
        against the incident's alert, and the error budget each SLO lost from the inject
        to the recovery (or to now, when it never came)."""
        if "inject" not in self.result.marks:
            return
        first = self.pages.first()
        if first is not None:
            self.result.page_alert, self.result.time_to_page_s = first
        together_s = 2 * prometheus_config.seconds(prometheus_config.SCRAPE_INTERVAL[self.layout.profile])
        self.result.page_vs_alert = symptoms.order(self.result.time_to_page_s, self.result.time_to_detect_s, together_s)
        start, end = self.result.marks["inject"], self.result.marks.get("recovered", time.time())
        for slo in slo_spec.slos():
            try:
                period_s = budgets.period_s(slo, self.layout.profile)
                self.result.budget_spent[slo.name] = symptoms.spent(self.prom, slo, start, end, period_s)
            except PrometheusUnavailable:
                continue

    def recovery_holds(self) -> str | None:
        """The recovery check, once: the incident's alert (and page) resolved, the dead
        man's switch armed, the success rate back and the incident's own condition met;
        what holds, or None. The recover step polls it; a game day asks it directly."""
        alert = self.incident.prometheus_alert
        over = f"{alert} resolved" if alert else f"{self.incident.alert} back in Alertmanager"
        try:
            firing = self.prom.firing()
            self.pages.see(firing, time.monotonic() - self.clock["inject"])
            if {alert, self.page} & firing:
                return None
            if not self._switch_armed():
                return None
            rate = self.prom.value(SUCCESS_RATE)
        except PrometheusUnavailable:
            return None
        if not rate_holds(rate, self.incident.steady_success):
            return None
        if self.incident.recovered_when:
            extra = self.prom.value(self.incident.recovered_when)
            if extra is None or math.isnan(extra):
                return None
        return f"{over}, success rate {rate:.2f}" + (f", {self.page} resolved" if self.page else "")

    def _recover(self) -> str:
        # The budget covers the stack once the fix is in; the fix's own time (containers
        # starting in compose, a restore) is measured and added to it.
        budget_s = math.ceil(self.budgets.recover_s + time.monotonic() - self.clock["remediate"])
        self.result.recover_budget_s = budget_s
        detail, took_s = self._poll(
            self.recovery_holds, budget_s, "did not recover within budget", since=self.clock["remediate"]
        )
        self.result.time_to_recover_s = round(took_s, 1)
        self._within_budget("recovered", self.result.time_to_recover_s, budget_s)
        return f"{detail} after {self.result.time_to_recover_s}s"

    def _switch_armed(self) -> bool:
        """The dead man's switch is armed (Watchdog listed by Alertmanager); always true
        for an incident that Prometheus detects."""
        return self.switch is None or self.switch.armed() is True

    def _verify(self) -> str:
        """`chaoslab verify` clean, and nothing the clients were told contradicts the
        contract (locust's checks)."""
        problems = self._client_problems() + self._storm_of_5xx()
        ledger_files = self._ledger_files()
        told = client_ledger.read(ledger_files) if ledger_files else None
        if told is not None and self.incident.measures_rpo:
            told, over_budget = self._measure_rpo(told)
            problems += over_budget
        deadline = time.monotonic() + self.verify_budget_s
        while True:
            report = asyncio.run(verifier.snapshot(self.layout.database_url, 0, ledger=told))
            counts = report.counts
            failed = {c.name: c.examples for c in report.failed}
            self.result.verify = {"ok": not failed, "orders": counts, "failed": failed}
            if report.ledger is not None:
                self.result.ledger.update(report.ledger.as_dict())
            if not failed:
                break
            if time.monotonic() > deadline:
                ledger = {k: v for k, v in failed.items() if k in client_ledger.LEDGER_CHECKS}
                stack = {k: v for k, v in failed.items() if k not in ledger}
                if stack:
                    problems.insert(0, f"verify still fails: {stack}")
                if ledger:
                    problems.insert(0, f"the client ledger contradicts the database: {ledger}")
                break
            time.sleep(1)
        if problems:
            raise StepFailed("; ".join(problems))
        expected = sum(self.result.load_failures.get("expected", {}).values())
        return (
            f"clean: {counts}; ledger of {len(ledger_files)} file(s) kept; "
            f"locust: no contract violation, {expected} expected failure(s)"
        )

    def _measure_rpo(self, ledger: client_ledger.Ledger) -> tuple[client_ledger.Ledger, list[str]]:
        """What the restore lost of what clients were told (chaos/db/reconcile.py): its
        RPO, held to the WAL archive's interval; the ledger without those orders, which
        the verify judges like any other."""
        found = reconciling.against_database(self.layout.database_url, ledger)
        self.result.rpo_orders, self.result.rpo_s = len(found.lost), found.rpo_s
        archive_s = infra.ARCHIVE_TIMEOUT_S[self.layout.profile]
        self.result.rpo_budget_s = budget_s = math.ceil(budgets.MARGIN_RATIO * archive_s + budgets.MARGIN_S)
        self._note(f"RPO: {len(found.lost)} of {found.answered} answered order(s), {found.rpo_s}s of answers")
        lost = {item.order_id for item in found.lost}
        kept = client_ledger.Ledger([e for e in ledger.entries if e.order_id not in lost], ledger.skipped)
        if found.rpo_s > budget_s:
            return kept, [f"RPO {found.rpo_s}s over its {budget_s}s budget (the WAL archive's {archive_s}s)"]
        return kept, []

    def _ledger_files(self) -> list[Path]:
        prefixes = [load.stats for load in self.loads if load.stats is not None]
        return sorted(f for prefix in prefixes for f in prefix.parent.glob(prefix.name + "-ledger-*.jsonl"))

    def _storm_of_5xx(self) -> list[str]:
        """5xx answers to POST /orders, from the inject to the recovery, within the
        incident's share (the client ledger's own record of what clients were told)."""
        start, end = self.result.marks.get("inject"), self.result.marks.get("recovered")
        files = self._ledger_files()
        if start is None or end is None or not files:
            return [] if files else ["no client ledger was written: the load's answers cannot be checked"]
        window = [e for e in client_ledger.read(files).entries if start <= e.t <= end]
        errors = sum(1 for e in window if 500 <= e.status < 600)
        share = errors / len(window) if window else 0.0
        limit = self.incident.max_5xx_share
        self.result.ledger.update(window_answers=len(window), window_5xx=errors, max_5xx_share=limit)
        if share > limit:
            return [
                f"5xx storm: {errors} of {len(window)} answers to POST /orders were 5xx ({share:.0%}, over {limit:.0%})"
            ]
        return []

    def _client_problems(self) -> list[str]:
        found = self.result.load_failures
        problems = []
        if found.get("violations"):
            problems.append(f"locust's checks found contract violations: {_counts(found['violations'])}")
        if found.get("unread"):
            problems.append(f"locust wrote no failure table: {', '.join(found['unread'])}")
        return problems

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
        for step in self.incident.undo:
            subprocess.run(step.run, shell=True, env=env, cwd=REPO, capture_output=True, timeout=180, check=False)
        unhealthy = []
        if isinstance(self.layout, ComposeStack | K8sStack):
            started = self.layout.start_stopped()
            self.layout.wait_healthy(timeout_s=60)
        else:
            # The runbook's commands may have scaled services: the layout on disk is current.
            self.layout = StackLayout.load(self.layout.run_dir)
            sup = supervision.Supervisor(self.layout)
            for service, count in self.replicas.items():
                if len(self.layout.replica_ports(service)) != count:
                    runner.scale(self.layout, service, count)
            started = []
            for info in sup.processes():
                if info["statename"] != "RUNNING":
                    try:
                        sup.start(info["name"])
                    except xmlrpc.client.Fault:
                        continue  # named below, with what else is left
                    started.append(info["name"])
            try:
                runner.wait_healthy(self.layout, timeout_s=60, progress=lambda _m: None)
            except runner.StackError as exc:  # named with what else is left
                unhealthy.append(str(exc).splitlines()[0])
        left = unhealthy + self._left_over()
        if left:
            raise StepFailed("the rollback left " + "; ".join(left))
        return "faults cleared, every program running as before" + (
            f"; started {', '.join(started)}" if started else ""
        )

    def _left_over(self) -> list[str]:
        """What the rollback could not confirm gone: fault keys in Redis, programs not
        running, replicas not as before. Polled briefly: a program just started, or Redis,
        may need a moment."""
        deadline = time.monotonic() + self.rollback_confirm_s
        while True:
            left = self._fault_keys_left() + self._programs_left()
            if not left or time.monotonic() >= deadline:
                return left
            time.sleep(0.5)

    def _fault_keys_left(self) -> list[str]:
        url = self.layout.redis_url
        try:
            client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2, decode_responses=True)
            try:
                keys = sorted(k for k in client.scan_iter(match="chaos:*", count=500) if parse_key(k))
            finally:
                client.close()
        except (redis.RedisError, OSError) as exc:
            return [f"fault keys unknown: Redis at {url} does not answer ({exc})"]
        return [f"fault keys in Redis: {', '.join(keys)}"] if keys else []

    def _programs_left(self) -> list[str]:
        if isinstance(self.layout, ComposeStack | K8sStack):
            try:
                rows = self.layout.status()
            except (ComposeError, K8sError) as exc:
                return [f"containers unknown: {exc}"]
            bad = [
                f"{r.name} {r.state.lower()}" + (" (unhealthy)" if r.healthy is False else "")
                for r in rows
                if r.state != "RUNNING" or r.healthy is False
            ]
            return [f"containers not running: {', '.join(bad)}"] if bad else []
        try:
            layout = StackLayout.load(self.layout.run_dir)
            states = {p["name"]: p["statename"] for p in supervision.Supervisor(layout).processes()}
        except (OSError, xmlrpc.client.Fault) as exc:
            return [f"programs unknown: supervisord does not answer ({exc})"]
        left = []
        stopped = [f"{name} {state.lower()}" for name, state in states.items() if state != "RUNNING"]
        if stopped:
            left.append(f"programs not running: {', '.join(stopped)}")
        for service, before in self.replicas.items():
            want = [layout.program_name(service, r) for r in range(len(layout.replica_ports(service)))]
            have = sorted(n for n in states if n.partition("-")[0] == service)
            if len(want) != before:
                left.append(f"{service}: {len(want)} replica(s) in stack.json, {before} before the drill")
            if sorted(want) != have:
                runs = ", ".join(have) or "none"
                left.append(f"{service}: supervisord runs {runs}, stack.json says {', '.join(want)}")
        return left

    # -- helpers ---------------------------------------------------------------------

    def command_env(self) -> dict[str, str]:
        """What the runbook's commands need to find this stack (the defaults otherwise)."""
        bin_dir = str(Path(sys.executable).parent)
        target = (
            "compose"
            if isinstance(self.layout, ComposeStack)
            else "k8s"
            if isinstance(self.layout, K8sStack)
            else "native"
        )
        stats = self.loads[0].stats if self.loads else None
        ledger = {client_ledger.LEDGER_VAR: f"{stats}-ledger-{{pid}}.jsonl"} if stats else {}
        return {
            **os.environ,
            **ledger,  # the steady load's client ledger, for `chaoslab db reconcile`
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
                self._load(users=int(self.incident.extra.get("users", 40)), tags=tags, shape=shape or None, env=env)
            )
        elif kind == "stop_load":
            for extra in self.extra_loads:
                extra.stop()
        else:
            raise StepFailed(f"unknown drill action {action!r}")

    def _mark(self, step: str) -> None:
        """The start of a timed step: for the report (wall time) and its budget (monotonic)."""
        self.result.marks[step] = time.time()
        self.clock[step] = time.monotonic()

    def _poll(
        self, check: Callable[[], str | None], budget_s: float, failure: str, *, since: float | None = None
    ) -> tuple[str, float]:
        """Poll `check` until it finds something; (what it found, seconds since the start).

        One clock: the deadline is `since` (a `time.monotonic()` mark taken before the step
        that starts the clock, e.g. inject for detect) plus the budget, and the time
        returned is measured from the same mark. Without `since`, from now."""
        start = time.monotonic() if since is None else since
        while True:
            try:
                found = check()
            except PrometheusUnavailable:
                found = None
            took_s = time.monotonic() - start
            if found:
                return found, took_s
            if took_s >= budget_s:
                raise StepFailed(f"{failure} ({budget_s:.0f}s)")
            time.sleep(0.5)

    @staticmethod
    def _within_budget(what: str, took_s: float, budget_s: float) -> None:
        """The verdict holds the reported time to the budget (a late find is a failure)."""
        if took_s > budget_s:
            raise StepFailed(f"{what} after {took_s}s, over the {budget_s:.0f}s budget")

    def _load(self, *, users: int, tags: str, env: dict[str, str], shape: str | None = None) -> Load:
        """Start a locust run that writes its statistics next to the drill's log."""
        stats = self.log_dir / f"{self.incident.id}-locust-{len(self.loads)}"
        for old in stats.parent.glob(stats.name + "-ledger-*.jsonl"):
            old.unlink()  # a previous run's answers are not this drill's
        # The client ledger: one file per locust process (chaos/ledger.py resolves {pid}).
        env = {**env, client_ledger.LEDGER_VAR: f"{stats}-ledger-{{pid}}.jsonl"}
        load = Load(
            self.layout.url("gateway"),
            users=users,
            tags=tags,
            shape=shape,
            log=self.log,
            env=env,
            stats=stats,
            workers=self.workers,
        ).start()
        self.loads.append(load)
        return load

    def _judge_loads(self) -> None:
        """Once every load has stopped: locust's failures, by class, into the result."""
        found = Failures()
        for load in self.loads:
            found.merge(load.failures())
        self.result.load_failures = found.as_dict()
        if found.violations or found.expected:
            self._note(f"locust: violations {dict(found.violations)}; expected {dict(found.expected)}")

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
        # Both counts at one instant: a scrape landing between two queries "now" made
        # more orders succeed than were attempted (103 of 92 in a redis-down drill).
        at = time.time()
        window = int(at - self.result.marks["inject"]) + 1
        base = 'http_requests_total{job="gateway",route="/orders",method="POST"'
        try:
            self.result.orders_attempted = round(self.prom.value(f"sum(increase({base}}}[{window}s]))", at) or 0)
            self.result.orders_succeeded = round(
                self.prom.value(f'sum(increase({base},status="201"}}[{window}s]))', at) or 0
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


def _counts(by_message: dict[str, int]) -> str:
    """`'one key, two different order_ids' ×3, '500' ×1`: a failure table in one line."""
    return ", ".join(f"{message!r} ×{count}" for message, count in by_message.items())
