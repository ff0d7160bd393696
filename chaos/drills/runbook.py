"""runbook.md, written from the incident catalogue: the commands a person runs are the
commands the drills run (`chaoslab runbook --write`; a test fails if it is stale)."""

from __future__ import annotations

from chaos.drills.catalog import INCIDENTS
from chaos.drills.model import Incident, Step

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

| severity | meaning | incidents |
|---|---|---|
{severity_rows}

## Recovery order when several things fail

1. **Visibility**: Prometheus (`chaoslab start prometheus`), so you can see what you fix.
2. **Stability**: the shared dependencies, deepest first: PostgreSQL, then Redis.
3. **The broken part**: the failing service, then its callers, deepest first
   (payments and inventory, then orders, then the gateway).
4. **Verify**: `chaoslab verify` until it is clean, then clear anything left with
   `chaoslab chaos clear`.

## Incidents

| id | what happens | alert |
|---|---|---|
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


def section(inc: Incident) -> str:
    symptoms = "\n".join(f"- {s}" for s in inc.symptoms)
    alert = (
        f"`{inc.alert}` (Prometheus, `prometheus/rules/alerts.yml`)"
        if inc.alert
        else "none from Prometheus itself: the drill's watchdog, and Alertmanager's when it runs"
    )
    compose = ("\n\nWith compose:\n\n```sh\n" + "\n".join(inc.compose) + "\n```") if inc.compose else ""
    return f"""
<a id="{inc.id}"></a>
## {inc.id}: {inc.title}

**Severity** {inc.severity}. {inc.what_happens}

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

{inc.recovered}{_when(inc)} Budget in the drill: detection within {inc.detect_budget_s:.0f} s,
recovery within {inc.recover_budget_s:.0f} s (ci profile).

### Data loss check

{inc.data_loss}
"""


def render() -> str:
    by_severity: dict[str, list[str]] = {}
    for inc in INCIDENTS:
        by_severity.setdefault(inc.severity, []).append(f"[{inc.id}](#{inc.id})")
    severity_rows = "\n".join(
        f"| {sev} | {MEANING[sev]} | {', '.join(ids)} |" for sev, ids in sorted(by_severity.items())
    )
    index_rows = "\n".join(f"| [{inc.id}](#{inc.id}) | {inc.title} | {inc.alert or 'watchdog'} |" for inc in INCIDENTS)
    body = HEADER.format(severity_rows=severity_rows, index_rows=index_rows)
    body += "".join(section(inc) for inc in INCIDENTS)
    return body
