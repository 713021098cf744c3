"""bench.json and bench.svg: the document, its goal records, and the plot of it.

bench.json (schema ``sockspec-bench/1``)::

    {"schema", "started", "finished", "argv",
     "options": {"only", "reps", "duration", "quick", "clients"},
     "machine": {"python", "platform", "cpus", "loadavg_start", "loadavg_end"},
     "sections": {"<section>": {...its figures, "seconds"}},
     "goals": [{"section", "name", "value", "op", "limit", "unit", "met", "note"}]}

``met`` is None where a goal does not apply (``--quick`` runs a smaller
suite than the goal is about) or nothing was measured.
"""

from __future__ import annotations

import json
import os
import platform
import sys
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from harness._bench.echo import Side
from harness._bench.plot import Panel, budget_panel, render

SCHEMA = "sockspec-bench/1"


def document(options: dict[str, Any], argv: Sequence[str]) -> dict[str, Any]:
    """A new document, before any section ran."""
    return {
        "schema": SCHEMA,
        "started": datetime.now().isoformat(timespec="seconds"),
        "argv": ["sockspec", "bench", *argv],
        "options": options,
        "machine": {
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "loadavg_start": loadavg(),
        },
        "sections": {},
        "goals": [],
    }


def loadavg() -> list[float] | None:
    """The 1, 5 and 15 minute load averages (None where unknown)."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def machine_line(machine: dict[str, Any]) -> str:
    """``Python 3.11.7, 2 CPUs, load average ...``."""
    load = machine.get("loadavg_start")
    text = f"Python {machine['python']}, {machine['cpus']} CPUs"
    return text + (f", load average {load[0]:g} {load[1]:g} {load[2]:g}" if load else "")


def write_json(directory: Path, doc: dict[str, Any]) -> None:
    """Write bench.json atomically (rewritten after every section)."""
    path = directory / "bench.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(doc, indent=1, default=str))
    os.replace(tmp, path)


def goal_record(
    section: str,
    name: str,
    value: float | None,
    op: str,
    limit: float,
    unit: str,
    note: str = "",
    applies: bool = True,
) -> dict[str, Any]:
    """One goal record; ``met`` is None when it does not apply or nothing was measured."""
    met: bool | None = None
    if applies and value is not None:
        met = value <= limit if op == "<=" else value >= limit
    return {
        "section": section,
        "name": name,
        "value": value,
        "op": op,
        "limit": limit,
        "unit": unit,
        "met": met,
        "note": note,
    }


def errors_goal(
    section: str, rows: Sequence[dict[str, Any]], sides: Sequence[Side]
) -> dict[str, Any]:
    """How many rows had client errors (a benchmark with errors measures the errors)."""
    bad = [
        f"{r['row']} {s.label}: {r[s.label]['error_types']}"
        for r in rows
        if "ratios" in r
        for s in sides
        if r[s.label]["errors"]
    ]
    return goal_record(
        section, "rows with client errors", len(bad), "<=", 0, "rows", "; ".join(bad)
    )


def plot(doc: dict[str, Any]) -> str:
    """bench.svg for a bench.json document."""
    panels = []
    specs = (
        (
            "reference-vs-stdlib",
            "Reference over stdlib (> 1: reference faster)",
            ("throughput", "cpu_per_request"),
        ),
        ("instrumentation", "Instrumented over plain (goal ≥ 0.8)", ("throughput",)),
    )
    for name, title, figures in specs:
        section = doc["sections"].get(name)
        if not section:
            continue
        rows = tuple(
            (r["row"], tuple(_as_judged(r, f) for f in figures))
            for r in section["rows"]
            if "ratios" in r
        )
        panels.append(Panel(title, figures, rows))
    panels.append(budget_panel(doc["goals"]))
    return render(panels, f"sockspec bench {doc['started']}")


def _as_judged(row: dict[str, Any], figure: str) -> dict[str, Any] | None:
    """A row's ratio for ``figure``, ``noise`` if the row's repeat did not confirm it."""
    ratio: dict[str, Any] | None = row["ratios"].get(figure)
    if ratio and ratio.get("verdict") == "below" and figure not in row.get("below", [figure]):
        return {**ratio, "verdict": "noise"}
    return ratio
