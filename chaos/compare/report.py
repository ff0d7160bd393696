"""The comparison's report: `report.json` (every figure) and `report.html` (one page,
readable on a projector: the sets, what got worse from one set to the next, a table,
and one inline SVG plot per measure with the sets side by side). Nothing is fetched."""

from __future__ import annotations

import json
import math
import os
import time
from html import escape
from pathlib import Path
from typing import Any

from chaos.compare import measure, plots
from chaos.compare.run import Comparison, SetResult


def as_dict(comparison: Comparison) -> dict[str, Any]:
    plan = comparison.plan
    done = comparison.finished
    found = measure.changes([r.name for r in done], [r.figures for r in done])
    return {
        "fault": {"name": plan.fault.name, "summary": plan.fault.summary},
        "profile": plan.profile,
        "timing": {
            "warm_s": plan.timing.warm_s,
            "fault_s": plan.timing.fault_s,
            "recover_s": plan.timing.recover_s,
            "settle_s": plan.timing.settle_s,
        },
        "users": plan.users,
        "started_at": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(comparison.started_at)),
        "wall_s": comparison.wall_s,
        "interrupted": comparison.interrupted,
        "machine": {"cores": os.cpu_count(), "load_average": [round(x, 2) for x in os.getloadavg()]},
        "measures": [
            {"key": m.key, "title": m.title, "unit": m.unit, "better": m.better, "explain": m.explain}
            for m in measure.MEASURES
        ],
        "sets": [_clean(r.as_dict()) for r in comparison.results],
        "changes": found,
        "worse": [c["line"] for c in found if c["verdict"] == "worse"],
    }


def _clean(value: Any) -> Any:
    """JSON without NaN (not JSON): null instead."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def write(comparison: Comparison, out: Path) -> tuple[Path, Path]:
    """Write report.json and report.html into `out`; returns their paths."""
    out.mkdir(parents=True, exist_ok=True)
    data = as_dict(comparison)
    json_path, html_path = out / "report.json", out / "report.html"
    json_path.write_text(json.dumps(data, indent=2, allow_nan=False))
    html_path.write_text(render(comparison, data))
    return json_path, html_path


CSS = """
body { font-family: system-ui, sans-serif; font-size: 20px; color: #111; margin: 2rem auto; max-width: 1500px;
       padding: 0 1.5rem; line-height: 1.4; }
h1 { font-size: 2.2rem; margin-bottom: .2rem; } h2 { font-size: 1.6rem; margin-top: 2.2rem; }
table { border-collapse: collapse; margin: 1rem 0; } th, td { border: 1px solid #999; padding: .35rem .7rem; }
th { background: #eee; text-align: left; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.worse { background: #f8d0c8; font-weight: bold; } td.better { background: #d3efd9; }
.worse-list li { color: #a01800; font-weight: bold; } .better-list li { color: #0b6a2b; }
.plots { display: grid; grid-template-columns: repeat(auto-fit, minmax(640px, 1fr)); gap: 1.5rem; }
figure { margin: 0; border: 1px solid #ccc; padding: .5rem; } figcaption { font-size: 1rem; color: #333; }
.meta { color: #333; } code { font-size: .95em; }
"""


def render(comparison: Comparison, data: dict[str, Any]) -> str:
    plan = comparison.plan
    results = comparison.results
    done = comparison.finished
    names = [r.name for r in done]
    marks = {(c["set"], c["measure"]): c["verdict"] for c in data["changes"]}
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        "<meta name='viewport' content='width=device-width, initial-scale=1'>",
        f"<title>chaoslab compare: {escape(plan.fault.name)}</title><style>{CSS}</style></head><body>",
        f"<h1>chaoslab compare: {escape(plan.fault.name)}</h1>",
        f"<p class='meta'>{escape(plan.fault.summary)}. The same load ({plan.users} shoppers) and the same "
        f"fault, on a fresh <code>{escape(plan.profile)}</code> stack per set: {plan.timing.warm_s:g} s warm-up, "
        f"{plan.timing.fault_s:g} s of fault, {plan.timing.recover_s:g} s of recovery under load. "
        f"Started {escape(data['started_at'])}, took {comparison.wall_s:.0f} s on {data['machine']['cores']} "
        f"cores.{' <b>Interrupted (Ctrl-C): some sets did not run.</b>' if comparison.interrupted else ''}</p>",
        "<h2>The sets</h2><table><tr><th>set</th><th>patterns on</th><th>in plain words</th><th>run</th>"
        "<th>load average</th></tr>",
    ]
    for r in results:
        parts.append(
            f"<tr><td><b>{escape(r.name)}</b></td><td>{escape(r.patterns)}</td><td>{escape(r.summary)}</td>"
            f"<td>{escape(r.status)}{f' ({r.wall_s:.0f} s)' if r.wall_s else ''}</td>"
            f"<td class='num'>{'' if math.isnan(r.load_average) else f'{r.load_average:.1f}'}</td></tr>"
        )
    parts.append("</table>")
    worse = [c["line"] for c in data["changes"] if c["verdict"] == "worse"]
    better = [c["line"] for c in data["changes"] if c["verdict"] == "better"]
    parts.append("<h2>Worse than the set before</h2>")
    if worse:
        parts.append("<ul class='worse-list'>" + "".join(f"<li>{escape(w)}</li>" for w in worse) + "</ul>")
    else:
        parts.append("<p>No set did worse than the one before it on any measure, beyond the noise margin.</p>")
    if better:
        parts.append("<h2>Better than the set before</h2><ul class='better-list'>")
        parts += [f"<li>{escape(b)}</li>" for b in better]
        parts.append("</ul>")
    parts.append(_table(done, marks))
    parts.append("<h2>Each measure, set by set</h2><div class='plots'>")
    parts.append(_success_plot(done))
    for m in measure.MEASURES:
        values = [r.figures.value(m.key) for r in done]
        svg = plots.bar_chart(
            m.title,
            names,
            values,
            m.show,
            note=("higher is better" if m.better == "higher" else "lower is better"),
            percent=m.unit == "%",
        )
        parts.append(f"<figure>{svg}<figcaption>{escape(m.explain)}</figcaption></figure>")
    parts.append("</div>")
    parts.append(_verify(results))
    parts.append(_answers(results))
    notes = [(r.name, n) for r in results for n in r.notes]
    if notes:
        parts.append("<h2>Notes</h2><ul>" + "".join(f"<li>{escape(s)}: {escape(n)}</li>" for s, n in notes) + "</ul>")
    parts.append(
        "<p class='meta'>Each figure comes from the client's ledger (what the load generator was answered), "
        "payments' own count of the charges it received, and the database read after the stack settled. "
        "A difference within a measure's noise margin is not called worse or better; duplicates, double charges "
        "and lost events are compared per order of the run. The load average is the machine's over the last "
        f"minute of each set's load ({data['machine']['cores']} cores): other work on the machine shows in the "
        "latency. docs/compare.md explains every measure.</p></body></html>"
    )
    return "\n".join(parts)


def _table(done: list[SetResult], marks: dict[tuple[str, str], str]) -> str:
    rows = ["<h2>Every measure</h2><table><tr><th>measure</th>"]
    rows += [f"<th>{escape(r.name)}</th>" for r in done]
    rows.append("</tr>")
    for m in measure.MEASURES:
        rows.append(f"<tr><td>{escape(m.title)}</td>")
        for r in done:
            mark = marks.get((r.name, m.key), "")
            rows.append(f"<td class='num {mark}'>{escape(m.show(r.figures.value(m.key)))}</td>")
        rows.append("</tr>")
    rows.append("</table>")
    return "".join(rows)


def _success_plot(done: list[SetResult]) -> str:
    half = measure.WINDOW_S / 2  # each window drawn at its middle
    series = [(r.name, [(x + half, y) for x, y, _n in r.figures.windows]) for r in done]
    fault_s = next((r.phases.fault_s for r in done if r.phases), 0.0)
    svg = plots.line_chart(
        "success rate per 10 s window",
        series,
        shade=(0.0, fault_s),
        note="share of the orders first asked in each window that ended confirmed",
    )
    return (
        f"<figure>{svg}<figcaption>Time in seconds from the fault's start; the shaded part is the fault. "
        "A gap: no order began in that window.</figcaption></figure>"
    )


def _verify(results: list[SetResult]) -> str:
    rows = ["<h2>chaoslab verify, after each set</h2>"]
    rows.append("<table><tr><th>set</th><th>verdict</th><th>checks failed</th></tr>")
    for r in results:
        if r.status != "done":
            continue
        verdict = "clean" if r.verify.ok else (r.verify.error or "FAILED")
        failed = ", ".join(f"{name} ({n})" for name, n in r.verify.failed.items()) or "none"
        rows.append(f"<tr><td>{escape(r.name)}</td><td>{escape(verdict)}</td><td>{escape(failed)}</td></tr>")
    rows.append("</table>")
    return "".join(rows)


def _answers(results: list[SetResult]) -> str:
    rows = ["<h2>Answers to POST /orders, by status</h2><table><tr><th>set</th><th>answers</th></tr>"]
    for r in results:
        if r.answers:
            text = ", ".join(f"{status}: {n}" for status, n in r.answers.items())
            rows.append(f"<tr><td>{escape(r.name)}</td><td>{escape(text)}</td></tr>")
    rows.append("</table>")
    return "".join(rows)
