"""`chaoslab monkey`: kill -9 random programs of the stack under load, then hold it to account.

A seeded schedule picks one program per interval (the services, and with
`include_infra` PostgreSQL and Redis too); each is killed with SIGKILL by its own pid
(supervisord's, or the container's main process in compose), as a crash would, and the
stack's own supervision starts it again. locust shoppers place orders with fresh keys
the whole time and write every answer to a client ledger (`chaos/ledger.py`). When the
time is up the load stops; the monkey waits (within a bound) for every program to be
back and healthy, for reads to answer again and for `chaoslab verify` to come clean,
then holds the ledger against the database: every order a client was told about
exists as it was told, no key has two orders, no repeat was answered differently.

Nothing outside the stack is touched: kills go to the pids the stack's supervisor
names, and every address is the stack's own loopback one.
"""

from __future__ import annotations

import html
import json
import os
import random
import re
import signal
import time
import xmlrpc.client
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx

from chaos import runner, supervision
from chaos import verify as verifier
from chaos.compose import ComposeError, ComposeStack
from chaos.drills.engine import STEADY_LOAD
from chaos.drills.load import Load
from chaos.layout import SERVICES, StackLayout
from chaos.ledger import LEDGER_VAR

Stack = StackLayout | ComposeStack
INFRA_TARGETS = ("postgres", "redis")
LEDGER_FILE = "ledger.jsonl"
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
# How long locust may take to send its first order: its imports alone take seconds, and
# many more on a busy 2-core machine.
LOAD_START_S = 90.0


class MonkeyError(ValueError):
    """A setting the monkey cannot use; the message says which and why, in one line."""


# --- settings -------------------------------------------------------------------------------

_DURATION = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*(ms|s|m|min|h)?\s*$")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0, None: 1.0}


def parse_duration(text: str, option: str) -> float:
    """'5s', '2m', '500ms', '1.5' (seconds) as seconds; anything else is a MonkeyError."""
    match = _DURATION.match(text or "")
    if not match:
        raise MonkeyError(f"{option} takes a time such as 5s, 500ms or 2m, not {text!r}")
    return float(match.group(1)) * _UNIT_S[match.group(2)]


def parse_targets(text: str, include_infra: bool) -> tuple[str, ...]:
    """The programs the monkey may kill: services named in `text` (comma-separated), plus
    PostgreSQL and Redis with `include_infra`."""
    names = [n.strip() for n in (text or "").split(",") if n.strip()]
    if not names:
        raise MonkeyError(f"--targets names at least one of {', '.join(SERVICES)}")
    for name in names:
        if name in INFRA_TARGETS:
            raise MonkeyError(f"--targets takes services; {name} is killed with --include-infra")
        if name not in SERVICES:
            raise MonkeyError(f"unknown target {name!r}: targets are {', '.join(SERVICES)}")
    chosen = tuple(dict.fromkeys(names))
    return chosen + INFRA_TARGETS if include_infra else chosen


@dataclass(frozen=True)
class Options:
    interval_s: float = 5.0
    duration_s: float = 120.0
    users: int = 16
    targets: tuple[str, ...] = SERVICES
    seed: int = 0
    recovery_s: float = 0.0  # 0: from the profile (recovery_budget_s)

    def check(self) -> Options:
        if not 0.5 <= self.interval_s <= 3600:
            raise MonkeyError(f"--interval must be between 0.5s and 1h, not {self.interval_s:g}s")
        if not self.interval_s < self.duration_s <= 6 * 3600:
            raise MonkeyError(
                f"--duration must be longer than --interval ({self.interval_s:g}s) and at most 6h, "
                f"not {self.duration_s:g}s"
            )
        if not 1 <= self.users <= 500:
            raise MonkeyError(f"--users must be between 1 and 500, not {self.users}")
        if self.recovery_s < 0:
            raise MonkeyError(f"--recovery must not be negative, not {self.recovery_s:g}s")
        return self


def recovery_budget_s(profile: str) -> float:
    """How long the monkey waits, after the last kill, for health, reads and a clean verify:
    twice verify's grace (a crashed order's lease, two sweeper passes), at least a minute."""
    return max(60.0, 2 * verifier.default_grace_s(profile))


# --- the schedule ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Planned:
    at_s: float  # seconds after the load's first answer
    program: str


def schedule(seed: int, programs: Sequence[str], interval_s: float, duration_s: float) -> list[Planned]:
    """One kill every `interval_s` while the run lasts (never at its very end), each of a
    program drawn from `programs` by a generator seeded with `seed`: the same seed, programs
    and times give the same kills, so a run can be replayed."""
    if not programs:
        raise MonkeyError("nothing to kill: no target programs")
    rng = random.Random(seed)
    count = int((duration_s - 1e-9) // interval_s)
    return [Planned(round(k * interval_s, 3), rng.choice(list(programs))) for k in range(1, count + 1)]


def programs_of(stack: Stack, targets: Sequence[str]) -> list[str]:
    """The programs the targets name: natively every replica of a service (payments,
    payments-1 ...), in compose the service's one container."""
    if isinstance(stack, ComposeStack):
        return list(targets)
    out: list[str] = []
    for target in targets:
        if target in SERVICES:
            out += [stack.program_name(target, r) for r in range(len(stack.replica_ports(target)))]
        else:
            out.append(target)
    return out


def check_loopback(stack: Stack) -> None:
    """The monkey only talks to the stack's own loopback addresses."""
    for name in ("gateway",):
        host = urlsplit(stack.url(name)).hostname or ""
        if host not in LOOPBACK:
            raise MonkeyError(f"{name} is at {stack.url(name)}: the monkey only works against 127.0.0.1")
    host = urlsplit(stack.database_url).hostname or ""
    if host not in LOOPBACK:
        raise MonkeyError(f"the database is at {host}: the monkey only works against 127.0.0.1")


# --- kills ----------------------------------------------------------------------------------


class NotRunning(Exception):
    """The program has no process to kill right now (still restarting from a kill)."""


def kill(stack: Stack, program: str) -> int:
    """SIGKILL one program of this stack by the pid its supervisor names; returns the pid.

    Natively only a RUNNING program is killed: one still STARTING after its last kill is
    skipped, since killing it again there would count as a failed start, and supervisord
    gives a program up after a few of those (FATAL) - a crash loop, not a crash."""
    if isinstance(stack, ComposeStack):
        try:
            return stack.kill(program)
        except ComposeError as exc:
            if "not running" in str(exc):
                raise NotRunning(str(exc)) from exc
            raise
    info = supervision.Supervisor(stack).process(program)
    pid = int(info.get("pid") or 0)
    if info.get("statename") != "RUNNING" or pid <= 1:
        raise NotRunning(f"{program} is {str(info.get('statename', '?')).lower()}")
    if pid == os.getpid():  # never ourselves, whatever the supervisor says
        raise NotRunning(f"{program} names our own pid")
    os.kill(pid, signal.SIGKILL)
    return pid


@dataclass
class Kill:
    at_s: float  # when it happened, seconds after the run started
    planned_s: float  # when it was due: the load's first answer, plus its schedule
    program: str
    pid: int | None
    killed: bool
    detail: str = ""


# --- what the load was answered (the ledger, read as it grows) -----------------------------


class LedgerTail:
    """Reads the ledger file as locust appends to it: answers by status, per second."""

    def __init__(self, path: Path, started: float) -> None:
        self.path, self.started = path, started
        self.offset = 0
        self.by_status: Counter[int] = Counter()
        self.per_second: dict[int, Counter[int]] = {}
        self.keys: set[str] = set()
        self.accepted: set[str] = set()

    def poll(self) -> None:
        try:
            with self.path.open("rb") as f:
                f.seek(self.offset)
                chunk = f.read()
        except FileNotFoundError:
            return
        end = chunk.rfind(b"\n")
        if end < 0:
            return
        self.offset += end + 1
        for line in chunk[: end + 1].splitlines():
            try:
                entry = json.loads(line)
                status, t, key = int(entry["status"]), float(entry["t"]), str(entry["key"])
            except (ValueError, KeyError, TypeError):
                continue
            self.by_status[status] += 1
            self.per_second.setdefault(int(t - self.started), Counter())[status] += 1
            self.keys.add(key)
            if 200 <= status < 300:
                self.accepted.add(key)


# --- the run --------------------------------------------------------------------------------


@dataclass
class Recovery:
    kills_ended_s: float | None = None  # when the load stopped (seconds after the run started)
    healthy_after_s: float | None = None  # every program RUNNING and healthy, after the kills ended
    reads_ok_after_s: float | None = None  # GET /orders answered 200 again (and stayed so)
    verify_clean_after_s: float | None = None
    reads_refused_while_healthy_s: float = 0.0  # reads not 200 although every /health was 200
    # (s after the run started, status, error code): GET /orders through the gateway, every 0.5 s
    read_probes: list[tuple[float, int, str]] = field(default_factory=list)
    refusals: dict[str, int] = field(default_factory=dict)  # "503 breaker_open": probes answered so


@dataclass
class Result:
    target: str
    profile: str
    seed: int
    interval_s: float
    duration_s: float
    users: int
    targets: list[str]
    recovery_budget_s: float
    started_at: float = 0.0
    load_start_s: float | None = None  # how long locust took to send its first order
    wall_s: float = 0.0
    phase: str = "starting"
    interrupted: bool = False
    kills: list[Kill] = field(default_factory=list)
    planned: list[Planned] = field(default_factory=list)
    answers_by_status: dict[str, int] = field(default_factory=dict)
    per_second: dict[str, dict[str, int]] = field(default_factory=dict)  # second -> status -> answers
    orders: dict[str, int] = field(default_factory=dict)  # attempted, accepted, found, doubled
    recovery: Recovery = field(default_factory=Recovery)
    verify: dict[str, Any] = field(default_factory=dict)
    ledger: dict[str, Any] = field(default_factory=dict)
    programs: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.interrupted and not self.problems and self.phase == "done"

    @property
    def verdict(self) -> str:
        return "interrupted" if self.interrupted else "clean" if self.ok else "FAILED"

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.update(ok=self.ok, verdict=self.verdict, kills_done=sum(k.killed for k in self.kills))
        return data


Progress = Callable[[Result, LedgerTail], None]


class Monkey:
    def __init__(
        self,
        stack: Stack,
        options: Options,
        *,
        report_dir: Path,
        progress: Progress = lambda _r, _t: None,
    ) -> None:
        check_loopback(stack)
        self.stack, self.options, self.progress = stack, options.check(), progress
        self.report_dir = report_dir
        self.budget_s = options.recovery_s or recovery_budget_s(stack.profile)
        self.result = Result(
            target="compose" if isinstance(stack, ComposeStack) else "native",
            profile=stack.profile,
            seed=options.seed,
            interval_s=options.interval_s,
            duration_s=options.duration_s,
            users=options.users,
            targets=list(options.targets),
            recovery_budget_s=self.budget_s,
        )
        self.result.planned = schedule(
            options.seed, programs_of(stack, options.targets), options.interval_s, options.duration_s
        )
        self.ledger_path = report_dir / LEDGER_FILE
        self.started = time.time()
        self.tail = LedgerTail(self.ledger_path, self.started)
        self.load: Load | None = None

    def now_s(self) -> float:
        return time.time() - self.started

    def run(self) -> Result:
        """The whole run; Ctrl-C stops the load and returns what was seen so far."""
        self.report_dir.mkdir(parents=True, exist_ok=True)
        self.ledger_path.unlink(missing_ok=True)  # the ledger appends: start from nothing
        self.started = time.time()
        self.tail = LedgerTail(self.ledger_path, self.started)
        self.result.started_at = self.started
        try:
            self._chaos()
            self._recover()
            self.result.phase = "done"
        except KeyboardInterrupt:
            self.result.interrupted = True
            self.result.problems.append(f"interrupted (Ctrl-C) while {self.result.phase}")
        finally:
            if self.load is not None:
                self.load.stop()
            self._tally()
            self.result.wall_s = round(self.now_s(), 1)
        return self.result

    # -- phase 1: load and kills ----------------------------------------------------------

    def _chaos(self) -> None:
        options = self.options
        env = {**STEADY_LOAD, LEDGER_VAR: str(self.ledger_path)}
        self.load = Load(
            self.stack.url("gateway"),
            users=options.users,
            tags="shop",
            max_s=LOAD_START_S + options.duration_s + 30,  # stops by itself even if we do not stop it
            log=self.report_dir / "locust.log",
            env=env,
        ).start()
        if self._await_load():
            self.result.phase = "killing"
            for planned in self.result.planned:
                self._wait_until(self.clock_s + planned.at_s)
                self._kill(planned)
            self._wait_until(self.clock_s + options.duration_s)
        if not self.load.running() and self.load.proc is not None and self.load.proc.returncode not in (0, None):
            self.result.problems.append(
                f"locust exited {self.load.proc.returncode} before the end (see {self.report_dir / 'locust.log'})"
            )
        self.load.stop()
        self.result.recovery.kills_ended_s = round(self.now_s(), 1)

    def _await_load(self) -> bool:
        """Wait for the load's first answer: the schedule counts from there, since kills
        before any order is in flight would prove nothing, and a locust slower to start
        than the run lasts would see none. False (and a problem) if no answer came in time."""
        self.result.phase = "starting load"
        deadline = time.monotonic() + LOAD_START_S
        while not self.tail.by_status:
            if self.load is None or not self.load.running() or time.monotonic() > deadline:
                self.result.problems.append(
                    f"locust sent no order within {LOAD_START_S:.0f}s of starting: no kill was made "
                    f"(see {self.report_dir / 'locust.log'})"
                )
                return False
            self._tick()
            time.sleep(0.25)
        self.result.load_start_s = round(self.now_s(), 1)
        return True

    @property
    def clock_s(self) -> float:
        """When the schedule's second 0 fell: the load's first answer."""
        return self.result.load_start_s or 0.0

    def _wait_until(self, at_s: float) -> None:
        while (left := at_s - self.now_s()) > 0:
            self._tick()
            time.sleep(min(0.25, left))

    def _kill(self, planned: Planned) -> None:
        at, due = round(self.now_s(), 2), round(self.clock_s + planned.at_s, 2)
        try:
            pid = kill(self.stack, planned.program)
            self.result.kills.append(Kill(at, due, planned.program, pid, True))
        except NotRunning as exc:
            self.result.kills.append(Kill(at, due, planned.program, None, False, f"skipped: {exc}"))
        except (OSError, ComposeError, xmlrpc.client.Fault) as exc:
            self.result.kills.append(Kill(at, due, planned.program, None, False, f"failed: {exc}"))
        self._tick()

    def _tick(self) -> None:
        self.tail.poll()
        self.progress(self.result, self.tail)

    # -- phase 2: back to health, reads, verify and the ledger -----------------------------

    def _recover(self) -> None:
        """Poll until every program is back and healthy, reads answer 200 again and verify
        is clean (nothing in flight spared), or until the recovery budget runs out."""
        rec = self.result.recovery
        ended = rec.kills_ended_s if rec.kills_ended_s is not None else self.now_s()
        deadline = time.monotonic() + self.budget_s
        next_verify = 0.0
        report: verifier.Report | None = None
        healthy_at: float | None = None  # start of the current healthy streak
        reads_at: float | None = None  # start of the current streak of 200s
        self.result.phase = "recovering"
        with httpx.Client(timeout=5, headers={"X-Client-ID": "chaoslab-monkey"}) as client:
            while True:
                self._tick()
                healthy = self._programs_healthy()
                status, code = self._probe(client)
                t = round(self.now_s(), 1)
                rec.read_probes.append((t, status, code))
                if status != 200:
                    answer = f"{status} {code}".strip() if status else "no answer"
                    rec.refusals[answer] = rec.refusals.get(answer, 0) + 1
                healthy_at = (healthy_at if healthy_at is not None else t) if healthy else None
                reads_at = (reads_at if reads_at is not None else t) if status == 200 else None
                rec.healthy_after_s = None if healthy_at is None else round(healthy_at - ended, 1)
                rec.reads_ok_after_s = None if reads_at is None else round(reads_at - ended, 1)
                if healthy_at is not None:
                    refused = (reads_at if reads_at is not None else t) - healthy_at
                    rec.reads_refused_while_healthy_s = max(rec.reads_refused_while_healthy_s, round(refused, 1))
                if healthy and time.monotonic() >= next_verify:
                    self.result.phase = "verifying"
                    report = self._verify()
                    next_verify = time.monotonic() + 2
                    if report is not None and not self._db_failures(report) and reads_at is not None:
                        rec.verify_clean_after_s = round(self.now_s() - ended, 1)
                        break
                if time.monotonic() >= deadline:
                    break
                time.sleep(0.5)
        self._judge(report)

    def _programs_healthy(self) -> bool:
        try:
            rows = self.stack.status() if isinstance(self.stack, ComposeStack) else runner.status(self.stack)
        except (runner.StackError, ComposeError, OSError, xmlrpc.client.Fault) as exc:
            self.result.programs = [{"name": "supervisor", "state": f"unreachable: {exc}", "healthy": False}]
            return False
        self.result.programs = [
            {"name": r.name, "state": r.state, "pid": r.pid, "healthy": r.state == "RUNNING" and r.healthy is not False}
            for r in rows
        ]
        return all(p["healthy"] for p in self.result.programs)

    def _probe(self, client: httpx.Client) -> tuple[int, str]:
        """One read through the gateway, as a shopper makes it: its status (0 for no answer)
        and the error's code when it is refused (breaker_open, downstream_unreachable ...)."""
        try:
            resp = client.get(self.stack.url("gateway") + "/orders", params={"limit": 1})
        except httpx.HTTPError:
            return 0, ""
        if resp.status_code == 200:
            return 200, ""
        try:
            error = resp.json().get("error", {})
            return resp.status_code, str(error.get("code", "")) if isinstance(error, dict) else ""
        except ValueError:
            return resp.status_code, ""

    def _verify(self) -> verifier.Report | None:
        files = [self.ledger_path] if self.ledger_path.exists() else []
        try:
            return verifier.verify_report(self.stack.database_url, 0, files)
        except Exception as exc:  # noqa: BLE001 - PostgreSQL may be restarting: try again
            self.result.verify = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
            return None

    @staticmethod
    def _db_failures(report: verifier.Report) -> list[verifier.Check]:
        return [c for c in report.failed if not c.name.startswith("ledger_")]

    def _judge(self, report: verifier.Report | None) -> None:
        rec = self.result.recovery
        problems = self.result.problems
        if rec.healthy_after_s is None:
            down = [p["name"] for p in self.result.programs if not p["healthy"]]
            problems.append(f"not every program back and healthy after {self.budget_s:.0f}s: {', '.join(down)}")
        if rec.reads_ok_after_s is None:
            problems.append(f"reads still refused after {self.budget_s:.0f}s")
        if report is None:
            problems.append(f"verify could not read the database: {self.result.verify.get('error', 'no answer')}")
            return
        db_failed = self._db_failures(report)
        ledger_failed = [c for c in report.failed if c.name.startswith("ledger_")]
        self.result.verify = {
            "ok": not db_failed,
            "orders": report.counts,
            "checks": {c.name: {"ok": c.ok, "violations": c.count, "examples": c.examples} for c in report.checks},
        }
        ledger_checks = {c.name: c for c in report.checks if c.name.startswith("ledger_")}
        self.result.ledger = {
            "ok": bool(ledger_checks) and not ledger_failed,
            "file": str(self.ledger_path),
            "summary": report.ledger.as_dict() if report.ledger else None,
            "checks": {
                n: {"ok": c.ok, "violations": c.count, "examples": c.examples} for n, c in ledger_checks.items()
            },
        }
        for c in db_failed:
            problems.append(f"verify: {c.name}: {c.count} violation(s), e.g. {'; '.join(c.examples[:2])}")
        if not ledger_checks:
            problems.append("no client ledger was written: the load recorded no answer")
        for c in ledger_failed:
            problems.append(f"ledger: {c.name}: {c.count} violation(s), e.g. {'; '.join(c.examples[:2])}")
        self.tail.poll()
        mismatched = ledger_checks["ledger_answers_match_orders"].count if ledger_checks else 0
        accepted = len(self.tail.accepted)
        self.result.orders.update(
            found=max(0, accepted - mismatched) if ledger_checks else 0,
            doubled=ledger_checks["ledger_one_order_per_key"].count if ledger_checks else 0,
        )

    def _tally(self) -> None:
        self.tail.poll()
        self.result.answers_by_status = {str(s): n for s, n in sorted(self.tail.by_status.items())}
        self.result.per_second = {
            str(sec): {str(s): n for s, n in sorted(c.items())} for sec, c in sorted(self.tail.per_second.items())
        }
        self.result.orders = {
            "attempted": len(self.tail.keys),
            "accepted": len(self.tail.accepted),
            **{k: v for k, v in self.result.orders.items() if k in ("found", "doubled")},
        }


# --- the report -----------------------------------------------------------------------------


def write_report(result: Result, directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "report.json").write_text(json.dumps(result.as_dict(), indent=2))
    (directory / "index.html").write_text(page(result))


COLOURS = {"2": "#16a34a", "4": "#d97706", "5": "#dc2626", "0": "#6b7280"}
W, H, PAD_L, PAD_R, PAD_T, PAD_B = 900, 260, 40, 20, 60, 30


def timeline_svg(result: Result) -> str:
    """Answers per second by status, with each kill and each recovery moment marked."""
    rec = result.recovery
    end = max([result.duration_s, result.wall_s, *[float(s) + 1 for s in result.per_second]])
    statuses = sorted({s for counts in result.per_second.values() for s in counts}, key=int)
    top = max([n for counts in result.per_second.values() for n in counts.values()] + [1])
    x = lambda t: PAD_L + t / max(end, 1) * (W - PAD_L - PAD_R)  # noqa: E731
    y = lambda v: H - PAD_B - v / top * (H - PAD_T - PAD_B)  # noqa: E731
    parts = [
        f'<svg width="{W}" height="{H}" role="img" aria-label="answers per second by status, kills marked">',
        f'<line x1="{PAD_L}" y1="{H - PAD_B}" x2="{W - PAD_R}" y2="{H - PAD_B}" stroke="#999"/>',
        f'<text x="2" y="{PAD_T}" font-size="10">{top}/s</text>',
        f'<text x="{W - PAD_R - 60}" y="{H - 5}" font-size="10">{end:.0f} s</text>',
    ]
    for kill in result.kills:
        kx = x(kill.at_s)
        colour = "#dc2626" if kill.killed else "#9ca3af"
        parts.append(
            f'<line x1="{kx:.1f}" y1="{PAD_T - 4}" x2="{kx:.1f}" y2="{H - PAD_B}" stroke="{colour}" '
            f'stroke-dasharray="3 3"><title>{kill.at_s:.1f}s kill -9 {html.escape(kill.program)} '
            f"{html.escape(kill.detail)}</title></line>"
            f'<text transform="translate({kx + 3:.1f},{PAD_T - 6}) rotate(-60)" font-size="9" '
            f'fill="{colour}">{html.escape(kill.program)}</text>'
        )
    ended = rec.kills_ended_s
    marks = {"kills end": ended}
    if ended is not None:
        for label, after in (("healthy", rec.healthy_after_s), ("reads 200", rec.reads_ok_after_s)):
            marks[label] = None if after is None else ended + after
    for i, (label, at) in enumerate(marks.items()):
        if at is None:
            continue
        mx = x(at)
        parts.append(
            f'<line x1="{mx:.1f}" y1="{PAD_T}" x2="{mx:.1f}" y2="{H - PAD_B}" stroke="#2563eb"/>'
            f'<text x="{mx + 2:.1f}" y="{H - PAD_B - 4 - 11 * i}" font-size="10" fill="#2563eb">{label}</text>'
        )
    for n, status in enumerate(statuses):
        points = " ".join(
            f"{x(sec + 0.5):.1f},{y(result.per_second.get(str(sec), {}).get(status, 0)):.1f}" for sec in range(int(end))
        )
        colour = COLOURS.get(status[0], "#7c3aed")
        dash = ' stroke-dasharray="6 2"' if status not in ("201", "0") and status[0] in "245" else ""
        parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="1.4"{dash} points="{points}"/>')
        parts.append(
            f'<text x="{PAD_L + 70 * n}" y="12" font-size="11" fill="{colour}">'
            f"{'no answer' if status == '0' else status}</text>"
        )
    return "".join(parts) + "</svg>"


def page(result: Result) -> str:
    rec = result.recovery
    verdict = result.verdict
    kills = "".join(
        f"<tr><td>{k.at_s:.1f}</td><td>{html.escape(k.program)}</td><td>{k.pid or '-'}</td>"
        f"<td>{'killed' if k.killed else html.escape(k.detail)}</td></tr>"
        for k in result.kills
    )

    def checks(section: dict[str, Any]) -> str:
        return "".join(
            f"<tr><td>{html.escape(name)}</td><td class='{'passed' if c['ok'] else 'FAILED'}'>"
            f"{'ok' if c['ok'] else str(c['violations']) + ' violation(s)'}</td>"
            f"<td>{html.escape('; '.join(c['examples']))}</td></tr>"
            for name, c in section.get("checks", {}).items()
        )

    orders = result.orders
    summary = (result.ledger.get("summary") or {}) if result.ledger else {}
    problems = "".join(f"<li>{html.escape(p)}</li>" for p in result.problems) or "<li>none</li>"
    fmt = lambda v: "-" if v is None else f"{v} s"  # noqa: E731
    answers = ", ".join(f"{s}: {n}" for s, n in result.answers_by_status.items()) or "none"
    refusals = ", ".join(f"{answer}: {n}" for answer, n in rec.refusals.items()) or "none"
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>chaoslab monkey</title>
<style>body{{font-family:sans-serif;margin:2em}} table{{border-collapse:collapse;margin:1em 0}}
td,th{{border:1px solid #ddd;padding:4px 8px;text-align:left}} .passed,.clean{{color:#16a34a}}
.FAILED,.interrupted{{color:#dc2626;font-weight:bold}}</style></head><body>
<h1>chaoslab monkey: <span class="{verdict}">{verdict}</span></h1>
<p>{result.target} stack, {result.profile} profile. A kill -9 every {result.interval_s:g} s for
{result.duration_s:g} s among {html.escape(", ".join(result.targets))}, seed {result.seed}
(<code>--seed {result.seed}</code> replays it), {result.users} shoppers. Wall time {result.wall_s:.0f} s,
started {time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(result.started_at))}.</p>
<h2>Problems</h2><ul>{problems}</ul>{"".join(f"<p>Note: {html.escape(n)}</p>" for n in result.notes)}
<h2>Orders</h2>
<table><tr><th>attempted (keys)</th><th>accepted (2xx)</th><th>found as answered</th><th>doubled</th>
<th>answers</th><th>ledger lines skipped</th></tr>
<tr><td>{orders.get("attempted", "-")}</td><td>{orders.get("accepted", "-")}</td><td>{orders.get("found", "-")}</td>
<td>{orders.get("doubled", "-")}</td><td>{html.escape(answers)}</td><td>{summary.get("skipped_lines", "-")}</td></tr>
</table>
<h2>Timeline: POST /orders answers per second, by status</h2>
{timeline_svg(result)}
<h2>Kills ({sum(k.killed for k in result.kills)} of {len(result.kills)} done)</h2>
<table><tr><th>at (s)</th><th>program</th><th>pid</th><th>result</th></tr>{kills}</table>
<h2>Recovery (after the kills ended, budget {result.recovery_budget_s:.0f} s)</h2>
<table><tr><th>every program healthy</th><th>reads answer 200</th><th>reads refused while every /health was 200</th>
<th>verify clean</th></tr><tr><td>{fmt(rec.healthy_after_s)}</td><td>{fmt(rec.reads_ok_after_s)}</td>
<td>{rec.reads_refused_while_healthy_s} s</td><td>{fmt(rec.verify_clean_after_s)}</td></tr></table>
<p>Reads refused after the kills ended (GET /orders every 0.5 s): {html.escape(refusals)}.</p>
<h2>verify</h2><table><tr><th>check</th><th>result</th><th>examples</th></tr>{checks(result.verify)}</table>
<h2>client ledger</h2><table><tr><th>check</th><th>result</th><th>examples</th></tr>{checks(result.ledger)}</table>
</body></html>"""
