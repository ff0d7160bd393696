"""Alertmanager silences, for a medium game: the incident's own alert is kept quiet so
that only its symptom shows. Created when the incident is injected, expired when the
game ends (and they expire on their own after it)."""

from __future__ import annotations

import json
import time
import urllib.request


def silence(alertmanager_url: str, alert: str, for_s: float) -> str:
    """Silence `alert` from now for `for_s` seconds; the silence's id. Raises OSError."""
    now = time.time()
    body = {
        "matchers": [{"name": "alertname", "value": alert, "isRegex": False, "isEqual": True}],
        "startsAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now - 5)),
        "endsAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now + for_s)),
        "createdBy": "chaoslab gameday",
        "comment": "medium difficulty: the cause is hidden behind its symptom",
    }
    request = urllib.request.Request(
        alertmanager_url + "/api/v2/silences",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=5) as resp:
        return str(json.load(resp)["silenceID"])


def expire(alertmanager_url: str, silence_id: str) -> None:
    request = urllib.request.Request(f"{alertmanager_url}/api/v2/silence/{silence_id}", method="DELETE")
    try:
        urllib.request.urlopen(request, timeout=5).close()
    except OSError:
        return  # it expires on its own
