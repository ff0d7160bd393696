"""The game master: a game of picked incidents under load, ended by the stack itself.

It reuses the drill engine's steps (steady state, inject, the recovery check, roll back,
verify) and leaves the remediation to the responders: an incident is over when the faults
its inject set are gone and the drill's recovery check holds. Everything happens in the
foreground; the responders reach the game through its files (chaos/gameday/journal.py).
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass

import redis

from chaos.drills.engine import StepFailed
from chaos.drills.prom import PrometheusUnavailable
from chaos.gameday import collateral, picking, secrecy, silences
from chaos.gameday.gamedrill import GameDrill, Played, running_pids
from chaos.gameday.journal import Game
from chaos.gameday.scoring import GameScore, Par, clock_start, score_game, score_incident
from chaos.layout import StackLayout
from services.common.faults.store import AUDIT_STREAM

Progress = Callable[[str], None]


@dataclass
class Settings:
    seed: int
    difficulty: str
    duration_s: float
    count: int
    responder: str | None = None
    users: int = 6
    only: tuple[str, ...] = ()


class GameMaster:
    def __init__(self, layout: StackLayout, settings: Settings, progress: Progress = lambda _l: None) -> None:
        self.layout, self.settings, self.progress = layout, settings, progress
        self.picks = picking.pick(
            settings.seed, settings.difficulty, settings.count, settings.duration_s, settings.only
        )
        self.token = secrets.token_urlsafe(24)
        self.game_id = time.strftime("%Y%m%d-%H%M%S")
        self.game = Game.create(layout.run_dir, self.game_id, self.token, self.facts())
        logs = self.game.path / "logs"
        self.played = [
            Played(p, GameDrill(layout, p.definition, log_dir=logs, users=settings.users)) for p in self.picks
        ]
        self.primary = self.played[0].drill
        self.alerts: list[dict] = []  # alert transitions seen in Prometheus
        self.firing: set[str] = set()
        self.silences: list[str] = []
        self.responder: subprocess.Popen[bytes] | None = None
        self.pids_before: dict[str, int] = {}
        self.pids_after: dict[str, int] = {}
        self.played_until = 0.0  # the end of play, before the roll back
        self.failure: str | None = None  # why the game could not go on (an inject that failed)

    def facts(self) -> dict:
        """What anyone may know of the game (the Redis key and state.json): not its incidents."""
        s = self.settings
        return {
            "game": self.game_id,
            "difficulty": s.difficulty,
            "incidents": s.count,
            "duration_s": s.duration_s,
            "started_at": round(time.time(), 3),
            "profile": self.layout.profile,
        }

    # -- the game ----------------------------------------------------------------------

    def play(self) -> dict:
        redis_client = redis.Redis.from_url(self.layout.redis_url, decode_responses=True)
        started = time.time()
        self.primary.result.started_at = started
        try:
            self.primary.start_load()
            self.progress("waiting for the steady state under load")
            self.primary.steady()
            redis_client.set(
                secrecy.GAME_KEY,
                json.dumps({**self.facts(), "master_token_sha256": secrecy.token_digest(self.token)}),
            )
            self._start_responder()
            self._loop(time.monotonic())
        except StepFailed as exc:
            self.failure = str(exc)
            self.progress(f"the game could not go on: {exc}")
        finally:
            self._stop_responder()
            self.played_until = time.time()
            for p in self.played[1:]:  # every incident's load is judged and verified with the game's
                p.drill.stop_extra_load()
                self.primary.loads += p.drill.loads
            self.pids_after = running_pids(self.layout.run_dir)
            self._unsilence()
            Game.end(self.layout.run_dir)
            redis_client.delete(secrecy.GAME_KEY)
            redis_client.close()
            self.progress("rolling back every fault and verifying")
            self.primary.finish()
        result = self.result(started)
        self.game.write("result.json", result)
        return result

    def _loop(self, origin: float) -> None:
        deadline = origin + self.settings.duration_s
        while time.monotonic() < deadline:
            now_s = time.monotonic() - origin
            for p in self.played:
                if p.injected_at is None and now_s >= p.pick.at_s:
                    self._inject(p)
            self._watch_alerts()
            for p in self.played:
                if p.injected_at is None or p.over_at is not None:
                    continue
                p.watch_keys()
                if p.detected_at is None and p.drill.detected():
                    p.detected_at = time.time()
                if p.load_due(localized=self._localized(p)):
                    self.progress(f"incident {self.played.index(p) + 1}: stopping its load, as the runbook says")
                    p.drill.stop_extra_load()
                if p.could_be_over() and p.remedied() and p.drill.recovery_holds():
                    p.over_at = time.time()
                    p.drill.stop_extra_load()  # a load the runbook leaves running (more replicas carry it)
                    self.progress(f"incident {self.played.index(p) + 1} is over")
            if all(p.over_at is not None for p in self.played):
                return
            live = sum(p.injected_at is not None and p.over_at is None for p in self.played)
            left = deadline - time.monotonic()
            self.progress(f"{now_s:.0f}s played, {left:.0f}s left; incidents live: {live}")
            time.sleep(1)
        self.progress("the duration is up")

    def _inject(self, p: Played) -> None:
        if not self.pids_before:
            self.pids_before = running_pids(self.layout.run_dir)
        if p.pick.silence:
            self._silence(p.pick.silence)
        p.keys = p.drill.inject()
        p.expires = p.drill.expiries(p.keys)
        p.injected_at = p.drill.result.marks["inject"]

    def _localized(self, p: Played) -> bool:
        """A responder has named the incident's cause since its inject."""
        return any(
            a["action"] == "diagnose"
            and a["t"] >= (p.injected_at or 0)
            and picking.diagnosis_right([p.pick.definition], a["service"], a.get("fault"))
            for a in self.game.entries("actions")
        )

    def _watch_alerts(self) -> None:
        """Record each alert's transitions (firing, resolved) as Prometheus shows them."""
        try:
            firing = self.primary.prom.firing()
        except PrometheusUnavailable:  # Prometheus down is part of some games
            return
        now = time.time()
        self.alerts += [{"t": now, "alert": a, "state": "firing"} for a in sorted(firing - self.firing)]
        self.alerts += [{"t": now, "alert": a, "state": "resolved"} for a in sorted(self.firing - firing)]
        self.firing = firing

    # -- Alertmanager silences (medium) ----------------------------------------------------

    def _silence(self, alert: str) -> None:
        url = self.layout.url("alertmanager")
        try:
            self.silences.append(silences.silence(url, alert, self.settings.duration_s + 600))
        except (OSError, ValueError, KeyError) as exc:  # the game goes on, easier than asked
            self.progress(f"could not silence {alert} in Alertmanager: {exc}")

    def _unsilence(self) -> None:
        for silence_id in self.silences:
            silences.expire(self.layout.url("alertmanager"), silence_id)

    # -- the responder program ---------------------------------------------------------

    def _start_responder(self) -> None:
        if not self.settings.responder:
            return
        env = {
            **self.primary.command_env(),
            "CHAOSLAB_RESPONDER": "responder program",
            "ALERTMANAGER_URL": self.layout.url("alertmanager"),
        }
        if "console" in self.layout.ports:  # the console's API, as a person has its page
            env["CHAOSLAB_CONSOLE_URL"] = self.layout.url("console")
        log = open(self.game.path / "responder.log", "ab")  # noqa: SIM115 - closed with the process
        self.responder = subprocess.Popen(
            self.settings.responder, shell=True, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()
        self.progress(f"responder started (pid {self.responder.pid})")

    def _stop_responder(self) -> None:
        if self.responder is None or self.responder.poll() is not None:
            return
        for sig, wait_s in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
            try:
                os.killpg(self.responder.pid, sig)
                self.responder.wait(timeout=wait_s)
                return
            except subprocess.TimeoutExpired:
                continue
            except ProcessLookupError:
                return

    # -- the result --------------------------------------------------------------------

    def result(self, started: float) -> dict:
        actions = self.game.entries("actions")
        score = self.score(actions)
        d = self.primary.result
        return {
            **self.game.read("state.json"),
            "seed": self.settings.seed,
            "responder": self.settings.responder,
            "failure": self.failure,
            "started_at": started,
            "ended_at": time.time(),
            "picks": [
                {
                    "incident": p.pick.incident,
                    "title": p.pick.definition.title,
                    "alert": p.pick.definition.alert,
                    "at_s": p.pick.at_s,
                    "silenced": p.pick.silence,
                    "injected_at": p.injected_at,
                    "detected_at": p.detected_at,
                    "over_at": p.over_at,
                    "fault_keys": sorted(p.keys),
                }
                for p in self.played
            ],
            "actions": actions,
            "commands": self.game.entries("commands"),
            "audit": self._audit(started),
            "alerts": self.alerts,
            "score": score.as_dict(),
            "verify": d.verify,
            "ledger": d.ledger,
            "orders": {"attempted": d.orders_attempted, "succeeded": d.orders_succeeded},
            "steps": [{"name": s.name, "ok": s.ok, "detail": s.detail} for s in d.steps],
            "timeline": d.timeline,
        }

    def score(self, actions: list[dict]) -> GameScore:
        incidents = []
        penalties = []
        defs = [p.pick.definition for p in self.played if p.injected_at is not None]
        for a in actions:
            if a["action"] == "diagnose" and not picking.diagnosis_right(defs, a["service"], a.get("fault")):
                guess = a["service"] + (f" {a['fault']}" if a.get("fault") else "")
                at = time.strftime("%H:%M:%S", time.localtime(a["t"]))
                penalties.append(collateral.Penalty("wrong diagnosis", f"{guess} at {at}"))
        blind = [
            (q.injected_at, q.over_at)
            for q in self.played
            if q.pick.incident == picking.BLIND and q.injected_at is not None
        ]
        for p in self.played:
            times: dict[str, float | None] = {"acknowledge": None, "detect": None, "localize": None, "mitigate": None}
            if p.injected_at is not None:
                own_blind = blind if p.pick.incident != picking.BLIND else []
                t0 = clock_start(p.injected_at, own_blind)
                later = [a for a in actions if a["t"] >= p.injected_at]
                acks = [a["t"] for a in later if a["action"] == "ack"]
                rights = [
                    a["t"]
                    for a in later
                    if a["action"] == "diagnose"
                    and picking.diagnosis_right([p.pick.definition], a["service"], a.get("fault"))
                ]
                times = {
                    "acknowledge": _since(t0, acks[0] if acks else None),
                    "detect": _since(t0, p.detected_at),
                    "localize": _since(t0, rights[0] if rights else None),
                    "mitigate": _since(t0, p.over_at),
                }
            incidents.append(score_incident(p.pick.incident, times, Par.of(p.drill.budgets, self.layout.profile)))
        first = min((p.injected_at for p in self.played if p.injected_at is not None), default=time.time())
        injected = {k for p in self.played for k in p.keys}
        audit = self._audit(first)
        penalties += collateral.from_audit(audit, first, injected)
        involved = {name for d in defs for name in picking.programs(d)}
        penalties += collateral.from_pids(self.pids_before, self.pids_after, involved)
        for p in self.played:
            penalties += collateral.from_vanished(p.gone, p.expires, audit)
        verify = self.primary.result.verify
        penalties += collateral.from_verify(verify.get("failed", {}), verify.get("ledger_violations", {}))
        return score_game(incidents, penalties)

    def _audit(self, since: float) -> list[dict[str, str]]:
        """chaos:audit from `since` to the end of play (the roll back's clears are not play)."""
        client = redis.Redis.from_url(self.layout.redis_url, socket_timeout=2, decode_responses=True)
        try:
            until = self.played_until or time.time()
            entries = client.xrange(AUDIT_STREAM, min=f"{int(since * 1000)}-0", max=f"{int(until * 1000)}-0")
        except (redis.RedisError, OSError):
            return []
        finally:
            client.close()
        return [
            {"id": str(entry_id), **{str(k): str(v) for k, v in (fields or {}).items()}}
            for entry_id, fields in entries or []
        ]


def _since(t0: float, t: float | None) -> float | None:
    """Seconds from t0 to t; what happened before the clock started took no time."""
    return None if t is None else round(max(0.0, t - t0), 1)
