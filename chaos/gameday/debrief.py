"""`chaoslab gameday report`: the debrief page (report.html) and its JSON (result.json).

The page shows the score table against par with the formula, every penalty by name, the
timeline (faults, alerts, responder actions and commands), the drill report's plots with
the inject marked, and the runbook section of each incident played.
"""

from __future__ import annotations

import html
import time
from pathlib import Path

from chaos.drills import runbook
from chaos.drills.catalog import BY_ID
from chaos.drills.report import _chart
from chaos.gameday.scoring import FORMULA, TIMES
from chaos.gameday.timeline import events


def write(result: dict, directory: Path) -> Path:
    path = directory / "report.html"
    path.write_text(page(result))
    return path


def _clock(t: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(t))


def _score_rows(score: dict) -> str:
    rows = []
    for inc in score["incidents"]:
        for name in TIMES:
            took = inc["times"][name]
            rows.append(
                f"<tr><td>{inc['incident']}</td><td>{name}</td><td>{'-' if took is None else took}</td>"
                f"<td>{inc['par'][name]:.0f}</td><td>{inc['points'][name]}</td></tr>"
            )
        rows.append(f"<tr><th colspan=4>{inc['incident']}: score</th><th>{inc['score']}</th></tr>")
    return "".join(rows)


def page(result: dict) -> str:
    score = result["score"]
    penalties = "".join(
        f"<li><b>{html.escape(p['kind'])}</b> (-{p['points']}): {html.escape(p['detail'])}</li>"
        for p in score["penalties"]
    )
    timeline = "".join(
        f"<tr><td>{_clock(e.t)}</td><td>{e.source}</td><td>{html.escape(e.text)}</td></tr>" for e in events(result)
    )
    injects = [p["injected_at"] for p in result["picks"] if p.get("injected_at")]
    marks = {"inject": min(injects)} if injects else {}
    end = result["ended_at"]
    charts = "".join(
        _chart(name, [tuple(pt) for pt in points], result["started_at"], end, marks)
        for name, points in result.get("timeline", {}).items()
    )
    sections = "".join(
        f"<h3>{html.escape(p['incident'])}</h3><pre>{html.escape(runbook.section(BY_ID[p['incident']]))}</pre>"
        for p in result["picks"]
    )
    verdict = "within par" if score["within_par"] else "over par"
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>chaoslab game day {result["game"]}</title>
<style>body{{font-family:sans-serif;margin:2em}} table{{border-collapse:collapse;margin:1em 0}}
td,th{{border:1px solid #ddd;padding:4px 8px;text-align:left}}
pre{{background:#f6f6f6;padding:1em;white-space:pre-wrap}}
svg{{display:block;margin:4px 0}}</style></head><body>
<h1>Game day {result["game"]}: score {score["total"]} ({verdict})</h1>
<p>{result["difficulty"]}, {len(result["picks"])} incident(s), seed {result["seed"]}, {result["profile"]} profile,
responder: {html.escape(result.get("responder") or "people")}; orders {result["orders"]["succeeded"] or 0}
of {result["orders"]["attempted"] or 0} confirmed; verify {"clean" if result["verify"].get("ok") else "FAILED"}.</p>
{f"<p><b>The game could not go on:</b> {html.escape(result['failure'])}</p>" if result.get("failure") else ""}
<h2>Score</h2>
<table><tr><th>incident</th><th>time</th><th>took (s)</th><th>par (s)</th><th>points</th></tr>
{_score_rows(score)}</table>
<p>Formula: {html.escape(FORMULA)}</p>
<h2>Penalties</h2><ul>{penalties or "<li>none</li>"}</ul>
<h2>Timeline</h2><table><tr><th>when</th><th>source</th><th>what</th></tr>{timeline}</table>
<h2>Plots</h2><div>{charts}</div>
<h2>The runbook</h2>{sections}
</body></html>"""
