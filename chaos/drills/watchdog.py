"""The dead man's switch, seen from Alertmanager: is `Watchdog` an active alert there?

Prometheus always fires Watchdog (prometheus/rules/alerts.yml) and resends it to
Alertmanager, stamped with an endsAt 4 x max(evaluation interval, resend delay) ahead.
Alertmanager's API (`GET /api/v2/alerts`) lists an alert only until its endsAt passes,
so a Prometheus that died, or cannot reach Alertmanager, shows as Watchdog missing there
within that lifetime (chaos/prometheus_config.py, `alert_lifetime_s`). This is how a
responder notices monitoring-down: not by probing Prometheus, by the alert that stops.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request

WATCHDOG = "Watchdog"


class DeadMansSwitch:
    def __init__(self, alertmanager_url: str, alert: str = WATCHDOG, timeout_s: float = 3.0) -> None:
        self.url, self.alert, self.timeout_s = alertmanager_url.rstrip("/"), alert, timeout_s

    def armed(self) -> bool | None:
        """True while Alertmanager lists the alert (active, or silenced: still received),
        False once it does not, None when Alertmanager does not answer (no verdict).
        The API leaves out an alert whose endsAt has passed."""
        query = urllib.parse.urlencode({"filter": f'alertname="{self.alert}"'})
        try:
            with urllib.request.urlopen(f"{self.url}/api/v2/alerts?{query}", timeout=self.timeout_s) as resp:
                alerts = json.load(resp)
        except (urllib.error.URLError, OSError, ValueError):
            return None
        return any(a.get("labels", {}).get("alertname") == self.alert for a in alerts)
