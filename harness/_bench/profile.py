"""Where the time goes: cProfile of both sides' server processes for one row.

When a comparison row falls short of its goal consistently, ``bench``
serves the row once more for each side with every thread of the server
process under cProfile, timed by each thread's CPU clock (forked children
are not profiled), drives it for one window, and reports per request: the
functions with the most own CPU time, and own time summed by source file --
so that the side that is slower shows *which* of its functions costs more.
(cProfile's own cost inflates every figure; compare the sides, not the
absolute numbers.)
"""

from __future__ import annotations

import os
import pstats
import tempfile
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from harness._bench.echo import Row, Side, measure, server_config
from harness._bench.server import BenchServer

TOP = 12


def profile_row(row: Row, sides: Sequence[Side], duration: float) -> dict[str, Any]:
    """Profile ``row`` on each side; per-request own time by function and by file (µs)."""
    out: dict[str, Any] = {"row": row.label, "duration": duration}
    with tempfile.TemporaryDirectory(prefix="sockspec-prof-") as tmp:
        for side in sides:
            path = os.path.join(tmp, f"{side.label}.pstats")
            config = replace(server_config(side, row, tmp), profile=path)
            with BenchServer(config) as server:
                result = measure(server.endpoint, row, duration, tmp)
            out[side.label] = _summary(path, result["requests"])
    return out


def _summary(path: str, requests: int) -> dict[str, Any]:
    if not os.path.exists(path) or not requests:
        return {"requests": requests, "top": [], "by_file": {}}
    raw: dict[Any, Any] = pstats.Stats(path).stats  # type: ignore[attr-defined]
    rows = []
    files: dict[str, float] = defaultdict(float)
    for (filename, line, name), (_cc, ncalls, tottime, cumtime, _callers) in raw.items():
        where = _short(filename)
        files[where] += tottime
        rows.append(
            {
                "function": f"{where}:{line}({name})",
                "calls_per_request": ncalls / requests,
                "own_us_per_request": tottime / requests * 1e6,
                "cum_us_per_request": cumtime / requests * 1e6,
            }
        )
    rows.sort(key=lambda r: r["own_us_per_request"], reverse=True)
    by_file = {f: t / requests * 1e6 for f, t in sorted(files.items(), key=lambda kv: -kv[1])[:TOP]}
    return {"requests": requests, "top": rows[:TOP], "by_file": by_file}


def _short(filename: str) -> str:
    """``servers/_base.py``, ``socketserver.py``, ``threading.py``, ``~`` for built-ins."""
    if filename == "~":
        return "<built-in>"
    parts = filename.replace(os.sep, "/").split("/")
    return "/".join(parts[-2:]) if parts[-2:-1] in (["servers"], ["harness"]) else parts[-1]


def format_profile(profile: dict[str, Any], sides: Sequence[str]) -> list[str]:
    """Printable lines: own time per request by file, then the top functions, per side."""
    lines = [
        f"    profile of {profile['row']} ({profile['duration']:g} s window, CPU µs per request):"
    ]
    for side in sides:
        data = profile.get(side) or {}
        files = ", ".join(f"{f} {t:.1f}" for f, t in list(data.get("by_file", {}).items())[:6])
        lines.append(f"      {side} by file: {files}")
        for row in data.get("top", [])[:6]:
            lines.append(
                f"        {row['own_us_per_request']:8.1f} own {row['cum_us_per_request']:8.1f} cum"
                f"  {row['calls_per_request']:5.1f} calls  {row['function']}"
            )
    return lines
