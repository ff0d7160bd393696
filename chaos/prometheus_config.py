"""Prometheus configuration for both stacks: one job per service, the same names.

The native stack's is written into its run directory, on its own ports. The compose
stack's is generated into `prometheus/compose/<profile>.yml` (`python -m
chaos.prometheus_config --write`), and compose picks it by CHAOSLAB_PROFILE. The alert
rules are the repository's (`prometheus/rules/`); in the `ci` profile their `for:`
durations and range windows are shrunk like every other interval of the profile, so a
drill sees an alert fire in seconds rather than minutes. Scrapes are every second
there, so a 10 s window still holds 10 samples.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import yaml

from chaos.layout import DEFAULT_PORTS, SERVICES, StackLayout

REPO = Path(__file__).resolve().parent.parent
RULES = REPO / "prometheus" / "rules"
COMPOSE_DIR = REPO / "prometheus" / "compose"
COMPOSE_MOUNT = "/etc/prometheus"  # where compose mounts ./prometheus
SCRAPE_INTERVAL = {"training": "15s", "ci": "1s"}  # the evaluation interval too
# `--rules.alert.resend-delay`: Prometheus resends a firing alert to Alertmanager at most
# this often and stamps it endsAt = now + 4 x max(evaluation interval, resend delay).
# Once that passes without a resend, Alertmanager no longer lists the alert as active:
# that lifetime is how long a dead Prometheus goes unnoticed (the Watchdog alert, the dead
# man's switch). Training: a minute, like its alerts' `for: 1m`; ci: 8 s. The compose
# file has one command line for both profiles: it passes the smallest, which gives the
# same lifetime in training, where the 15 s evaluation interval is the larger term.
RESEND_DELAY = {"training": "15s", "ci": "2s"}
COMPOSE_RESEND_DELAY = "2s"
DNS_REFRESH = "5s"  # how soon a compose replica, new or gone, is scraped or dropped
# In the ci profile `for:` durations are divided by 12 (1m becomes 5s) and range
# windows by 6 (rate(x[1m]) becomes rate(x[10s])).
CI_FOR_DIVISOR = 12
CI_WINDOW_DIVISOR = 6
_DURATION = re.compile(r"^(\d+)(ms|s|m|h|d)$")
_WINDOW = re.compile(r"\[(\d+)(s|m|h|d)(:\d+[smh])?\]")
_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}


def config(
    *,
    profile: str,
    stack: str,
    targets: dict[str, list[str]],
    rule_files: list[str],
    alertmanager: str | None,
    dns_names: dict[str, int] | None = None,
) -> dict:
    """The job is the service; replicas are its instances. No `service` target label:
    it would clash with the `service` label of http_requests_total. `dns_names` (compose)
    maps a job to its port: the job scrapes every address its name resolves to."""
    jobs = [{"job_name": job, "static_configs": [{"targets": hosts}]} for job, hosts in targets.items()]
    jobs += [
        {
            "job_name": job,
            "dns_sd_configs": [{"names": [job], "type": "A", "port": port, "refresh_interval": DNS_REFRESH}],
        }
        for job, port in (dns_names or {}).items()
    ]
    order = [*SERVICES, "prometheus"]
    jobs.sort(key=lambda j: order.index(j["job_name"]) if j["job_name"] in order else len(order))
    out = {
        "global": {
            "scrape_interval": SCRAPE_INTERVAL[profile],
            "evaluation_interval": SCRAPE_INTERVAL[profile],
            "external_labels": {"stack": stack},
        },
        "rule_files": rule_files,
        "scrape_configs": jobs,
    }
    if alertmanager:
        out["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": [alertmanager]}]}]}
    return out


def native_targets(layout: StackLayout) -> dict[str, list[str]]:
    """The native stack's targets by job: every replica of every service, and Prometheus."""
    targets = {service: [f"127.0.0.1:{port}" for port in layout.replica_ports(service)] for service in SERVICES}
    targets["prometheus"] = [f"127.0.0.1:{layout.ports['prometheus']}"]
    return targets


def write(layout: StackLayout, *, alerting: bool = False) -> Path:
    targets = native_targets(layout)
    path = layout.run_dir / "prometheus.yml"
    path.write_text(
        yaml.safe_dump(
            config(
                profile=layout.profile,
                stack="chaoslab-native",
                targets=targets,
                rule_files=[str(p) for p in rule_files(layout)],
                alertmanager=f"127.0.0.1:{layout.ports['alertmanager']}" if alerting else None,
            ),
            sort_keys=False,
        )
    )
    return path


def rule_files(layout: StackLayout) -> list[Path]:
    sources = sorted(RULES.glob("*.yml"))
    if layout.profile != "ci":
        return sources
    out_dir = layout.run_dir / "rules"
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for source in sources:
        target = out_dir / source.name
        target.write_text(ci_rules(source))
        written.append(target)
    return written


def ci_rules(source: Path) -> str:
    """A rule file with its `for:` durations and range windows shrunk for the ci profile."""
    rules = yaml.safe_load(source.read_text())
    for group in rules.get("groups", []):
        for rule in group.get("rules", []):
            if "for" in rule:
                rule["for"] = shrink(rule["for"], CI_FOR_DIVISOR)
            rule["expr"] = _WINDOW.sub(_shrink_window, str(rule["expr"]))
    return yaml.safe_dump(rules, sort_keys=False)


def compose_files() -> dict[Path, str]:
    """Every file of prometheus/compose/: one config per profile, and the ci rules."""
    header = (
        "# Generated by `python -m chaos.prometheus_config --write` (chaos/prometheus_config.py):\n"
        "# do not edit. The compose stack's Prometheus, picked by CHAOSLAB_PROFILE.\n"
    )
    # Every replica of a service (`docker compose up --scale payments=3`) is an A record
    # of its name on the compose network.
    dns_names = {service: DEFAULT_PORTS[service] for service in SERVICES}
    targets = {"prometheus": [f"localhost:{DEFAULT_PORTS['prometheus']}"]}
    rules = {"training": f"{COMPOSE_MOUNT}/rules/*.yml", "ci": f"{COMPOSE_MOUNT}/compose/ci-rules/*.yml"}
    files = {}
    for profile, pattern in rules.items():
        files[COMPOSE_DIR / f"{profile}.yml"] = header + yaml.safe_dump(
            config(
                profile=profile,
                stack="chaoslab-compose",
                targets=targets,
                dns_names=dns_names,
                rule_files=[pattern],
                alertmanager=f"alertmanager:{DEFAULT_PORTS['alertmanager']}",
            ),
            sort_keys=False,
        )
    for source in sorted(RULES.glob("*.yml")):
        files[COMPOSE_DIR / "ci-rules" / source.name] = header + ci_rules(source)
    return files


def shrink(duration: str, divisor: int) -> str:
    match = _DURATION.match(str(duration))
    if not match:
        return duration
    seconds = int(match.group(1)) * _SECONDS[match.group(2)] / divisor
    return f"{max(1, round(seconds)) if seconds else 0}s"  # `for: 0s` stays 0s


def seconds(duration: str) -> float:
    """A Prometheus duration of one unit ("15s", "1m", "500ms", "30d") in seconds."""
    match = _DURATION.match(str(duration))
    if not match:
        raise ValueError(f"not a duration: {duration!r}")
    return int(match.group(1)) * _SECONDS[match.group(2)]


def range_windows_s(expr: str) -> list[float]:
    """The range windows of an expression (`rate(x[1m])` -> 60.0), as written."""
    return [seconds(m.group(1) + m.group(2)) for m in _WINDOW.finditer(expr)]


def profile_rules(profile: str) -> list[dict]:
    """Every rule (alerting and recording) as the native stack of `profile` loads it:
    the repository's in training, shrunk by ci_rules() in ci."""
    out = []
    for source in sorted(RULES.glob("*.yml")):
        text = ci_rules(source) if profile == "ci" else source.read_text()
        out += [rule for group in yaml.safe_load(text).get("groups", []) for rule in group.get("rules", [])]
    return out


def alert_lifetime_s(profile: str) -> float:
    """How long Alertmanager keeps an alert active after Prometheus last sent it."""
    return 4 * max(seconds(SCRAPE_INTERVAL[profile]), seconds(RESEND_DELAY[profile]))


def prometheus_flags(profile: str) -> list[str]:
    """The command-line flags of the profile that no configuration file can set."""
    return [f"--rules.alert.resend-delay={RESEND_DELAY[profile]}"]


def _shrink_window(match: re.Match[str]) -> str:
    window = shrink(match.group(1) + match.group(2), CI_WINDOW_DIVISOR)
    if int(window[:-1]) < 5:
        window = "5s"  # rate() needs a few samples even at one scrape a second
    return f"[{window}{match.group(3) or ''}]"


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        sys.exit("usage: python -m chaos.prometheus_config --write  (regenerates prometheus/compose/)")
    for path, text in compose_files().items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        print(path.relative_to(REPO))
