"""What an incident is, for the runbook and the drill alike: one definition, so the
commands the runbook prints are the commands the drill runs."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal


@dataclass(frozen=True)
class Step:
    """A shell command run as written from the repository root, or one of the drill's
    own actions (`start_load:<scenario>`, `stop_load`) that a person does by hand."""

    run: str = ""
    action: str = ""
    note: str = ""

    @property
    def text(self) -> str:
        return self.run or self.note


def sh(command: str) -> Step:
    return Step(run=command)


@dataclass(frozen=True)
class Page:
    """The SLO page that must detect an incident too, besides its own alert: `slo`'s
    fast-burn alert (prometheus/rules/slo.yml). `bad_share` is the least share of order
    requests the incident makes bad while it lasts (measured, with room): the page's
    detect budget follows from it (chaos/drills/budgets.py), since the fewer requests go
    bad, the longer the burn takes to fill the page's long window."""

    slo: str
    bad_share: float


@dataclass(frozen=True, kw_only=True)
class Incident:
    id: str
    title: str
    severity: str  # SEV1 orders fail; SEV2 degraded; SEV3 no customer impact yet
    what_happens: str
    alert: str | None  # the alert that detects it (see `detection`)
    symptoms: tuple[str, ...]
    diagnose: tuple[Step, ...]
    inject: tuple[Step, ...]
    remediate: tuple[Step, ...]
    # What the drill's rollback runs, whether or not the drill got to remediate, for an
    # inject that changes more than faults and processes (a schema version): the
    # remediation, made safe to repeat.
    undo: tuple[Step, ...] = ()
    recovered: str  # how a person knows it is over (prose; the drill checks the alert and the success rate)
    data_loss: str  # what to check for lost or doubled orders
    compose: tuple[str, ...] = ()  # the compose equivalents of the native commands above
    steady_success: float = 0.9  # order success rate that must hold before, and again after
    # How the alert detects it. "prometheus": the alert fires in Prometheus (it is silent
    # before the inject and resolved after the fix). "dead-mans-switch": the alert is
    # Watchdog, which always fires; Prometheus itself is what broke, and detection is
    # Alertmanager no longer listing Watchdog as active (it is active again once fixed).
    detection: Literal["prometheus", "dead-mans-switch"] = "prometheus"
    # The budgets follow from the stack's profile (chaos/drills/budgets.py). What an
    # incident's own mechanics add on top, in seconds (e.g. a backlog that must age past
    # its alert's threshold), and the settings of the profile table that gate recovery
    # after the fix (e.g. breaker_wait_open_s: the breaker stays open that long).
    detect_extra_s: float = 0
    recover_extra_s: float = 0
    recover_gates: tuple[str, ...] = ()
    extra: dict[str, str] = field(default_factory=dict)
    # The faults the inject step sets, as (service, fault, value): Chaos Toolkit's
    # experiments set them through PUT /chaos/config rather than the scripts.
    faults: tuple[tuple[str, str, object], ...] = ()
    # PromQL that must return a sample for the incident to count as recovered, on top
    # of the alert resolving and the success rate (e.g. the outbox drained).
    recovered_when: str = ""
    # The share of answers to POST /orders, from the inject to the recovery, that may be a
    # 5xx in the client ledger; beyond it the drill fails ("5xx storm"). Most incidents
    # turn clients away with 402, 429 or a few 503s; one whose very effect is 503s (the
    # database down) says so.
    max_5xx_share: float = 0.1
    # The SLOs (prometheus/slos.yml) whose error budget the incident spends: the runbook
    # names them, and while one of their pages fires, Alertmanager attaches the incident's
    # alerts to it (inhibition) rather than sending them on their own.
    slos: tuple[str, ...] = ()
    # The SLO page that must detect it too, within its own budget (None: the drill only
    # reports a page if one comes).
    page: Page | None = None
    # The incident loses data by design (a restore to the last archived moment): the drill
    # measures the loss against the client ledger (RPO, chaos/db/reconcile.py), holds it to
    # the WAL archive's interval, and judges the ledger on the orders that were not lost.
    measures_rpo: bool = False

    @property
    def prometheus_alert(self) -> str | None:
        """The alert that must be silent in Prometheus before the inject and resolved after
        the fix: None when detection is the dead man's switch, which always fires."""
        return self.alert if self.detection == "prometheus" else None
