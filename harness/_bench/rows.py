"""A comparison table: every row measured, judged, confirmed, and profiled if short.

A row's verdict is the worst of its *judged* figures (see
``_bench_stats.Ratio.verdict``).  Many rows times several figures make many
sign tests, and at p <= 0.05 some would come out ``below`` by chance alone;
so a row found ``below`` is measured again, from fresh servers, and a figure
stays ``below`` only if the repeat finds it so too (the first run's figures
stay in the row -- an unconfirmed one marked ``noise`` with ``unconfirmed``
-- and the repeat's go under ``confirmation``).  A confirmed row
is then profiled (``_bench_profile``) to show where the time goes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from harness._bench.echo import Row, Side, compare
from harness._bench.profile import format_profile, profile_row
from harness._bench.stats import worst
from harness._bench.text import header_line, row_line

Out = Callable[[str], None]


@dataclass(frozen=True)
class TableOptions:
    """How hard to measure: repetitions, window seconds, whether to profile."""

    reps: int
    duration: float
    profile: bool = True


def run_rows(
    rows: Sequence[Row],
    sides: Sequence[Side],
    figures: Sequence[tuple[str, bool]],
    goal: float,
    judged: Sequence[tuple[str, bool]],
    options: TableOptions,
    out: Out,
) -> dict[str, Any]:
    """Compare ``sides`` on every row and print each row as it is done."""
    a, b = sides[0].label, sides[1].label
    out(
        f"  ratios: {b} over {a}, oriented so that > 1 means {b} does better; "
        f"median [min..max] of {options.reps} paired repetitions of {options.duration:g} s; "
        f"goal >= {goal:g}"
    )
    out("  " + header_line(a, b))
    results = []
    for row in rows:
        r = _measure(row, sides, figures, goal, judged, options)
        out("  " + row_line(r, a, b))
        if r.get("verdict") == "below":
            again = _measure(row, sides, figures, goal, judged, options)
            out("  " + row_line({**again, "row": "  (repeat)"}, a, b))
            r["confirmation"] = {k: again.get(k) for k in ("ratios", "verdict", "below", a, b)}
            confirmed = [k for k in r["below"] if k in again.get("below", [])]
            for key in set(r["below"]) - set(confirmed):
                r["ratios"][key].update(verdict="noise", unconfirmed=True)
            r["below"] = confirmed
            r["verdict"] = "below" if confirmed else "noise"
            out(f"    {'confirmed: ' + ', '.join(r['below']) if r['below'] else 'not confirmed'}")
        if r.get("verdict") == "below" and options.profile:
            r["profile"] = profile_row(row, sides, max(options.duration * 3, 1.0))
            for line in format_profile(r["profile"], [a, b]):
                out(line)
        results.append(r)
    return {
        "sides": [s.__dict__ for s in sides],
        "reps": options.reps,
        "duration": options.duration,
        "goal": goal,
        "rows": results,
    }


def _measure(
    row: Row,
    sides: Sequence[Side],
    figures: Sequence[tuple[str, bool]],
    goal: float,
    judged: Sequence[tuple[str, bool]],
    options: TableOptions,
) -> dict[str, Any]:
    """One comparison of ``row``, judged; a server that fails becomes the row's ``error``."""
    try:
        r = compare(row, sides, options.reps, options.duration, figures, goal)
    except (OSError, RuntimeError) as exc:
        return {
            "row": row.label,
            **row.__dict__,
            "concurrency": row.concurrency,
            "error": f"{type(exc).__name__}: {exc}",
        }
    if "ratios" in r:
        verdicts = {key: r["ratios"][key]["verdict"] for key, _ in judged}
        r["verdict"] = worst(list(verdicts.values()))
        r["below"] = [key for key, v in verdicts.items() if v == "below"]
    return r
