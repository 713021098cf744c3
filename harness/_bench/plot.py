"""bench.svg: the benchmark's ratios as horizontal bars, written by hand (no dependency).

One panel per comparison.  Each row shows one bar per figure, from 1 to the
median ratio on a log2 axis (right of 1: the second side does better),
with a whisker over the repetitions' min..max and a dashed line at the
goal.  Bars are green when the median meets the goal, amber when it misses
within noise and red when it misses consistently (sign test; see
``_bench_stats.Ratio``).  A last panel shows budgets: each goal with an
upper limit as the fraction of it used (at most 1 meets the goal).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape
from typing import Any

WIDTH = 900
LABEL = 340
PAD = 24
BAR = 9
TITLE = 34
LO, HI = 0.25, 4.0
COLOURS = {"ok": "#2e7d32", "noise": "#f9a825", "below": "#c62828", "n/a": "#9e9e9e"}
FIGURE_SHADES = ("", "77")  # second figure of a row drawn lighter


@dataclass(frozen=True)
class Panel:
    """A titled list of rows, each with one ratio (JSON form of ``Ratio``) per figure."""

    title: str
    figures: tuple[str, ...]
    rows: tuple[tuple[str, tuple[dict[str, Any] | None, ...]], ...]


def _x(value: float) -> float:
    clipped = min(max(value, LO), HI)
    span = math.log2(HI) - math.log2(LO)
    return LABEL + (math.log2(clipped) - math.log2(LO)) / span * (WIDTH - LABEL - PAD)


def _panel(panel: Panel, top: float) -> tuple[list[str], float]:
    per_row = BAR * len(panel.figures) + 6
    height = TITLE + per_row * max(len(panel.rows), 1) + 20
    out = [
        f'<text x="8" y="{top + 16}" font-size="13" font-weight="bold">'
        f"{escape(panel.title)}</text>",
        f'<text x="8" y="{top + 29}" fill="#555">bars: '
        + escape(
            ", ".join(
                f"{f} ({'solid' if i == 0 else 'light'})" for i, f in enumerate(panel.figures)
            )
        )
        + "; whisker: min..max over repetitions</text>",
    ]
    body_top, body_bottom = top + TITLE, top + height - 20
    for tick in (0.25, 0.5, 0.8, 1.0, 1.25, 2.0, 4.0):
        x = _x(tick)
        stroke = "#555" if tick == 1.0 else "#dde"
        out.append(
            f'<line x1="{x:.1f}" y1="{body_top}" x2="{x:.1f}" y2="{body_bottom}" '
            f'stroke="{stroke}"/>'
            f'<text x="{x:.1f}" y="{body_bottom + 13}" text-anchor="middle" fill="#555">'
            f"{tick:g}</text>"
        )
    for n, (label, ratios) in enumerate(panel.rows):
        y = body_top + n * per_row
        out.append(f'<text x="8" y="{y + BAR + 2}" fill="#222">{escape(label[:52])}</text>')
        for k, ratio in enumerate(ratios):
            out += _bar(ratio, y + k * BAR + 2, FIGURE_SHADES[min(k, 1)], panel.figures[k])
    return out, height


def _bar(ratio: dict[str, Any] | None, y: float, shade: str, figure: str) -> list[str]:
    if not ratio or ratio.get("median") is None:
        return [f'<text x="{_x(1.0) + 4:.1f}" y="{y + BAR - 1}" fill="#999">n/a</text>']
    median, goal = float(ratio["median"]), float(ratio.get("goal", 1.0))
    x0, x1 = sorted((_x(1.0), _x(median)))
    colour = COLOURS.get(str(ratio.get("verdict")), "#9e9e9e") + shade
    tip = (
        f"{figure}: median {median:.3f} (min {ratio.get('min')}, max {ratio.get('max')}), "
        f"goal ≥ {goal:g}, {ratio.get('verdict')}"
    )
    out = [
        f"<g><title>{escape(tip)}</title>"
        f'<rect x="{x0:.1f}" y="{y:.1f}" width="{max(x1 - x0, 1.5):.1f}" height="{BAR - 2}" '
        f'fill="{colour}"/>'
    ]
    low, high = ratio.get("min"), ratio.get("max")
    if low is not None and high is not None:
        mid = y + (BAR - 2) / 2
        out.append(
            f'<line x1="{_x(float(low)):.1f}" y1="{mid:.1f}" x2="{_x(float(high)):.1f}" '
            f'y2="{mid:.1f}" stroke="#333"/>'
        )
    text_x = min(max(x1, _x(float(high)) if high is not None else x1) + 4, WIDTH - 26)
    out.append(
        f'<text x="{text_x:.1f}" y="{y + BAR - 2:.1f}" font-size="9" fill="#333">'
        f"{median:.2f}</text>"
    )
    gx = _x(goal)
    out.append(
        f'<line x1="{gx:.1f}" y1="{y - 1:.1f}" x2="{gx:.1f}" y2="{y + BAR:.1f}" '
        f'stroke="#000" stroke-dasharray="2,2"/></g>'
    )
    return out


def budget_panel(goals: Sequence[dict[str, Any]]) -> Panel:
    """Goals with an upper limit, as ratios ``limit / value`` (>= 1 meets the goal)."""
    rows = []
    for g in goals:
        value, limit = g.get("value"), g.get("limit")
        if g.get("op") != "<=" or not isinstance(value, (int, float)) or not limit or value <= 0:
            continue
        ratio = limit / value
        met = g.get("met")
        verdict = "n/a" if met is None else ("ok" if met else "below")
        rows.append(
            (
                f"{value:.3g} of {limit:g} {g.get('unit', '')}: {g['name']}",
                ({"median": ratio, "min": None, "max": None, "goal": 1.0, "verdict": verdict},),
            )
        )
    return Panel("Budgets: limit / measured (≥ 1 meets the goal)", ("headroom",), tuple(rows))


def render(panels: Sequence[Panel], title: str) -> str:
    """The whole SVG document."""
    parts: list[str] = []
    top = 30.0
    for panel in panels:
        if not panel.rows:
            continue
        body, height = _panel(panel, top)
        parts += body
        top += height + 10
    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{top:.0f}" '
        f'viewBox="0 0 {WIDTH} {top:.0f}" font-family="sans-serif" font-size="11">'
        f"<title>{escape(title)}</title>"
        f'<rect width="{WIDTH}" height="{top:.0f}" fill="#fff"/>'
        f'<text x="8" y="18" font-size="15" font-weight="bold">{escape(title)}</text>'
    )
    return head + "".join(parts) + "</svg>\n"
