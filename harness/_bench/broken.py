"""The ``broken`` section: how long a wrong implementation takes to judge.

Every implementation in the project's table of broken implementations
(``tests/mutants``: one-edit mutations of this interpreter's socketserver.py)
is judged with the ``default`` profile, serially and with ``--jobs 2``, beside
``stdlib`` and ``reference`` in the same run, each as a ``python -m harness
run`` subprocess timed from the outside.

Whether phase deadlines changed the verdict set is told by a third run per
broken implementation, with ``--no-phase-deadlines``, of the cases in which a
phase mechanism acted (a hang at a phase deadline, a shortened deadline, a
client wait ended at its phase deadline, a dead serve thread's grace): in the
other cases nothing differs between the two modes.  Without phase deadlines
each such case may cost its whole 20 s deadline (hours for an implementation
whose every handler hangs), so at most ``BASELINE_CASES`` of them are re-judged,
spread over the scenarios and the mechanisms; the table says how many.

The table is test data, not part of the package (it encodes bugs and is made
from CPython's text at run time), so it is imported from the source checkout
by path; without a checkout the section reports itself ``pending``.
"""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from harness._bench.report import goal_record
from harness._bench.server import child_env

#: The checkout's tests folder (holds the ``mutants`` and ``helpers`` packages).
TESTS = Path(__file__).resolve().parents[2] / "tests"

#: A correct implementation's wall time before phase deadlines (README, default
#: profile, one implementation, serial / --jobs 2): "not slower than today".
TODAY = {1: 56.3, 2: 34.3}

#: The broken implementations of ``--quick`` (stalls in common paths) and its cases.
QUICK_MUTANTS = ("serve_thread_dies_on_first_error", "shutdown_never_returns", "server_close_hangs")
QUICK_SELECT = (
    "echo.concurrent",
    "shutdown.stops_loop",
    "shutdown.server_close",
    "errors.handler.exception",
)

RUN_TIMEOUT = 3600.0

FAILING = ("fail", "hang", "crash", "error")

#: Evidence keys by which a phase mechanism says it acted in a case.
INTERVENED = (
    "deadline_shortened",
    "client_phase_deadline",
    "client_wait_shortened",
    "death_signature",
    "hang_phase",
)

#: How many of an implementation's intervened cases the baseline re-judges.
BASELINE_CASES = 16

HEADER = f"  {'implementation':<44} {'serial':>8} {'ratio':>6} {'jobs2':>8} {'ratio':>6}  verdicts"

Out = Callable[[str], None]


def load_table() -> list[Any]:
    """The ``Mutant`` records of ``tests/mutants`` (empty without a checkout)."""
    if not (TESTS / "mutants").is_dir():
        return []
    if str(TESTS) not in sys.path:
        sys.path.insert(0, str(TESTS))
    return list(importlib.import_module("mutants").MUTANTS)


def judge(impl: str, jobs: int, select: Sequence[str], phases: bool = True) -> dict[str, Any]:
    """One timed run of ``impl`` (default profile); wall, exit status, verdict per case."""
    with tempfile.TemporaryDirectory(prefix="sockspec-broken-") as tmp:
        report = Path(tmp) / "report"
        argv = [sys.executable, "-m", "harness", "run", "--impl", impl, "--profile", "default"]
        argv += ["--jobs", str(jobs), "--quiet", "--report-dir", str(report)]
        argv += [a for glob in select for a in ("--select", glob)]
        if not phases:
            argv.append("--no-phase-deadlines")
        t0 = time.monotonic()
        proc = subprocess.run(
            argv, capture_output=True, text=True, timeout=RUN_TIMEOUT, env=child_env(), cwd=tmp
        )
        wall = time.monotonic() - t0
        try:
            results = json.loads((report / "results.json").read_text())["results"]
        except (OSError, ValueError, KeyError):
            results = []
    verdicts = {r["id"]: r["verdict"] for r in results}
    return {
        "wall": round(wall, 2),
        "exit_status": proc.returncode,
        "verdicts": verdicts,
        "intervened": {
            r["id"]: mechanism(r.get("evidence") or {})
            for r in results
            if any(k in (r.get("evidence") or {}) for k in INTERVENED)
        },
        "stderr": proc.stderr[-1000:] if proc.returncode not in (0, 1) else "",
    }


def mechanism(evidence: dict[str, Any]) -> str:
    """Which phase mechanism acted in a case (the first of ``INTERVENED`` it names)."""
    return next(k for k in INTERVENED if k in evidence)


def sample(intervened: dict[str, str], limit: int = BASELINE_CASES) -> list[str]:
    """Up to ``limit`` case ids, taken in turn from each (mechanism, scenario) group
    so that the sample covers every way and place the mechanisms acted."""
    groups: dict[tuple[str, str], list[str]] = {}
    for case, how in sorted(intervened.items()):
        groups.setdefault((how, case.split("[", 1)[0]), []).append(case)
    picked: list[str] = []
    queues = [list(g) for _, g in sorted(groups.items())]
    while len(picked) < limit and any(queues):
        for queue in queues:
            if queue and len(picked) < limit:
                picked.append(queue.pop(0))
    return picked


def baseline(spec: str, fast: dict[str, Any]) -> dict[str, Any]:
    """Re-judge a sample of the cases where phase mechanisms acted, without them;
    which verdicts changed, and which were lost (caught only without them)."""
    picked = sample(fast["intervened"])
    if not picked:
        return {"intervened": 0, "judged": 0, "wall": 0.0, "changed": [], "flipped": [], "lost": []}
    slow = judge(spec, 2, picked, phases=False)
    verdicts = fast["verdicts"]
    changed = sorted(
        f"{c}: {slow['verdicts'].get(c)} -> {verdicts.get(c)}"
        for c in picked
        if slow["verdicts"].get(c) != verdicts.get(c)
    )
    # A verdict lost: a case the slow run caught that the fast run passes.
    lost = sorted(
        c
        for c in picked
        if verdicts.get(c) in ("pass", "xfail") and slow["verdicts"].get(c) in FAILING
    )
    # Caught by one run and not the other (lost, or gained); a change between two
    # failing verdicts (a dead serve thread's ``hang`` becoming ``fail``) is not one.
    flipped = sorted(
        c for c in picked if (verdicts.get(c) in FAILING) != (slow["verdicts"].get(c) in FAILING)
    )
    return {
        "intervened": len(fast["intervened"]),
        "judged": len(picked),
        "wall": slow["wall"],
        "exit_status": slow["exit_status"],
        "changed": changed,
        "flipped": flipped,
        "lost": lost,
    }


def broken_section(quick: bool, out: Out, names: Sequence[str] = ()) -> dict[str, Any]:
    """Judge stdlib, reference and every broken implementation (or those ``names``d);
    the table and goals."""
    table = load_table()
    if not table:
        out("  PENDING: the table of broken implementations (tests/mutants) needs a checkout")
        return {"status": "pending", "goals": []}
    wanted = set(names) or (set(QUICK_MUTANTS) if quick else {m.name for m in table})
    unknown = wanted - {m.name for m in table}
    if unknown:
        raise ValueError(f"no broken implementation named {', '.join(sorted(unknown))}")
    table = [m for m in table if m.name in wanted]
    select = QUICK_SELECT if quick else ()
    rows: list[dict[str, Any]] = []
    clean: dict[int, float] = {}
    with tempfile.TemporaryDirectory(prefix="sockspec-mutants-") as tmp:
        specs = [("stdlib", "stdlib", True), ("reference", "reference", True)]
        for mutant in table:
            try:
                specs.append((mutant.name, str(mutant.write(Path(tmp))), False))
            except LookupError as exc:  # pattern absent in this interpreter's socketserver.py
                out(f"  skipped {mutant.name}: {exc}")
        out(HEADER)
        for name, spec, correct in specs:
            row: dict[str, Any] = {"impl": name, "correct": correct}
            runs = {}
            for jobs in (1, 2):
                run = runs[jobs] = judge(spec, jobs, select)
                if run["exit_status"] not in (0, 1):  # the run itself broke: say so
                    out(f"  {name}: --jobs {jobs} run ended with status {run['exit_status']}")
                row[f"jobs{jobs}"] = {
                    k: v for k, v in run.items() if k not in ("verdicts", "intervened")
                }
                row["verdicts"] = run["verdicts"]
                if correct:
                    clean[jobs] = max(clean.get(jobs, 0.0), run["wall"])
                row[f"ratio{jobs}"] = (
                    round(run["wall"] / clean[jobs], 2) if clean.get(jobs) else None
                )
            if correct:
                failures = false_failures(runs)
                row["false_failures"] = len(failures)
                row["false_failure_cases"] = failures
                row["unchanged"] = None
            else:
                row["no_phases"] = baseline(spec, runs[2])
                row["changed"] = row["no_phases"]["changed"]
                row["lost"] = row["no_phases"]["lost"]
                row["flipped"] = row["no_phases"]["flipped"]
                row["unchanged"] = not row["changed"]
            out(row_line(row))
            del row["verdicts"]
            rows.append(row)
    return {"rows": rows, "clean": clean, "select": list(select), "goals": goals_of(rows, quick)}


def false_failures(runs: dict[int, dict[str, Any]]) -> list[str]:
    """The failing cases of a correct implementation's runs, each named with its
    ``--jobs``: every run counts (a case that failed serially only is one too)."""
    return [
        f"{case} (--jobs {jobs})"
        for jobs, run in sorted(runs.items())
        for case, verdict in sorted(run["verdicts"].items())
        if verdict in FAILING
    ]


def row_line(row: dict[str, Any]) -> str:
    """One printed table line: wall times, ratios, verdict-set comparison."""
    if row["correct"]:
        what = f"{row['false_failures']} false failures"
        if row.get("false_failure_cases"):
            what += f": {'; '.join(row['false_failure_cases'][:3])}"
    else:
        base = row["no_phases"]
        of = f"{base['judged']} of {base['intervened']} cases re-judged without phase deadlines"
        if row["unchanged"]:
            what = f"unchanged ({of})"
        elif not row["flipped"]:
            what = (
                f"caught and passed alike, {len(row['changed'])} changed between failing "
                f"verdicts ({of}): {'; '.join(row['changed'][:2])}"
            )
        else:
            what = f"CHANGED ({len(row['lost'])} lost; {of}): {'; '.join(row['changed'][:3])}"
    r1, r2 = row["ratio1"], row["ratio2"]
    return (
        f"  {row['impl']:<44} {row['jobs1']['wall']:7.1f}s {r1 or 0:5.2f}x "
        f"{row['jobs2']['wall']:7.1f}s {r2 or 0:5.2f}x  {what}"
    )


def goals_of(rows: list[dict[str, Any]], quick: bool) -> list[dict[str, Any]]:
    """The section's goal records from its table rows."""
    broken = [r for r in rows if not r["correct"]]
    correct = [r for r in rows if r["correct"]]
    ratios = [r[f"ratio{j}"] or 0.0 for r in broken for j in (1, 2)]
    over = [r["impl"] for r in broken if max(r["ratio1"] or 0, r["ratio2"] or 0) > 2.0]
    flipped = [r["impl"] for r in broken if r.get("flipped")]
    kinds = [r["impl"] for r in broken if not r["unchanged"] and not r.get("flipped")]
    note = (
        "quick: a subset of cases and implementations; the goals are for default" if quick else ""
    )
    return [
        goal_record(
            "broken",
            "broken implementations over 2x the clean run",
            len(over),
            "<=",
            0,
            "impls",
            ", ".join(over) or note,
        ),
        goal_record(
            "broken",
            "worst ratio to the clean run",
            max(ratios, default=None),
            "<=",
            3.0,
            "x",
            note,
        ),
        goal_record(
            "broken",
            "verdicts lost (caught without phase deadlines, passed with them)",
            sum(len(r["lost"]) for r in broken),
            "<=",
            0,
            "cases",
            "; ".join(f"{r['impl']}: {', '.join(r['lost'][:3])}" for r in broken if r["lost"]),
        ),
        goal_record(
            "broken",
            "caught/passed changed by phase deadlines (re-judged cases)",
            len(flipped),
            "<=",
            0,
            "impls",
            ", ".join(flipped)
            + (f"; between failing verdicts only: {', '.join(kinds)}" if kinds else ""),
        ),
        goal_record(
            "broken",
            "correct implementation, serial, vs before phase deadlines",
            max((r["jobs1"]["wall"] for r in correct), default=None),
            "<=",
            TODAY[1],
            "s",
            note,
            not quick,
        ),
        goal_record(
            "broken",
            "correct implementation, --jobs 2, vs before phase deadlines",
            max((r["jobs2"]["wall"] for r in correct), default=None),
            "<=",
            TODAY[2],
            "s",
            note,
            not quick,
        ),
        goal_record(
            "broken",
            "false failures on stdlib and reference",
            sum(r["false_failures"] for r in correct),
            "<=",
            0,
            "cases",
        ),
    ]
