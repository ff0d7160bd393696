"""The game's score, against the incident's par (docs/gameday.md states it the same way).

Four times, each from the inject: acknowledge (`chaoslab gameday ack`), detect (the
incident's alert fires), localize (the first right `diagnose`) and mitigate (the stack
holds its recovery check with the fault gone). Each earns 100 points within its par and
100 x par / time beyond it, 0 when it never happened. The incident's score is their
weighted mean (weights 1, 1, 2, 3); the game's is the mean of its incidents' scores minus
every penalty's points, floored at 0. A game is within par when every time is within its
par and no penalty was given.

The par is the automated drill's own: it detects within the detect budget
(chaos/drills/budgets.py), acts at once and recovers within the recover budget. A
responder gets a reaction allowance on top for each move (acknowledge, then localize).
An incident injected while monitoring is down is timed from monitoring's return: nobody
could see it before.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from chaos.drills.budgets import Budgets

TIMES = ("acknowledge", "detect", "localize", "mitigate")
WEIGHTS = {"acknowledge": 1, "detect": 1, "localize": 2, "mitigate": 3}
REACTION_S = {"ci": 20.0, "training": 60.0}  # one move of a responder, on top of the drill's par

# What each penalty costs; the report names every one it gives.
PENALTIES = {
    "wrong diagnosis": 10,
    "needless restart": 10,
    "fault added": 15,
    "wholesale clear": 10,
    "fault cleared outside the tools": 10,
    "orders lost or doubled": 20,
    "verify check failed": 15,
}


@dataclass(frozen=True)
class Par:
    acknowledge: float
    detect: float
    localize: float
    mitigate: float

    @classmethod
    def of(cls, budgets: Budgets, profile: str) -> Par:
        reaction = REACTION_S.get(profile, REACTION_S["training"])
        return cls(
            acknowledge=budgets.detect_s + reaction,
            detect=budgets.detect_s,
            localize=budgets.detect_s + 2 * reaction,
            mitigate=budgets.detect_s + 2 * reaction + budgets.recover_s,
        )


@dataclass(frozen=True)
class Penalty:
    kind: str
    detail: str

    @property
    def points(self) -> int:
        return PENALTIES[self.kind]


@dataclass
class IncidentScore:
    incident: str
    times: dict[str, float | None]
    par: dict[str, float]
    points: dict[str, float]
    score: float
    within_par: bool


@dataclass
class GameScore:
    incidents: list[IncidentScore]
    penalties: list[Penalty] = field(default_factory=list)
    total: float = 0.0
    within_par: bool = False

    def as_dict(self) -> dict:
        out = asdict(self)
        for penalty, entry in zip(self.penalties, out["penalties"], strict=True):
            entry["points"] = penalty.points
        return out


def clock_start(injected_at: float, blind: list[tuple[float, float | None]]) -> float:
    """When an incident's four times start: its inject, or, when monitoring was down then
    (a `blind` window: the blinding incident's inject and end), the moment it came back.
    A window that never ended leaves the inject: the incident stays unseen and scores so."""
    start = injected_at
    for down, back in sorted(blind):
        if down <= start and back is not None and back > start:
            start = back
    return start


def points(took_s: float | None, par_s: float) -> float:
    if took_s is None:
        return 0.0
    return 100.0 if took_s <= par_s else round(100.0 * par_s / took_s, 1)


def score_incident(incident: str, times: dict[str, float | None], par: Par) -> IncidentScore:
    pars = asdict(par)
    earned = {name: points(times.get(name), pars[name]) for name in TIMES}
    weighted = sum(WEIGHTS[n] * earned[n] for n in TIMES) / sum(WEIGHTS.values())
    within = all(times.get(n) is not None and times[n] <= pars[n] for n in TIMES)
    return IncidentScore(incident, {n: times.get(n) for n in TIMES}, pars, earned, round(weighted, 1), within)


def score_game(incidents: list[IncidentScore], penalties: list[Penalty]) -> GameScore:
    mean = sum(i.score for i in incidents) / len(incidents) if incidents else 0.0
    total = max(0.0, round(mean - sum(p.points for p in penalties), 1))
    within = bool(incidents) and all(i.within_par for i in incidents) and not penalties
    return GameScore(incidents, penalties, total, within)


FORMULA = (
    "points(t) = 100 if t <= par else 100 x par / t (0 if it never happened); "
    "incident = (1 x acknowledge + 1 x detect + 2 x localize + 3 x mitigate) / 7; "
    "game = max(0, mean(incidents) - sum(penalties)); penalties (orders lost or doubled: per order): "
    + ", ".join(f"{kind} -{cost}" for kind, cost in PENALTIES.items())
)
