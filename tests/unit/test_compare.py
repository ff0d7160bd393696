"""`chaoslab compare`'s pure parts: the sets, the faults, the figures from hand-made
ledgers, which set did worse, the plots and the report, and its refusals of bad input."""

from __future__ import annotations

import itertools
import json
import math
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

import pytest
from typer.testing import CliRunner

from chaos.cli import app
from chaos.compare import collect, measure, plots, report
from chaos.compare.faults import FAULTS, FaultError, lookup
from chaos.compare.measure import Figures, Phases
from chaos.compare.run import TIMINGS, Comparison, Plan, SetResult, Timing, _shape_env
from chaos.compare.sets import SETS, SetError, choose
from chaos.ledger import Entry
from services.common.faults.catalogue import CATALOGUE
from services.common.resilience.patterns import PATTERNS


def answer(t: float, key: str, status: int, *, ms: float = 10.0, order: str | None = None) -> Entry:
    state = {201: "confirmed", 402: "payment_failed"}.get(status)
    return Entry(
        t=t,
        key=key,
        status=status,
        order_id=(order or f"o-{key}") if state else None,
        order_status=state,
        total_cents=100 if state else None,
        latency_ms=ms,
    )


# --- the sets and the faults ------------------------------------------------------------------------


def test_each_set_adds_patterns_to_the_one_before_from_none_to_all():
    assert [s.name for s in SETS] == ["A", "B", "C", "D", "E", "F"]
    assert SETS[0].patterns == frozenset() and SETS[-1].patterns == frozenset(PATTERNS)
    for before, after in itertools.pairwise(SETS):
        assert before.patterns < after.patterns
    assert SETS[2].patterns == {"retries", "timeouts"}
    assert SETS[4].patterns - SETS[3].patterns == {"bulkheads", "shedding"}
    assert SETS[0].env == {"PATTERNS": "none"} and SETS[-1].env == {"PATTERNS": "all"}


def test_sets_are_chosen_by_name_or_made_of_patterns():
    assert [s.name for s in choose(None, [])] == ["A", "B", "C", "D", "E", "F"]
    assert [s.name for s in choose("a, c,F", [])] == ["A", "C", "F"]
    [custom] = choose(None, ["breakers,retries"])
    assert custom.name == "P" and custom.env == {"PATTERNS": "retries,breakers"}
    assert [s.name for s in choose("A", ["retries", "none"])] == ["A", "P1", "P2"]


@pytest.mark.parametrize(
    "sets, custom, message",
    [("A,X", [], "unknown set"), ("A,A", [], "twice"), (",", [], "names some of"), (None, ["retry"], "--patterns")],
)
def test_unknown_sets_and_patterns_are_refused_with_what_is_known(sets, custom, message):
    with pytest.raises(SetError, match=message):
        choose(sets, custom)


def test_every_fault_of_the_catalogue_is_set_within_its_bounds():
    for fault in FAULTS.values():
        if fault.chaos is not None:
            service, name, value = fault.chaos
            CATALOGUE[name].parse(value, service)  # raises when out of bounds or not for this service
    assert {"payments-errors", "payments-latency", "inventory-lock", "notifications-down", "spike"} <= set(FAULTS)
    assert FAULTS["payments-errors"].chaos == ("payments", "error_rate", 0.2)
    assert FAULTS["notifications-down"].stops == "notifications" and FAULTS["spike"].shape == "spike"
    with pytest.raises(FaultError, match="payments-errors"):
        lookup("payments-slow")


def test_a_spike_is_its_warm_up_then_a_ramp_and_a_hold_for_the_fault_then_its_base_again():
    env = _shape_env(FAULTS["spike"], Timing(warm_s=20, fault_s=60, recover_s=60, settle_s=60), users=20)
    assert env["CHAOSLAB_SPIKE_BASE_USERS"] == "20" and env["CHAOSLAB_SPIKE_PEAK_USERS"] == "160"
    ramp, hold = float(env["CHAOSLAB_SPIKE_RAMP_SECONDS"]), float(env["CHAOSLAB_SPIKE_HOLD_SECONDS"])
    assert ramp + hold == 60 and env["CHAOSLAB_SPIKE_WARM_SECONDS"] == "20"
    assert env["CHAOSLAB_SPIKE_AFTER_SECONDS"] == "60"
    assert _shape_env(FAULTS["payments-errors"], TIMINGS["ci"], 10) == {}


# --- figures from a ledger ---------------------------------------------------------------------------

# Warm-up 0-20, fault 20-40, recovery 40-70 (the last 5 s too young to judge).
PHASES = Phases(start=0.0, fault=20.0, cleared=40.0, end=70.0)


def _run(fail_until: float) -> list[Entry]:
    """One order a second; during the fault and until `fail_until`, every other one fails
    (402), and one of them is retried with its key and confirmed."""
    entries = []
    for t in range(70):
        key = f"k{t}"
        failing = 20 <= t < fail_until and t % 2
        entries.append(answer(t + 0.5, key, 402 if failing else 201, ms=100.0 + t))
    entries.append(answer(21.9, "k21", 201))  # the retry of the first failed order: confirmed
    return sorted(entries, key=lambda e: e.t)


def test_figures_from_a_ledger():
    f = measure.from_ledger(_run(fail_until=45), PHASES)
    assert f.orders == 50  # keys first asked from the fault's start to the end
    # Failed for good: k23, k25 ... k43 (k21 was retried); 11 of the 50.
    assert f.confirmed == 50 - 11
    assert f.success_rate == pytest.approx(11 / 20)  # k20-k39: 9 failed for good
    assert f.baseline_success == 1.0
    assert f.worst_window == pytest.approx(5 / 10)  # 30-40: k31 ... k39 failed
    assert [w[0] for w in f.windows] == [-20.0, -10.0, 0.0, 10.0, 20.0, 30.0]  # whole windows to 65 s
    assert f.windows[2][1] == pytest.approx(6 / 10) and f.windows[2][2] == 10
    # Confirmed orders first asked in the fault: k20, k22 ... k38 (120 to 138 ms), and k21,
    # from its first request (402 at 21.5 s, after 121 ms) to its confirming retry at 21.9 s.
    assert f.p50_ms == pytest.approx(130.0) and f.p99_ms == pytest.approx(521.0)
    assert f.recovery_s == 5.0  # 40-45 still failing; from 45 on every window is whole


def test_a_fault_that_never_hurt_recovers_at_once_and_one_that_stays_never_does():
    assert measure.from_ledger(_run(fail_until=20), PHASES).recovery_s == 0.0
    assert measure.from_ledger(_run(fail_until=70), PHASES).recovery_s is None
    assert measure.recovery_s([], PHASES, 1.0) is None


def test_recovery_is_measured_against_the_warm_ups_success():
    # The warm-up itself confirmed only 80 %: 76 % is back (95 % of it).
    entries = [answer(t + 0.5, f"k{t}", 402 if t % 5 == 0 else 201) for t in range(70)]
    assert measure.from_ledger(entries, PHASES).recovery_s == 0.0


def test_amplification_is_calls_per_order():
    assert measure.amplification(130, 100) == 1.3
    assert math.isnan(measure.amplification(5, 0))


def test_payments_calls_are_every_post_it_answered():
    text = "\n".join(
        [
            "# TYPE http_requests_total counter",
            'http_requests_total{method="POST",route="/charges",service="payments",status="201"} 90.0',
            'http_requests_total{method="POST",route="unmatched",service="payments",status="500"} 10.0',
            'http_requests_total{method="POST",route="/charges/voids",service="payments",status="200"} 4.0',
            'http_requests_total{method="GET",route="/charges",service="payments",status="200"} 7.0',
            'http_requests_total{method="POST",route="/charges",service="orders",status="201"} 3.0',
        ]
    )
    assert collect.calls_received(text) == 104.0  # charges, voids, and what a fault answered
    assert collect.metric_sum(text, "http_requests_total", route="/charges") == 100.0


# --- which set did worse --------------------------------------------------------------------------------


def test_worse_and_better_beyond_the_noise_margin():
    p99, lost, recovery = measure.BY_KEY["p99_ms"], measure.BY_KEY["events_lost"], measure.BY_KEY["recovery_s"]
    success = measure.BY_KEY["success_rate"]
    assert measure.worse(p99, 100.0, 150.0) and not measure.worse(p99, 100.0, 115.0)  # margin max(20 ms, 20 %)
    assert measure.better(p99, 150.0, 100.0)
    assert measure.worse(lost, 0, 1) and not measure.worse(lost, 8, 10)  # 25 % of 8 is noise
    assert measure.worse(success, 0.97, 0.90) and not measure.worse(success, 0.97, 0.96)
    assert measure.worse(recovery, 5.0, None) and measure.better(recovery, None, 30.0)  # None: never recovered
    assert not measure.worse(p99, math.nan, 500.0)  # nothing to compare with


def test_changes_say_which_set_did_worse_than_the_one_before():
    a, b, c = (Figures(keys=1000, duplicate_orders=n) for n in (0, 12, 0))
    found = measure.changes(["A", "B", "C"], [a, b, c])
    lines = [x["line"] for x in found]
    assert "B worse than A on duplicate orders: 12 against 0 (1.2% of its orders against 0.0%)" in lines
    assert "C better than B on duplicate orders: 0 against 12 (0.0% of its orders against 1.2%)" in lines
    assert {x["verdict"] for x in found if x["set"] == "B"} == {"worse"}


def test_counts_of_harm_are_compared_per_order_of_the_run():
    # D took more orders, so more repeats: 167 of 3,300 is no worse than 115 of 2,800.
    c, d = Figures(keys=2800, duplicate_orders=115), Figures(keys=3300, duplicate_orders=167)
    assert not [x for x in measure.changes(["C", "D"], [c, d]) if x["measure"] == "duplicate_orders"]
    e = Figures(keys=2800, duplicate_orders=200)
    [line] = [x["line"] for x in measure.changes(["C", "E"], [c, e]) if x["measure"] == "duplicate_orders"]
    assert line.startswith("E worse than C on duplicate orders: 200 against 115")


# --- plots and the report ------------------------------------------------------------------------


def test_plots_are_svg_that_parse_with_a_bar_or_a_line_per_set():
    svg = plots.bar_chart("p99", ["A", "B", "C"], [120.0, None, math.nan], measure.BY_KEY["recovery_s"].show)
    root = ET.fromstring(svg)
    assert root.tag.endswith("svg")
    texts = [t.text for t in root.iter("{http://www.w3.org/2000/svg}text")]
    assert "never" in texts and "A" in texts and "120 s" in texts
    line = plots.line_chart("success", [("A", [(0, 1.0), (10, None), (20, 0.5), (30, 0.9)])], shade=(0, 20))
    polylines = list(ET.fromstring(line).iter("{http://www.w3.org/2000/svg}polyline"))
    circles = list(ET.fromstring(line).iter("{http://www.w3.org/2000/svg}circle"))
    assert len(polylines) == 1 and len(circles) == 1  # the gap cuts the line in two


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.open: list[str] = []
        self.svgs = 0
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.svgs += tag == "svg"
        if tag not in ("meta", "br", "rect", "line", "circle", "polyline", "stop", "img"):
            self.open.append(tag)

    def handle_endtag(self, tag):
        if tag in ("rect", "line", "circle", "polyline"):
            return
        assert self.open and self.open[-1] == tag, f"</{tag}> closes <{self.open[-1] if self.open else None}>"
        self.open.pop()

    def handle_data(self, data):
        self.text.append(data)


def _comparison(tmp_path: Path) -> Comparison:
    plan = Plan(FAULTS["payments-errors"], list(choose("A,F", [])), "ci", TIMINGS["ci"], 10, tmp_path)
    a = SetResult("A", "none", "no pattern", status="done", phases=PHASES)
    a.figures = measure.from_ledger(_run(fail_until=45), PHASES)
    a.figures.duplicate_orders, a.figures.double_charges, a.figures.amplification = 7, 5, 1.1
    a.load_average = 3.5
    f = SetResult("F", "all", "everything", status="done", phases=PHASES)
    f.figures = measure.from_ledger(_run(fail_until=20), PHASES)
    f.figures.amplification = 1.3
    return Comparison(plan, [a, f], started_at=0.0, wall_s=100.0)


def test_the_report_has_every_measure_a_plot_each_and_the_worse_lines(tmp_path):
    json_path, html_path = report.write(_comparison(tmp_path), tmp_path)
    data = json.loads(json_path.read_text())
    assert [m["key"] for m in data["measures"]] == [m.key for m in measure.MEASURES]
    for key in ("confirmed", "success_rate", "p99_ms", "amplification", "duplicate_orders", "double_charges"):
        assert key in data["sets"][0]["figures"]
    assert data["worse"] == ["F worse than A on retry amplification: 1.30× against 1.10×"]
    assert "F better than A on duplicate orders: 0 against 7 (0.0% of its orders against 10.0%)" in [
        c["line"] for c in data["changes"]
    ]
    html = html_path.read_text()
    page = _Page()
    page.feed(html)
    assert page.open == [] and page.svgs == len(measure.MEASURES) + 1  # the windows' plot too
    text = " ".join(page.text)
    for m in measure.MEASURES:
        assert m.title in text
    assert "F worse than A on retry amplification" in text
    assert "http://" not in html.replace("http://www.w3.org/2000/svg", "")  # nothing fetched


def test_an_interrupted_comparison_reports_the_sets_that_finished(tmp_path):
    comparison = _comparison(tmp_path)
    comparison.results[1].status = "interrupted"
    comparison.interrupted = True
    data = report.as_dict(comparison)
    assert data["interrupted"] and data["changes"] == []  # one finished set: nothing to compare
    assert "Interrupted" in report.render(comparison, data)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--sets", "A,Z"], "unknown set"),
        (["--patterns", "retries,caching"], "unknown pattern"),
        (["--fault", "payments-slow"], "unknown fault"),
        (["--profile", "staging"], "training or ci"),
        (["--duration", "soon"], "--duration takes a time"),
        (["--duration", "2s"], "between 5s and 1h"),
        (["--users", "0"], "--users"),
    ],
)
def test_bad_input_is_a_clear_error_with_exit_code_2(args, message, tmp_path):
    result = CliRunner().invoke(app, ["compare", *args, "--out", str(tmp_path / "out")])
    assert result.exit_code == 2, result.output
    assert message in " ".join((result.output + (result.stderr if result.stderr_bytes else "")).split())
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert not (tmp_path / "out").exists()  # refused before anything was started or written
