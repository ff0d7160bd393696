"""A drill run's report directory: report.json, junit.xml for CI, index.html for people.

The HTML page shows, per drill, the verdict of each step, what locust's own checks found
(contract violations, which fail a drill, and failures the incident is expected to cause,
which are only counted), the customers' side (the SLO page against the incident's alert,
and the error budget each SLO lost) and a timeline (success rate, p99, breaker state,
outbox pending) with the inject and remediate moments marked.
"""

from __future__ import annotations

import html
import json
import time
from pathlib import Path
from xml.etree import ElementTree as ET

from chaos.drills.engine import DrillResult

WIDTH, HEIGHT, PAD = 560, 90, 30


def write(results: list[DrillResult], directory: Path, wall_s: float) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "report.json").write_text(
        json.dumps(
            {"wall_s": round(wall_s, 1), "ok": all(r.ok for r in results), "drills": [r.as_dict() for r in results]},
            indent=2,
        )
    )
    (directory / "junit.xml").write_bytes(junit(results, wall_s))
    (directory / "index.html").write_text(page(results, wall_s))


def junit(results: list[DrillResult], wall_s: float) -> bytes:
    suite = ET.Element(
        "testsuite",
        name="chaoslab drills",
        tests=str(len(results)),
        failures=str(sum(not r.ok for r in results)),
        time=f"{wall_s:.1f}",
    )
    for r in results:
        case = ET.SubElement(
            suite, "testcase", classname="drills", name=r.incident, time=f"{r.ended_at - r.started_at:.1f}"
        )
        failed = [s for s in r.steps if not s.ok]
        if failed or not r.ok:
            step = failed[0] if failed else None
            ET.SubElement(case, "failure", message=f"{step.name}: {step.detail}" if step else "incomplete")
        out = ET.SubElement(case, "system-out")
        lines = [f"{s.name}: {'ok' if s.ok else 'FAILED'} ({s.seconds}s) {s.detail}" for s in r.steps]
        lines += [f"customers: {page_line(r)}", f"error budget spent: {spent_line(r)}"]
        lines += [f"data lost: {loss_line(r)}"] if r.rpo_orders is not None else []
        for kind, label in KINDS:
            lines += [f"locust {label}: {message} x{count}" for message, count in _failures(r, kind).items()]
        out.text = "\n".join(lines)
    return ET.tostring(suite, encoding="utf-8", xml_declaration=True)


KINDS = (("violations", "contract violation"), ("expected", "expected failure"))


def _failures(r: DrillResult, kind: str) -> dict[str, int]:
    """locust's failures of one class (`violations` or `expected`), by message."""
    return dict(r.load_failures.get(kind) or {})


def spent_line(r: DrillResult, *, short: bool = False) -> str:
    """What each SLO lost: `orders-availability 4.20% (bad 63.0%, 126x for 95 s)`, or
    `availability 4.20%` when `short`."""
    parts = []
    for slo, cost in r.budget_spent.items():
        if short:
            parts.append(f"{slo.removeprefix('orders-')} {cost['budget_spent']:.2%}")
        else:
            rate = f"bad {cost['bad_share']:.1%}, {cost['burn_rate']:g}x for {cost['seconds']:g} s"
            parts.append(f"{slo} {cost['budget_spent']:.2%} ({rate})")
    return ("; " if not short else ", ").join(parts) or "-"


def loss_line(r: DrillResult) -> str:
    """`RPO 37 order(s), 4.2 s of answers (budget 33 s); RTO 48.5 s`: what a restore lost
    of what clients were told, and how long from the loss to recovered."""
    rto = f"; RTO {r.rto_s} s" if r.rto_s is not None else ""
    return f"RPO {r.rpo_orders} order(s), {r.rpo_s} s of answers (budget {r.rpo_budget_s} s){rto}"


def page_line(r: DrillResult) -> str:
    """`OrdersAvailabilityFastBurn after 61.2 s (budget 139 s), after PaymentsErrors (8.2 s)`."""
    if r.time_to_page_s is None:
        return "no SLO page" + (f" within its {r.page_budget_s:.0f} s budget" if r.page_budget_s else "")
    budget = f" (budget {r.page_budget_s:.0f} s)" if r.page_budget_s else ""
    if r.page_vs_alert in ("before", "with", "after"):
        relation = f"{r.page_vs_alert} {r.alert} ({r.time_to_detect_s} s)"
    else:
        relation = r.page_vs_alert
    return f"{r.page_alert} after {r.time_to_page_s} s{budget}, {relation}"


def _failure_table(r: DrillResult) -> str:
    rows = "".join(
        f"<tr><td class='{'FAILED' if kind == 'violations' else ''}'>{label}</td>"
        f"<td>{html.escape(message)}</td><td>{count}</td></tr>"
        for kind, label in KINDS
        for message, count in _failures(r, kind).items()
    )
    if not rows:
        return "<p>locust: no failed request</p>"
    return f"<table><tr><th>locust found</th><th>message</th><th>count</th></tr>{rows}</table>"


def _chart(name: str, points: list[tuple[float, float]], start: float, end: float, marks: dict[str, float]) -> str:
    span = max(end - start, 1.0)
    top = max([v for _, v in points] + [1e-9])
    x = lambda t: PAD + (t - start) / span * (WIDTH - 2 * PAD)  # noqa: E731
    y = lambda v: HEIGHT - 15 - v / top * (HEIGHT - 25)  # noqa: E731
    line = " ".join(f"{x(t):.1f},{y(v):.1f}" for t, v in points)
    parts = [
        f'<svg width="{WIDTH}" height="{HEIGHT}" role="img" aria-label="{html.escape(name)}">',
        f'<text x="4" y="12" font-size="11">{html.escape(name)} (max {top:.3g})</text>',
        f'<line x1="{PAD}" y1="{HEIGHT - 15}" x2="{WIDTH - PAD}" y2="{HEIGHT - 15}" stroke="#999"/>',
    ]
    if line:
        parts.append(f'<polyline fill="none" stroke="#2563eb" stroke-width="1.5" points="{line}"/>')
    else:
        parts.append(f'<text x="{WIDTH / 2 - 30}" y="{HEIGHT / 2}" font-size="11" fill="#999">no data</text>')
    for label, colour in (("inject", "#dc2626"), ("remediate", "#16a34a")):
        if label in marks:
            mx = x(marks[label])
            parts.append(
                f'<line x1="{mx:.1f}" y1="14" x2="{mx:.1f}" y2="{HEIGHT - 15}" stroke="{colour}" '
                f'stroke-dasharray="4 2"/><text x="{mx + 2:.1f}" y="{HEIGHT - 3}" font-size="10" '
                f'fill="{colour}">{label}</text>'
            )
    return "".join(parts) + "</svg>"


def page(results: list[DrillResult], wall_s: float) -> str:
    rows, sections = [], []
    for r in results:
        verdict = "passed" if r.ok else "FAILED"
        rows.append(
            f"<tr><td><a href='#{r.incident}'>{r.incident}</a></td><td class='{verdict}'>{verdict}</td>"
            f"<td>{r.time_to_detect_s or '-'} / {r.detect_budget_s or '-'}</td>"
            f"<td>{r.time_to_recover_s or '-'} / {r.recover_budget_s or '-'}</td>"
            f"<td>{r.orders_attempted if r.orders_attempted is not None else '-'}</td>"
            f"<td>{r.orders_succeeded if r.orders_succeeded is not None else '-'}</td>"
            f"<td>{sum(_failures(r, 'violations').values())}</td><td>{sum(_failures(r, 'expected').values())}</td>"
            f"<td>{r.time_to_page_s or '-'} / {r.page_budget_s or '-'}</td><td>{r.page_vs_alert or '-'}</td>"
            f"<td>{html.escape(spent_line(r, short=True))}</td></tr>"
        )
        steps = "".join(
            f"<tr><td>{html.escape(s.name)}</td><td class='{'passed' if s.ok else 'FAILED'}'>"
            f"{'ok' if s.ok else 'failed'}</td><td>{s.seconds}s</td><td>{html.escape(s.detail)}</td></tr>"
            for s in r.steps
        )
        charts = "".join(_chart(name, points, r.started_at, r.ended_at, r.marks) for name, points in r.timeline.items())
        sections.append(
            f"<section id='{r.incident}'><h2>{r.incident}: {html.escape(r.title)} "
            f"<span class='{verdict}'>{verdict}</span></h2><p>alert: {r.alert or 'watchdog'}</p>"
            f"<p>customers: {html.escape(page_line(r))}</p>"
            f"<p>error budget spent (share of a whole period's): {html.escape(spent_line(r))}</p>"
            + (f"<p>data lost: {html.escape(loss_line(r))}</p>" if r.rpo_orders is not None else "")
            + f"<table><tr><th>step</th><th>verdict</th><th>time</th><th>detail</th></tr>{steps}</table>"
            f"{_failure_table(r)}"
            f"<div>{charts}</div></section>"
        )
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime())
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>chaoslab drills</title>
<style>body{{font-family:sans-serif;margin:2em}} table{{border-collapse:collapse;margin:1em 0}}
td,th{{border:1px solid #ddd;padding:4px 8px;text-align:left}} .passed{{color:#16a34a}}
.FAILED{{color:#dc2626;font-weight:bold}}
svg{{display:block;margin:4px 0}}</style></head><body>
<h1>chaoslab drills</h1>
<p>{len(results)} drill(s), {sum(r.ok for r in results)} passed, wall time {wall_s:.0f}s, {when}.</p>
<table><tr><th>incident</th><th>verdict</th><th>time to detect / budget (s)</th><th>time to recover / budget (s)</th>
<th>orders attempted</th><th>orders succeeded</th><th>contract violations</th><th>expected failures</th>
<th>SLO page / budget (s)</th><th>page vs alert</th><th>error budget spent</th></tr>
{"".join(rows)}</table>
{"".join(sections)}</body></html>"""
