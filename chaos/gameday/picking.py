"""Which incidents a game plays, when, and how hidden: drawn from the catalogue with a
seed, so that the same seed, difficulty and count replay the same game.

easy: each incident alone, with its own alert. medium: the incident's own alert is
silenced in Alertmanager, so the responders see only the symptom (the SLO page, the
gateway's latency) and must find the cause. hard: two incidents at once, or one that
starts while monitoring is down.

An incident's load (a surge, a duplicate storm, the evening peak) is the game master's:
it starts it at the inject and stops it as the runbook's remediation says once the
responders have done their part (chaos/gameday/gamedrill.py).
"""

from __future__ import annotations

import functools
import random
import re
from dataclasses import dataclass
from pathlib import Path

from chaos.drills.catalog import BY_ID, INCIDENTS
from chaos.drills.model import Incident

DIFFICULTIES = ("easy", "medium", "hard")
BLIND = "monitoring-down"  # what a hard game may start with
# Share of an incident's slot of the game before its inject: late enough that the
# responders cannot tell when, early enough to leave them time.
INJECT_WINDOW = (0.05, 0.25)
_STOPPED = re.compile(r"^chaoslab stop (\S+)$")
_PROCESS = re.compile(r"^chaoslab (?:stop|start|restart|kill) (\S+)$")
_SCRIPT = re.compile(r"^chaos/scripts/(\w+)\.sh enable\b(.*)$")
_SCALED = re.compile(r"^chaoslab scale (\S+) \d+$")
SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"
# The drill actions a game can play: the load is the game master's to start and stop.
LOAD_ACTIONS = ("start_load", "stop_load")
LOAD = "load"  # the diagnosis that names the traffic itself as the cause
DETECTIONS = ("prometheus", "dead-mans-switch")  # what the game master watches


class GameError(ValueError):
    """A game that cannot be set up as asked (bad difficulty, count, duration)."""


def playable(inc: Incident) -> bool:
    """An incident the game master can play: detected the way it watches (an alert in
    Prometheus, or the dead man's switch), with no drill action but its load (the game
    master's own part), and a cause the responders can name."""
    steps = inc.inject + inc.remediate
    only_load = all(s.action.partition(":")[0] in LOAD_ACTIONS for s in steps if s.action)
    return only_load and inc.detection in DETECTIONS and bool(causes(inc))


def load_only(inc: Incident) -> bool:
    """The incident is nothing but its load (a surge, a storm): no fault, nothing stopped."""
    return bool(inc.inject) and all(s.action for s in inc.inject)


def causes(inc: Incident) -> set[tuple[str, str]]:
    """(service or program, fault) pairs that name the incident's cause: its faults (or,
    without them, what a runbook script of its inject sets, on whichever replica), `down` for a
    program its inject stops, and for an incident that is only load, `load` on the
    service its runbook scales (else the gateway, where the traffic comes in)."""
    found = {(service, fault) for service, fault, _ in inc.faults}
    for step in inc.inject:
        if match := _STOPPED.match(step.run):
            found.add((match.group(1), "down"))
        elif not inc.faults and (cause := script_cause(step.run)):
            found.add(cause)
    if load_only(inc):
        scaled = {m.group(1) for step in inc.remediate if (m := _SCALED.match(step.run))}
        found |= {(service, LOAD) for service in scaled or {"gateway"}}
    return found


def script_cause(command: str) -> tuple[str, str] | None:
    """(service, fault) a runbook script's `enable` sets: the script declares both
    (`chaos_fault`, `chaos_service`), and `--service` picks another service."""
    match = _SCRIPT.match(command)
    if not match:
        return None
    declared = _declared(match.group(1))
    if declared is None:
        return None
    chosen = re.search(r"--service (\S+)", match.group(2))
    return (chosen.group(1) if chosen else declared[0]), declared[1]


@functools.cache
def _declared(script: str) -> tuple[str, str] | None:
    try:
        text = (SCRIPTS / f"{script}.sh").read_text()
    except OSError:
        return None
    fault = re.search(r"^chaos_fault (\w+)", text, re.M)
    service = re.search(r"^chaos_service (\w+)", text, re.M)
    return (service.group(1), fault.group(1)) if fault and service else None


def programs(inc: Incident) -> set[str]:
    """The services and programs an incident involves: its causes', and those its runbook
    stops, starts or restarts (restarting them is no collateral)."""
    named = {m.group(1) for step in inc.inject + inc.remediate if (m := _PROCESS.match(step.run))}
    return named | {service for service, _ in causes(inc)}


def pool(difficulty: str) -> list[Incident]:
    if difficulty not in DIFFICULTIES:
        raise GameError(f"difficulty must be one of {', '.join(DIFFICULTIES)}, not {difficulty!r}")
    found = [inc for inc in INCIDENTS if playable(inc)]
    if difficulty == "medium":  # a cause that shows as a customer symptom first, behind an alert to silence
        found = [inc for inc in found if inc.slos and inc.detection == "prometheus"]
    return found


@dataclass(frozen=True)
class Pick:
    incident: str
    at_s: float  # seconds after the game's steady state holds
    silence: str | None = None  # the alert Alertmanager keeps quiet (medium)

    @property
    def definition(self) -> Incident:
        return BY_ID[self.incident]


def pick(seed: int, difficulty: str, count: int, duration_s: float, only: tuple[str, ...] = ()) -> list[Pick]:
    """`count` incidents, one per equal slot of the game, each injected at a seeded moment
    early in its slot; hard adds a second incident, or monitoring down, to each. `only`
    narrows the draw to those incidents (the trainer's choice)."""
    candidates = pool(difficulty)
    unknown = [i for i in only if i not in {c.id for c in candidates}]
    if unknown:
        names = ", ".join(c.id for c in candidates)
        raise GameError(f"not playable at {difficulty}: {', '.join(unknown)}; choose among {names}")
    if only:
        candidates = [c for c in candidates if c.id in only]
    if not 1 <= count <= len(candidates):
        raise GameError(f"--incidents must be between 1 and {len(candidates)} for {difficulty}, not {count}")
    if duration_s < 60:
        raise GameError(f"--duration must be at least 1m, not {duration_s:.0f}s")
    rng = random.Random(f"{seed}:{difficulty}:{count}")
    chosen = rng.sample(candidates, count)
    slot = duration_s / count
    picks: list[Pick] = []
    for i, inc in enumerate(chosen):
        at_s = round(slot * (i + rng.uniform(*INJECT_WINDOW)), 1)
        picks.append(Pick(inc.id, at_s, inc.alert if difficulty == "medium" else None))
        if difficulty == "hard":
            others = [c for c in candidates if c not in chosen and not causes(c) & causes(inc)]
            # An incident that already takes monitoring down comes with another one instead.
            blind_ok = not causes(inc) & causes(BY_ID[BLIND])
            if others and (not blind_ok or rng.random() < 0.5):
                picks.append(Pick(rng.choice(others).id, at_s))
            elif blind_ok:
                picks.insert(len(picks) - 1, Pick(BLIND, at_s))
    return picks


def diagnosis_right(incidents: list[Incident], service: str, fault: str | None) -> bool:
    """Whether `service` (and `fault`, when given) names the cause of one of `incidents`."""
    return any(s == service and fault in (None, f) for inc in incidents for s, f in causes(inc))
