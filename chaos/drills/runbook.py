"""runbook.md, written from the incident catalogue: the commands a person runs are the
commands the drills run (`chaoslab runbook --write`; a test fails if it is stale)."""

from __future__ import annotations

import re

from chaos.drills import budgets
from chaos.drills.catalog import INCIDENTS
from chaos.drills.model import Incident, Step
from chaos.prometheus_config import RULES
from chaos.slo import spec

HEADER = """# chaoslab runbook

<!-- Generated from chaos/drills/catalog.py by `chaoslab runbook --write`; edit the catalogue, not this file. -->

One section per incident, anchored by its id. Every section is drilled end to end by
`chaoslab drill <id>` under locust load: the drill injects the fault as written here,
waits for the named alert, runs the remediation commands exactly as written, checks
recovery within budget and runs `chaoslab verify`.

Commands run from the repository root. Against the native stack (`make up`),
`chaoslab` finds the stack through `--run-dir` or `$CHAOSLAB_RUN_DIR` (default
`./.chaoslab`). Against the compose stack (`docker compose up`), the same words work
after `export CHAOSLAB_TARGET=compose` (or `chaoslab <command> --target compose`):
`chaoslab` then reads the ports, token and profile from `docker compose config`, and
`stop`, `start`, `restart`, `kill` and `logs` act on the service's container. The
scripts in `chaos/scripts/` find Redis through `$REDIS_URL` (default
`redis://127.0.0.1:6379/0`, which is also where compose publishes it). Plain
`docker compose` equivalents are given for people without the `chaoslab` command.

## Severity

In brackets: the SLOs whose error budget the incident spends (`prometheus/slos.yml`,
[docs/slo.md](docs/slo.md)). Their burn-rate pages alert on what customers feel; while
one fires, the incident's own alerts are attached to it rather than sent on their own.

| severity | meaning | incidents (the SLOs they spend) |
|---|---|---|
{severity_rows}

## Recovery order when several things fail

1. **Visibility**: Prometheus (`chaoslab start prometheus`), so you can see what you fix.
2. **Stability**: the shared dependencies, deepest first: PostgreSQL, then Redis.
3. **The broken part**: the failing service, then its callers, deepest first
   (payments and inventory, then orders, then the gateway).
4. **Verify**: `chaoslab verify` until it is clean, then clear anything left with
   `chaoslab chaos clear`.

## After a crash: what you see while breakers close

A killed process is back within seconds (supervisord restarts it; in compose, the restart
policy) and its `/health` answers 200 at once, so `chaoslab status` is all green. Its
callers' breakers, opened by the crash, stay open for one breaker wait
(`breaker_wait_open_s`: 30 s in training, 3 s in ci). Until then, after a killed orders,
orders and reads through the gateway answer 503 `breaker_open` with `Retry-After`; after a
killed inventory, new orders answer 503 naming it (`X-Failed-Dependency`), and after a
killed payments they end `payment_failed`, while reads of orders go on (the gateway's
breaker on orders does not count a 503 that names another service). This is recovery, not
a new incident: restarting more processes does not shorten it. `chaoslab query 'max(breaker_state)'`
shows the breakers still open. Orders caught mid-flight stay `pending` until their lease
expires and the sweeper finishes them (a retry with the same key gets the same order), so
run `chaoslab verify` after that, with its default grace. If 503s outlast a breaker wait
and a few seconds, the callee is still failing: read its log (`chaoslab logs <service>`).

## Incidents

| id | what happens | alert | SLOs it spends |
|---|---|---|---|
{index_rows}
"""

MEANING = {
    "SEV1": "orders fail or customers are refused",
    "SEV2": "degraded: slower, partial, or at risk",
    "SEV3": "no customer impact yet; something will break if left",
}


def _commands(steps: tuple[Step, ...]) -> str:
    lines = []
    for step in steps:
        lines.append(f"```sh\n{step.run}\n```" if step.run else f"- {step.note}")
    return "\n".join(lines)


def _when(inc: Incident) -> str:
    if not inc.recovered_when:
        return ""
    return f" Check: `chaoslab query '{inc.recovered_when}'` returns a sample."


def _alert_name(inc: Incident) -> str:
    return f"{inc.alert}" if inc.detection == "prometheus" else f"{inc.alert} missing (Alertmanager)"


def _slo_names(inc: Incident) -> str:
    return ", ".join(f"`{name}`" for name in inc.slos) or "none"


def _spends(inc: Incident) -> str:
    """Which SLOs' error budget the incident spends, and the page that must detect it."""
    if not inc.slos:
        return "**Spends** no SLO's error budget ([docs/slo.md](docs/slo.md)): orders are answered as usual."
    links = " and ".join(f"[`{name}`](docs/slo.md#{name})" for name in inc.slos)
    text = (
        f"**Spends** the error budget of {links}. Its own alerts go out as tickets, attached to the SLO's page "
        "while that fires (`chaoslab alerts`)."
    )
    if inc.page is None:
        return text + " The drill reports an SLO page if one fires, and the budget spent."
    training, ci = budgets.of(inc, "training"), budgets.of(inc, "ci")
    return (
        f"{text} The page, `{spec.by_name(inc.page.slo).alert(spec.PAGE)}`, must detect it too (with at least "
        f"{inc.page.bad_share:.0%} of the order requests bad): within {training.page_s:.0f} s in training, "
        f"{ci.page_s:.0f} s in ci, or longer when the page's long window held more requests before the "
        "inject than flow during it (the drill measures both: docs/slo.md)."
    )


def _rule_file(alert: str | None) -> str:
    """The name of the file in prometheus/rules/ that defines `alert`."""
    for path in sorted(RULES.glob("*.yml")):
        if re.search(rf"^\s*- alert: {alert}\s*$", path.read_text(), re.M):
            return path.name
    return "alerts.yml"


def section(inc: Incident) -> str:
    symptoms = "\n".join(f"- {s}" for s in inc.symptoms)
    alert = (
        f"`{inc.alert}` (Prometheus, `prometheus/rules/{_rule_file(inc.alert)}`)"
        if inc.detection == "prometheus"
        else (
            f"`{inc.alert}` missing from Alertmanager. `{inc.alert}` is the dead man's switch: Prometheus fires it "
            "always and Alertmanager lists it as active (`GET /api/v2/alerts`) only while Prometheus keeps "
            "resending it. A dead Prometheus fires nothing, so the switch going silent is the alert; it happens "
            "once the last copy expires, 4 x max(evaluation interval, `--rules.alert.resend-delay`) after "
            "Prometheus' last send."
        )
    )
    training, ci = budgets.of(inc, "training"), budgets.of(inc, "ci")
    compose = ("\n\nWith compose:\n\n```sh\n" + "\n".join(inc.compose) + "\n```") if inc.compose else ""
    return f"""
<a id="{inc.id}"></a>
## {inc.id}: {inc.title}

**Severity** {inc.severity}. {inc.what_happens}

{_spends(inc)}

### Symptoms

{symptoms}

### Alert

{alert}

### Diagnose

{_commands(inc.diagnose)}

### How it is caused (the drill injects it this way)

{_commands(inc.inject)}

### Remediate

{_commands(inc.remediate)}{compose}

### Verify recovery

{inc.recovered}{_when(inc)} Budgets in the drill, derived from the profile's intervals
(`chaos/drills/budgets.py`): detection within {training.detect_s:.0f} s and recovery within
{training.recover_s:.0f} s in training; {ci.detect_s:.0f} s and {ci.recover_s:.0f} s in ci.

### Data loss check

{inc.data_loss}
"""


def render() -> str:
    by_severity: dict[str, list[str]] = {}
    for inc in INCIDENTS:
        hurt = f" ({', '.join(name.removeprefix('orders-') for name in inc.slos)})" if inc.slos else ""
        by_severity.setdefault(inc.severity, []).append(f"[{inc.id}](#{inc.id}){hurt}")
    severity_rows = "\n".join(
        f"| {sev} | {MEANING[sev]} | {', '.join(ids)} |" for sev, ids in sorted(by_severity.items())
    )
    index_rows = "\n".join(
        f"| [{inc.id}](#{inc.id}) | {inc.title} | {_alert_name(inc)} | {_slo_names(inc)} |" for inc in INCIDENTS
    )
    body = HEADER.format(severity_rows=severity_rows, index_rows=index_rows)
    body += "".join(section(inc) for inc in INCIDENTS)
    return body
