"""Inline SVG plots for the comparison's report, drawn by hand: nothing fetched, no library.

Sized for a projector: large type, thick marks, one colour per set that stays the same
in every plot (Okabe and Ito's palette, told apart with colour blindness too), and each
value written on its bar, so no plot needs its axis read.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from html import escape

# Okabe-Ito: blue, vermillion, bluish green, orange, reddish purple, sky blue, yellow, black.
COLOURS = ("#0072B2", "#D55E00", "#009E73", "#E69F00", "#CC79A7", "#56B4E9", "#F0E442", "#000000")
# Line styles too, so lines that lie on one another (every set at 100 %) still show.
DASHES = ("", "14 6", "4 6", "14 6 4 6", "24 8", "2 4", "", "8 8")
WIDTH, HEIGHT = 720, 380
FONT = "font-family='system-ui, sans-serif'"


def colour(index: int) -> str:
    return COLOURS[index % len(COLOURS)]


def _text(x: float, y: float, text: str, size: int = 20, anchor: str = "middle", weight: str = "normal") -> str:
    return (
        f"<text x='{x:.1f}' y='{y:.1f}' font-size='{size}' text-anchor='{anchor}' "
        f"font-weight='{weight}' {FONT} fill='#111'>{escape(text)}</text>"
    )


def _nice_top(value: float) -> float:
    """A round number at or above `value`, for the top of an axis."""
    if value <= 0:
        return 1.0
    magnitude = 10 ** math.floor(math.log10(value))
    for step in (1, 1.2, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10):
        if step * magnitude >= value:
            return step * magnitude
    return 10 * magnitude


def bar_chart(
    title: str,
    labels: Sequence[str],
    values: Sequence[float | None],
    show: Callable[[float | None], str],
    *,
    note: str = "",
    percent: bool = False,
) -> str:
    """One bar per set, its value written above it. A value of None is drawn as a full,
    hatched bar (`never`, for a recovery that did not come); NaN as no bar at all."""
    left, right, top, bottom = 40, 20, 100, 60
    plot_w, plot_h = WIDTH - left - right, HEIGHT - top - bottom
    finite = [v for v in values if v is not None and not math.isnan(v)]
    scale_top = 1.0 if percent else _nice_top(max(finite, default=0.0))
    slot = plot_w / max(1, len(labels))
    bar_w = min(110.0, slot * 0.6)
    parts = [
        f"<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 {WIDTH} {HEIGHT}' role='img' "
        f"aria-label='{escape(title, quote=True)}'>",
        "<defs><pattern id='never' width='12' height='12' patternUnits='userSpaceOnUse' "
        "patternTransform='rotate(45)'><rect width='12' height='12' fill='#ddd'/>"
        "<line x1='0' y1='0' x2='0' y2='12' stroke='#888' stroke-width='6'/></pattern></defs>",
        _text(WIDTH / 2, 34, title, 24, weight="bold"),
    ]
    if note:
        parts.append(_text(WIDTH / 2, 58, note, 16))
    base = top + plot_h
    parts.append(f"<line x1='{left}' y1='{base}' x2='{WIDTH - right}' y2='{base}' stroke='#111' stroke-width='2'/>")
    for i, (label, value) in enumerate(zip(labels, values, strict=True)):
        x = left + slot * i + (slot - bar_w) / 2
        centre = x + bar_w / 2
        if value is None:
            parts.append(
                f"<rect x='{x:.1f}' y='{top}' width='{bar_w:.1f}' height='{plot_h}' fill='url(#never)' "
                f"stroke='{colour(i)}' stroke-width='4'/>"
            )
            parts.append(_text(centre, top - 8, show(value), 22, weight="bold"))
        elif not math.isnan(value):
            height = max(2.0, plot_h * min(1.0, max(0.0, value) / scale_top)) if value > 0 else 0.0
            parts.append(
                f"<rect x='{x:.1f}' y='{base - height:.1f}' width='{bar_w:.1f}' height='{height:.1f}' "
                f"fill='{colour(i)}'/>"
            )
            parts.append(_text(centre, base - height - 10, show(value), 22, weight="bold"))
        else:
            parts.append(_text(centre, base - 10, "-", 22))
        parts.append(_text(centre, base + 32, label, 24, weight="bold"))
    parts.append("</svg>")
    return "".join(parts)


def line_chart(
    title: str,
    series: Sequence[tuple[str, Sequence[tuple[float, float | None]]]],
    *,
    shade: tuple[float, float] | None = None,
    note: str = "",
) -> str:
    """Success (0-1) against time: one line per set, a gap where a window had no order;
    `shade` marks the fault's time (x from, x to)."""
    left, right, top, bottom = 70, 20, 70, 90
    plot_w, plot_h = WIDTH - left - right, HEIGHT - top - bottom
    xs = [x for _name, points in series for x, _y in points]
    if shade:
        xs += list(shade)
    x0, x1 = (min(xs), max(xs)) if xs else (0.0, 1.0)
    span = (x1 - x0) or 1.0

    def px(x: float) -> float:
        return left + plot_w * (x - x0) / span

    def py(y: float) -> float:
        return top + plot_h * (1 - max(0.0, min(1.0, y)))

    parts = [
        f"<svg xmlns='http://www.w3.org/2000/svg' viewBox='0 0 {WIDTH} {HEIGHT}' role='img' "
        f"aria-label='{escape(title, quote=True)}'>",
        _text(WIDTH / 2, 34, title, 24, weight="bold"),
    ]
    if note:
        parts.append(_text(WIDTH / 2, 58, note, 16))
    if shade:
        parts.append(
            f"<rect x='{px(shade[0]):.1f}' y='{top}' width='{px(shade[1]) - px(shade[0]):.1f}' height='{plot_h}' "
            "fill='#f4d6d6'/>"
        )
        parts.append(_text((px(shade[0]) + px(shade[1])) / 2, top + plot_h - 10, "fault", 18, weight="bold"))
    for share in (0.0, 0.5, 1.0):
        y = py(share)
        parts.append(f"<line x1='{left}' y1='{y:.1f}' x2='{WIDTH - right}' y2='{y:.1f}' stroke='#bbb'/>")
        parts.append(_text(left - 8, y + 7, f"{share:.0%}", 18, anchor="end"))
    for tick in _ticks(x0, x1):
        parts.append(_text(px(tick), top + plot_h + 26, f"{tick:g}s", 16))
    for i, (name, points) in enumerate(series):
        for run in _runs(points):
            path = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in run)
            if len(run) == 1:
                x, y = run[0]
                parts.append(f"<circle cx='{px(x):.1f}' cy='{py(y):.1f}' r='5' fill='{colour(i)}'/>")
            else:
                dash = DASHES[i % len(DASHES)]
                style = f" stroke-dasharray='{dash}'" if dash else ""
                parts.append(
                    f"<polyline points='{path}' fill='none' stroke='{colour(i)}' stroke-width='4' "
                    f"stroke-linejoin='round'{style}/>"
                )
        lx = left + i * min(110, plot_w / max(1, len(series)))
        dash = DASHES[i % len(DASHES)]
        style = f" stroke-dasharray='{dash}'" if dash else ""
        parts.append(
            f"<line x1='{lx:.1f}' y1='{HEIGHT - 25}' x2='{lx + 40:.1f}' y2='{HEIGHT - 25}' stroke='{colour(i)}' "
            f"stroke-width='5'{style}/>"
        )
        parts.append(_text(lx + 46, HEIGHT - 18, name, 20, anchor="start", weight="bold"))
    parts.append("</svg>")
    return "".join(parts)


def _runs(points: Sequence[tuple[float, float | None]]) -> list[list[tuple[float, float]]]:
    """The points cut where a value is missing, so a line never bridges a gap."""
    runs: list[list[tuple[float, float]]] = [[]]
    for x, y in points:
        if y is None:
            if runs[-1]:
                runs.append([])
        else:
            runs[-1].append((x, y))
    return [r for r in runs if r]


def _ticks(x0: float, x1: float) -> list[float]:
    step = _nice_top((x1 - x0) / 6) if x1 > x0 else 1.0
    first = math.ceil(x0 / step) * step
    return [round(first + k * step, 6) for k in range(int((x1 - first) // step) + 1)]
