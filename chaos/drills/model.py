"""What an incident is, for the runbook and the drill alike: one definition, so the
commands the runbook prints are the commands the drill runs."""

from __future__ import annotations

from dataclasses import dataclass, field


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


@dataclass(frozen=True, kw_only=True)
class Incident:
    id: str
    title: str
    severity: str  # SEV1 orders fail; SEV2 degraded; SEV3 no customer impact yet
    what_happens: str
    alert: str | None  # the Prometheus alert that detects it; None: the drill's watchdog
    symptoms: tuple[str, ...]
    diagnose: tuple[Step, ...]
    inject: tuple[Step, ...]
    remediate: tuple[Step, ...]
    recovered: str  # how a person knows it is over (prose; the drill checks the alert and the success rate)
    data_loss: str  # what to check for lost or doubled orders
    compose: tuple[str, ...] = ()  # the compose equivalents of the native commands above
    steady_success: float = 0.9  # order success rate that must hold before, and again after
    detect_budget_s: float = 90
    recover_budget_s: float = 90
    extra: dict[str, str] = field(default_factory=dict)
    # The faults the inject step sets, as (service, fault, value): Chaos Toolkit's
    # experiments set them through PUT /chaos/config rather than the scripts.
    faults: tuple[tuple[str, str, object], ...] = ()
    # PromQL that must return a sample for the incident to count as recovered, on top
    # of the alert resolving and the success rate (e.g. the outbox drained).
    recovered_when: str = ""
