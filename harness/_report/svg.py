"""The timeline picture: handler intervals as an inline SVG, one lane per thread or process.

Input is the ``timeline`` evidence of a case (see ``_wirelog.timeline``): a list
of ``{conn, pid, thread, start, end, raised}`` with times in seconds from the
start of the case.  Each interval is a bar in the lane of its (pid, thread);
bars whose ``handle`` raised are red and marked with a triangle.  Every bar has
a tooltip.  At most ``MAX_LANES`` lanes and ``MAX_BARS`` bars are drawn (a note
says how many more there were), so a case of thousands of requests stays
small.  Colours are attributes, so the picture needs no stylesheet.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape
from typing import Any

WIDTH = 960
LABEL = 200
PAD = 16
AXIS = 24
MAX_LANES = 40
#: Bars drawn in all: enough to see the shape, few enough to keep a page small.
MAX_BARS = 60
OK_FILL = "#4f7cac"
RAISED_FILL = "#c62828"


@dataclass(frozen=True)
class Interval:
    """One handler interval (``handle`` call to return or raise)."""

    conn: int | None
    pid: int | None
    thread: str
    start: float
    end: float
    raised: str


def intervals(raw: Any) -> list[Interval]:
    """The usable intervals of a ``timeline`` evidence value; anything odd is skipped."""
    out = []
    for item in raw if isinstance(raw, list) else []:
        if not isinstance(item, dict):
            continue
        try:
            start, end = float(item["start"]), float(item["end"])
        except (KeyError, TypeError, ValueError):
            continue
        if not (math.isfinite(start) and math.isfinite(end)):
            continue
        conn, pid = item.get("conn"), item.get("pid")
        out.append(
            Interval(
                conn=conn if isinstance(conn, int) else None,
                pid=pid if isinstance(pid, int) else None,
                thread=str(item.get("thread") or ""),
                start=start,
                end=max(start, end),
                raised=str(item.get("raised") or ""),
            )
        )
    return out


def timeline_svg(raw: Any) -> str:
    """The SVG markup for a ``timeline`` evidence value, or '' when it has no intervals."""
    bars = intervals(raw)
    if not bars:
        return ""
    lanes = _lanes(bars)
    shown = list(lanes)[:MAX_LANES]
    lane_h = 18 if len(shown) <= 30 else max(4, min(18, 540 // len(shown)))
    drawn = sum(len(lanes[key]) for key in shown)
    cut = len(lanes) > MAX_LANES or drawn > MAX_BARS
    height = AXIS + lane_h * len(shown) + 8 + (14 if cut else 0)
    t0 = min(0.0, min(b.start for b in bars))
    t1 = max(b.end for b in bars)
    scale = _Scale(t0, t1, LABEL, WIDTH - PAD)
    label = f"Handler intervals of {len(bars)} connection(s) on {len(lanes)} lane(s)"
    parts = [
        f'<svg class="timeline" role="img" '
        f'width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" '
        f'font-family="sans-serif" font-size="11"><title>{escape(label)}</title>'
    ]
    parts += _axis(scale, height)
    names = _lane_names(shown)
    bars_drawn = 0
    for n, key in enumerate(shown):
        y = AXIS + n * lane_h
        if n % 2:
            parts.append(f'<rect x="0" y="{y}" width="{WIDTH}" height="{lane_h}" fill="#f3f5f8"/>')
        if lane_h >= 10:
            parts.append(
                f'<text x="4" y="{y + lane_h - 5}" fill="#333">{escape(names[key][:32])}</text>'
            )
        room = max(0, MAX_BARS - bars_drawn)
        parts += [_bar(b, scale, y, lane_h) for b in lanes[key][:room]]
        bars_drawn += min(room, len(lanes[key]))
    if cut:
        more = len(lanes) - len(shown)
        note = f"… {more} more lane(s), " if more else "… "
        note += f"{len(bars) - bars_drawn} interval(s) not drawn"
        parts.append(f'<text x="4" y="{height - 4}" fill="#555">{note}</text>')
    parts.append("</svg>")
    return "".join(parts)


class _Scale:
    """Seconds to x pixels, with round tick steps in ms or s."""

    def __init__(self, t0: float, t1: float, x0: float, x1: float) -> None:
        self.t0, self.span = t0, max(t1 - t0, 1e-6)
        self.x0, self.x1 = x0, x1
        self.unit, self.factor = ("s", 1.0) if self.span >= 10 else ("ms", 1000.0)
        raw = self.span * self.factor / 8
        power = 10 ** math.floor(math.log10(raw))
        self.step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw) / self.factor

    def x(self, t: float) -> float:
        """The x coordinate of time ``t``."""
        return self.x0 + (t - self.t0) / self.span * (self.x1 - self.x0)

    def ticks(self) -> list[float]:
        """Tick times from the start to the end."""
        first = math.ceil(self.t0 / self.step) * self.step
        count = int((self.t0 + self.span - first) / self.step + 1e-9) + 1
        return [first + k * self.step for k in range(count)]

    def text(self, t: float) -> str:
        """A tick label."""
        value = t * self.factor
        return f"{value:g} {self.unit}" if abs(value) >= 1e-9 else "0"


def _axis(scale: _Scale, height: int) -> list[str]:
    out = []
    for t in scale.ticks():
        x = round(scale.x(t), 1)
        out.append(f'<line x1="{x}" y1="{AXIS - 4}" x2="{x}" y2="{height}" stroke="#dde"/>')
        out.append(
            f'<text x="{x}" y="{AXIS - 8}" text-anchor="middle" fill="#555">'
            f"{escape(scale.text(t))}</text>"
        )
    return out


def _bar(b: Interval, scale: _Scale, y: int, lane_h: int) -> str:
    x = scale.x(b.start)
    w = max(1.5, scale.x(b.end) - x)
    h = max(2, lane_h - 4)
    fill = RAISED_FILL if b.raised else OK_FILL
    who = f"conn#{b.conn}" if b.conn is not None else "conn ?"
    tip = f"{who} pid {b.pid} {b.thread}: {b.start * 1000:.3f}–{b.end * 1000:.3f} ms"
    tip += f", raised {b.raised}" if b.raised else ", returned"
    css = "bar raised" if b.raised else "bar"
    out = [
        f'<g class="{css}"><title>{escape(tip)}</title>'
        f'<rect x="{x:.1f}" y="{y + 2}" width="{w:.1f}" height="{h}" fill="{fill}" rx="1"/>'
    ]
    if b.raised:
        end = x + w
        out.append(
            f'<polygon points="{end - 4:.1f},{y} {end + 4:.1f},{y} {end:.1f},{y + 5}" fill="#000"/>'
        )
    if w >= 28 and h >= 10 and b.conn is not None:
        out.append(f'<text x="{x + 3:.1f}" y="{y + h - 1}" fill="#fff">#{b.conn}</text>')
    out.append("</g>")
    return "".join(out)


def _lanes(bars: Sequence[Interval]) -> dict[tuple[int | None, str], list[Interval]]:
    lanes: dict[tuple[int | None, str], list[Interval]] = {}
    for bar in sorted(bars, key=lambda b: b.start):
        lanes.setdefault((bar.pid, bar.thread), []).append(bar)
    return lanes


def _lane_names(keys: Sequence[tuple[int | None, str]]) -> dict[tuple[int | None, str], str]:
    """Lane labels that say only what tells the lanes apart."""
    pids = {pid for pid, _ in keys}
    threads = {thread for _, thread in keys}
    suffixes = {re.sub(r"^.*?(\s*\([^()]*\))?$", r"\1", t) for t in threads}
    common = suffixes.pop() if len(suffixes) == 1 else ""
    names = {}
    for pid, full in keys:
        thread = full[: len(full) - len(common)] if common else full
        if len(pids) == 1:
            names[(pid, full)] = thread or f"pid {pid}"
        elif len(threads) == 1:
            names[(pid, full)] = f"pid {pid}"
        else:
            names[(pid, full)] = f"pid {pid} · {thread}"
    return names
