"""The baseline responder: follows the runbook for whichever alert fires.

It sees what a person sees: Alertmanager's alerts (a silenced cause leaves only its
symptom, so it then asks Prometheus' API which catalogue alert is firing), and
Watchdog leaving Alertmanager when monitoring is down. An alert can be a consequence
(payments failing also trips the retry and latency alerts), so before it acts it
checks the runbook's cause on the dashboards' own metrics (`chaos_active` for a fault,
`up` for a stopped service) or `chaoslab status` (a stopped infrastructure program).
Then it acknowledges, names the cause (`chaoslab gameday diagnose`), runs the runbook's
remediation as written, and says `resolve` once nothing fires. Its score is the par a
human team plays against. Run by the game master:
`python -m chaos.gameday.responders.baseline`.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from chaos.drills.catalog import INCIDENTS
from chaos.drills.model import Incident
from chaos.drills.prom import Prometheus, PrometheusUnavailable
from chaos.drills.watchdog import WATCHDOG, DeadMansSwitch
from chaos.gameday import picking
from chaos.gameday.journal import Game, NoGame
from chaos.layout import SERVICES, default_run_dir

REPO = Path(__file__).resolve().parents[3]
PLAYABLE = [inc for inc in INCIDENTS if picking.playable(inc)]
BY_ALERT = {inc.alert: inc for inc in PLAYABLE if inc.detection == "prometheus"}
# Watchdog gone from Alertmanager: the runbook's `chaoslab status` tells which of these it is.
BLINDING = [inc for inc in PLAYABLE if inc.detection == "dead-mans-switch"]
# How long an alert whose cause nothing confirms must fire alone before it is acted on:
# a consequence (the retry alert of a hanging payments) often fires before its cause's.
PATIENCE_S = 30.0
BLIND = next(inc for inc in INCIDENTS if inc.id == picking.BLIND)


def alertmanager_alerts(url: str) -> set[str] | None:
    """Alerts Alertmanager shows (silenced ones not), or None when it does not answer."""
    try:
        with urllib.request.urlopen(f"{url}/api/v2/alerts?active=true&silenced=false", timeout=3) as resp:
            return {a["labels"]["alertname"] for a in json.load(resp)}
    except (urllib.error.URLError, OSError, ValueError, KeyError):
        return None


class Responder:
    def __init__(self) -> None:
        self.run_dir = default_run_dir()
        self.alertmanager = os.environ["ALERTMANAGER_URL"]
        self.prom = Prometheus(os.environ["PROMETHEUS_URL"])
        self.switch = DeadMansSwitch(self.alertmanager)
        self.acked = self.resolved = False
        self.status_answers = True  # whether `chaoslab status` gave a verdict, the last time
        self.handled: set[str] = set()  # incidents acted on
        self.fixed: set[tuple[str, str]] = set()  # their causes
        self.first_seen: dict[str, float] = {}  # incident id -> when its alert first showed

    def log(self, line: str) -> None:
        print(f"{time.strftime('%H:%M:%S')} {line}", flush=True)

    def sh(self, command: str) -> int:
        """A runbook command, as written; one that is not `chaoslab` is logged here (chaoslab logs itself)."""
        if not command.startswith("chaoslab "):
            with contextlib.suppress(NoGame):
                Game.current(self.run_dir).record("commands", command=command)
        self.log(f"$ {command}")
        return subprocess.run(command, shell=True, cwd=REPO, check=False, timeout=180).returncode

    def gameday(self, *args: str) -> None:
        self.sh(" ".join(["chaoslab", "gameday", *args]))

    def incidents(self) -> list[Incident]:
        """The incidents the alerts show, visibility first (monitoring down)."""
        shown = alertmanager_alerts(self.alertmanager)
        if shown is None:
            return []
        blinded = self.blinding() if self.switch.armed() is False else None
        found = [blinded] if blinded else []
        symptoms = shown - {WATCHDOG}
        causes = [BY_ALERT[a] for a in sorted(symptoms) if a in BY_ALERT]
        if symptoms and not causes:  # only a symptom (an SLO page): find its cause in Prometheus
            try:
                causes = [BY_ALERT[a] for a in sorted(self.prom.firing()) if a in BY_ALERT]
            except PrometheusUnavailable:
                causes = []
        now = time.monotonic()
        for inc in causes:
            self.first_seen.setdefault(inc.id, now)
        confirmed = [inc for inc in causes if self.confirmed(inc)]
        if not confirmed and not self.handled:
            # Nothing shows the cause (a fault key that expired, as when the relay stays
            # stuck): an alert that has fired a while with no other is the best evidence.
            confirmed = [inc for inc in causes if now - self.first_seen[inc.id] >= PATIENCE_S][:1]
        return found + confirmed

    def blinding(self) -> Incident | None:
        """Watchdog is gone: the incident whose runbook covers the most of the programs
        `chaoslab status` shows stopped (the fewest others on a tie): Prometheus alone is
        monitoring-down; with payments still down, multi-failure, whose runbook starts
        both at once rather than waiting for payments' alert once Prometheus is back.
        None when status shows none of them stopped (Prometheus reloading after a scale
        is no incident); monitoring-down when status gives no verdict."""
        stopped = self.stopped_programs()
        if not self.status_answers:
            return BLIND

        def fit(inc: Incident) -> tuple[int, int]:
            named = {service for service, _ in picking.causes(inc)}
            return len(named & stopped), -len(named)

        best = max(BLINDING, key=fit, default=BLIND)
        return best if fit(best)[0] else None

    def confirmed(self, inc: Incident) -> bool:
        """The runbook's cause shows: its fault active, its service's target down, or its
        infrastructure program stopped. An incident that is only load shows in its own
        alert (the traffic's metrics): nothing more to check."""
        for service, fault in picking.causes(inc):
            if fault == picking.LOAD:
                return True
            if fault == "down" and service not in SERVICES:
                if self.stopped(service):
                    return True
                continue
            query = (
                f'min(up{{job="{service}"}}) < 1'
                if fault == "down"
                else (f'max(chaos_active{{service="{service}",fault="{fault}"}}) > 0')
            )
            try:
                if self.prom.value(query) is not None:
                    return True
            except PrometheusUnavailable:
                continue
        return False

    def stopped(self, program: str) -> bool:
        """`chaoslab status` says the program is not running (a database alert may only
        mean a service's pool is held); no verdict from it, and the alert is the evidence."""
        stopped = self.stopped_programs()
        return program in stopped or (not stopped and not self.status_answers)

    def stopped_programs(self) -> set[str]:
        """The programs (by service: payments-1 is payments) `chaoslab status` shows not running."""
        out = subprocess.run(
            ["chaoslab", "status", "--json"], capture_output=True, text=True, check=False, timeout=60
        ).stdout
        try:
            rows = json.loads(out)
            self.status_answers = True
            return {row["name"].partition("-")[0] for row in rows if row["state"] != "RUNNING"}
        except (ValueError, KeyError, TypeError):
            self.status_answers = False
            return set()

    def before_fixing(self, inc: Incident) -> None:
        """What the responder does once it has seen an incident, before the runbook's fix."""

    def step(self) -> None:
        seen = [inc for inc in self.incidents() if inc.id not in self.handled]
        if seen and not self.acked:
            self.gameday("ack")
            self.acked = True
        for inc in seen:
            if picking.causes(inc) <= self.fixed:  # another alert of causes already dealt with
                self.handled.add(inc.id)
                continue
            self.log(f"incident {inc.id} (alert {inc.alert})")
            self.before_fixing(inc)
            service, fault = sorted(picking.causes(inc))[0]  # the runbook's cause
            self.gameday("diagnose", service, fault)
            for remedy in inc.remediate:
                if remedy.run:  # a drill action (stopping a load) is the game master's
                    self.sh(remedy.run)
            self.handled.add(inc.id)
            self.fixed |= picking.causes(inc)
        if self.handled and not self.resolved and not self.incidents():
            self.gameday("resolve")
            self.resolved = True

    def play(self) -> None:
        while True:
            self.step()
            time.sleep(1)


def main(responder: type[Responder] = Responder) -> None:
    try:
        responder().play()
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
