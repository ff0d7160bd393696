"""What a responder broke on the way: the penalties beyond wrong guesses.

Read from what the stack recorded: the `chaos:audit` stream (a fault set during the
game that the game master did not inject; a clear of faults the incidents did not set),
supervisord's process ids (a program whose pid changed that no incident involves) and
`chaoslab verify` with the client ledger (an order lost or doubled, a failed check).
"""

from __future__ import annotations

from chaos.gameday.scoring import Penalty
from chaos.ledger import LEDGER_CHECKS


def from_audit(entries: list[dict[str, str]], since: float, injected: set[str]) -> list[Penalty]:
    """`entries` of chaos:audit (any order); `injected`: the keys the game master set."""
    found = []
    for e in sorted(entries, key=lambda e: float(e.get("at", 0))):
        if float(e.get("at", 0)) < since or e.get("key") in injected:
            continue
        if e.get("action") == "set":
            found.append(Penalty("fault added", f"{e['key']} = {e.get('value', '')} by {e.get('who', '?')}"))
        elif e.get("action") == "clear":
            found.append(Penalty("wholesale clear", f"{e['key']} cleared by {e.get('who', '?')}, not the incident's"))
    return found


def from_pids(before: dict[str, int], after: dict[str, int], involved: set[str]) -> list[Penalty]:
    """Programs restarted (pid changed, or stopped) that no incident of the game names."""
    return [
        Penalty("needless restart", f"{name} restarted (pid {pid} -> {after.get(name) or 'none'})")
        for name, pid in sorted(before.items())
        if after.get(name) != pid and name.partition("-")[0] not in involved
    ]


def from_verify(failed: dict[str, object]) -> list[Penalty]:
    return [
        Penalty("orders lost or doubled" if name in LEDGER_CHECKS else "verify check failed", f"{name}: {examples}")
        for name, examples in sorted(failed.items())
    ]
