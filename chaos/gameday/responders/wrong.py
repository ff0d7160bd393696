"""A deliberately wrong responder: before the runbook's fix, it blames an innocent
service (a wrong `diagnose`) and restarts it. Its score shows what each penalty costs.
Run by the game master: `python -m chaos.gameday.responders.wrong`.
"""

from __future__ import annotations

from chaos.drills.model import Incident
from chaos.gameday import picking
from chaos.gameday.responders.baseline import Responder, main
from chaos.layout import SERVICES


class Wrong(Responder):
    def before_fixing(self, inc: Incident) -> None:
        involved = picking.programs(inc)
        innocent = next(s for s in reversed(SERVICES) if s not in involved)
        self.gameday("diagnose", innocent)
        self.sh(f"chaoslab restart {innocent}")


if __name__ == "__main__":
    main(Wrong)
