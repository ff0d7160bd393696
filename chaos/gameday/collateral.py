"""What a responder broke on the way: the penalties beyond wrong guesses.

Read from what the stack recorded: the `chaos:audit` stream (a fault set during the
game that the game master did not inject; a clear of faults the incidents did not set;
an injected fault that vanished before its TTL with no clear audited, so deleted by hand
in Redis), supervisord's process ids (a program whose pid changed that no incident
involves) and `chaoslab verify` with the client ledger (each order lost or doubled, a
failed check).
"""

from __future__ import annotations

import re
import time

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


# How far apart the game's clock and the audit's or the TTL's may be (the key is seen
# gone at the game master's next poll, a second or so after it went).
SLACK_S = 2.0


def from_vanished(
    gone: dict[str, float], expires: dict[str, float | None], entries: list[dict[str, str]]
) -> list[Penalty]:
    """Injected keys seen gone (`gone`: key -> when) before their TTL ended (`expires`)
    with no `clear` of them in chaos:audit (`entries`): deleted outside the tools, which
    audit every clear (a `redis-cli DEL` by hand, a FLUSHALL)."""
    found = []
    for key, gone_at in sorted(gone.items(), key=lambda kv: kv[1]):
        cleared = any(
            e.get("action") == "clear" and e.get("key") == key and float(e.get("at", 0)) <= gone_at + SLACK_S
            for e in entries
        )
        ends = expires.get(key)
        if cleared or (ends is not None and gone_at >= ends - SLACK_S):
            continue
        at = time.strftime("%H:%M:%S", time.localtime(gone_at))
        found.append(Penalty("fault cleared outside the tools", f"{key} gone by {at}, no clear in chaos:audit"))
    return found


def from_pids(before: dict[str, int], after: dict[str, int], involved: set[str]) -> list[Penalty]:
    """Programs restarted (pid changed, or stopped) that no incident of the game names."""
    return [
        Penalty("needless restart", f"{name} restarted (pid {pid} -> {after.get(name) or 'none'})")
        for name, pid in sorted(before.items())
        if after.get(name) != pid and name.partition("-")[0] not in involved
    ]


_KEY = re.compile(r"^key (\S+):")


def from_verify(failed: dict[str, object], ledger_violations: dict[str, list[str]]) -> list[Penalty]:
    """One penalty per order the client ledger finds lost or doubled (`ledger_violations`:
    every line of its failed checks, each naming a client's key, one order), one per other
    failed check of `failed` (verify's checks, with their examples)."""
    orders: dict[str, str] = {}
    for name, lines in sorted(ledger_violations.items()):
        for line in lines:
            key = m.group(1) if (m := _KEY.match(line)) else line
            orders.setdefault(key, f"{name}: {line}")
    ledger_failed = sorted(name for name in failed if name in LEDGER_CHECKS)
    if ledger_failed and not orders:  # the full list was not read: at least one order each
        orders = {name: f"{name}: {failed[name]}" for name in ledger_failed}
    return [Penalty("orders lost or doubled", detail) for detail in orders.values()] + [
        Penalty("verify check failed", f"{name}: {examples}")
        for name, examples in sorted(failed.items())
        if name not in LEDGER_CHECKS
    ]
