"""The native stack's Prometheus configuration: the compose file's jobs, on our ports.

The alert rules are the repository's (`prometheus/rules/`); in the `ci` profile their
`for:` durations and range windows are shrunk like every other interval (DESIGN §5),
into a copy under the run directory, so a drill sees an alert fire in seconds rather
than minutes. Scrapes are every second there, so a 10 s window still holds 10 samples.
"""
from __future__ import annotations

import re
from pathlib import Path

import yaml

from chaos.layout import SERVICES, StackLayout

REPO = Path(__file__).resolve().parent.parent
RULES = REPO / "prometheus" / "rules"
SCRAPE_INTERVAL = {"training": "15s", "ci": "1s"}
# In the ci profile `for:` durations are divided by 12 (1m becomes 5s) and range
# windows by 6 (rate(x[1m]) becomes rate(x[10s])).
CI_FOR_DIVISOR = 12
CI_WINDOW_DIVISOR = 6
_DURATION = re.compile(r"^(\d+)(ms|s|m|h)$")
_WINDOW = re.compile(r"\[(\d+)(s|m|h)(:\d+[smh])?\]")
_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}


def write(layout: StackLayout, *, alerting: bool = False) -> Path:
    config = {
        "global": {"scrape_interval": SCRAPE_INTERVAL[layout.profile],
                   "evaluation_interval": SCRAPE_INTERVAL[layout.profile],
                   "external_labels": {"stack": "chaoslab-native"}},
        "rule_files": [str(p) for p in rule_files(layout)],
        "scrape_configs": [
            # The job is the service; replicas are its instances.
            {"job_name": service,
             "static_configs": [{"targets": [f"127.0.0.1:{port}" for port in layout.replica_ports(service)]}]}
            for service in SERVICES
        ] + [{"job_name": "prometheus",
              "static_configs": [{"targets": [f"127.0.0.1:{layout.ports['prometheus']}"]}]}],
    }
    if alerting:
        config["alerting"] = {"alertmanagers": [
            {"static_configs": [{"targets": [f"127.0.0.1:{layout.ports['alertmanager']}"]}]}]}
    path = layout.run_dir / "prometheus.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def rule_files(layout: StackLayout) -> list[Path]:
    sources = sorted(RULES.glob("*.yml"))
    if layout.profile != "ci":
        return sources
    out_dir = layout.run_dir / "rules"
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for source in sources:
        rules = yaml.safe_load(source.read_text())
        for group in rules.get("groups", []):
            for rule in group.get("rules", []):
                if "for" in rule:
                    rule["for"] = shrink(rule["for"], CI_FOR_DIVISOR)
                rule["expr"] = _WINDOW.sub(_shrink_window, str(rule["expr"]))
        target = out_dir / source.name
        target.write_text(yaml.safe_dump(rules, sort_keys=False))
        written.append(target)
    return written


def shrink(duration: str, divisor: int) -> str:
    match = _DURATION.match(str(duration))
    if not match:
        return duration
    seconds = int(match.group(1)) * _SECONDS[match.group(2)] / divisor
    return f"{max(1, round(seconds))}s"


def _shrink_window(match: re.Match[str]) -> str:
    window = shrink(match.group(1) + match.group(2), CI_WINDOW_DIVISOR)
    if int(window[:-1]) < 5:
        window = "5s"  # rate() needs a few samples even at one scrape a second
    return f"[{window}{match.group(3) or ''}]"
