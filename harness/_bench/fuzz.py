"""Fuzz throughput: fuzz steps per second, per fuzz scenario and server kind.

The fuzz cases (scenarios whose id or module names ``fuzz``:
``scenarios/fuzz_stateful.py`` with ``harness/_fuzz/engine.py``) are run through
the command line with a fixed ``--fuzz-budget``, and the step count each
case reports is read back from results.json: first from the summary line
``harness._fuzz.engine.FuzzRun`` prints (``fuzz: N examples, S steps in X.XXs``),
which the worker keeps as the case's ``output`` evidence; failing that,
from a number under ``steps`` in the case's own evidence, with the time
under ``elapsed`` / ``seconds`` / ``duration`` if present, else the budget.
(Not from findings: there ``steps`` counts the shrunk example's steps.)

Hook: while no fuzz scenario exists the section reports
``status: "pending"`` and measures nothing.  Once the fuzz suite lands this
module needs no change while that summary line keeps its form (else adjust
``SUMMARY``, ``STEP_KEYS`` or ``TIME_KEYS``).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any

from harness._bench.server import child_env
from harness._execution.discovery import discover, select_cases
from harness._model.scenario import Case

FUZZ_WORD = "fuzz"
STATEFUL = "stateful"
STEP_KEYS = ("steps", "fuzz_steps", "step_count")
TIME_KEYS = ("elapsed", "seconds", "duration", "fuzz_seconds")
MAX_CASES = 12
SUMMARY = re.compile(r"fuzz: (\d+) examples, (\d+) steps in ([0-9.]+)s")


def fuzz_cases(profile: str = "stress") -> list[Case]:
    """The fuzz cases there are (in ``profile`` and below): scenarios whose id or module
    says ``fuzz``."""
    specs = [s for s in discover() if FUZZ_WORD in s.id or FUZZ_WORD in s.module]
    return select_cases(specs, (), profile)


def pick(cases: list[Case], limit: int = MAX_CASES) -> list[Case]:
    """At most ``limit`` cases: stateful ones first, each group spread over server kinds."""
    out: list[Case] = []
    for group in (
        [c for c in cases if STATEFUL in c.spec.id],
        [c for c in cases if STATEFUL not in c.spec.id],
    ):
        by_kind: dict[str, list[Case]] = defaultdict(list)
        for case in group:
            by_kind[case.kind].append(case)
        while len(out) < limit and any(by_kind.values()):
            for kind in list(by_kind):
                if by_kind[kind] and len(out) < limit:
                    out.append(by_kind[kind].pop(0))
    return out


def find_number(evidence: Any, keys: tuple[str, ...]) -> float | None:
    """The first number found under one of ``keys`` in nested dicts/lists, or None."""
    if isinstance(evidence, dict):
        for key in keys:
            value = evidence.get(key)
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                return float(value)
        children: Any = evidence.values()
    elif isinstance(evidence, list):
        children = evidence
    else:
        return None
    for child in children:
        found = find_number(child, keys)
        if found is not None:
            return found
    return None


def fuzz_throughput(impl: str, budget: float, limit: int = MAX_CASES) -> dict[str, Any]:
    """Run up to ``limit`` fuzz cases with ``budget`` seconds each; steps/s per scenario
    and kind."""
    try:
        cases = pick(fuzz_cases(), limit)
    except Exception as exc:  # a fuzz module still being written may not import
        return {"status": "error", "message": f"discovering fuzz cases failed: {exc}"}
    if not cases:
        return {
            "status": "pending",
            "message": "no fuzz scenario found (no scenario id or module names 'fuzz'): "
            "hook in harness/_bench/fuzz.py, nothing measured",
        }
    results, stderr = _run(impl, budget, [c.id for c in cases])
    if not results:
        return {"status": "error", "message": f"the fuzz run wrote no results: {stderr}"}
    return {"status": "ok", "impl": impl, "budget": budget, **_per_group(results, budget)}


def _run(impl: str, budget: float, ids: list[str]) -> tuple[list[dict[str, Any]], str]:
    """The results of ``python -m harness run`` on ``ids``, and the tail of its stderr."""
    with tempfile.TemporaryDirectory(prefix="sockspec-fuzz-") as tmp:
        report = Path(tmp) / "report"
        argv = [sys.executable, "-m", "harness", "run", "--impl", impl, "--profile", "stress"]
        argv += ["--fuzz-budget", str(budget), "--quiet", "--report-dir", str(report)]
        for case_id in ids:
            argv += ["--select", case_id]
        env = child_env()
        proc = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            env=env,
            cwd=tmp,
            timeout=120 + 4 * budget * len(ids),
        )
        try:
            results: list[dict[str, Any]] = json.loads((report / "results.json").read_text())[
                "results"
            ]
        except (OSError, ValueError, KeyError):
            return [], proc.stderr.strip()[-500:]
    return results, ""


def _steps(evidence: dict[str, Any], budget: float) -> tuple[float | None, float]:
    """(steps, seconds) of one case: from the printed summary, else from its evidence."""
    runs = SUMMARY.findall(str(evidence.get("output") or ""))
    if runs:
        return sum(float(s) for _e, s, _t in runs), sum(float(t) for _e, _s, t in runs)
    steps = find_number(evidence, STEP_KEYS)
    return steps, (find_number(evidence, TIME_KEYS) or budget)


def _per_group(results: list[dict[str, Any]], budget: float) -> dict[str, Any]:
    groups: dict[str, dict[str, float]] = defaultdict(lambda: {"steps": 0.0, "seconds": 0.0})
    cases, missing = [], []
    for r in results:
        steps, seconds = _steps(r.get("evidence") or {}, budget)
        if steps is None:
            missing.append(r["id"])
            continue
        group = f"{r.get('scenario', '?')} {r.get('params', {}).get('kind', '?')}"
        groups[group]["steps"] += steps
        groups[group]["seconds"] += seconds
        cases.append(
            {
                "id": r["id"],
                "verdict": r.get("verdict"),
                "steps": steps,
                "seconds": seconds,
                "steps_per_s": steps / seconds if seconds else None,
            }
        )
    per_group = {
        k: {**v, "steps_per_s": v["steps"] / v["seconds"] if v["seconds"] else None}
        for k, v in groups.items()
    }
    return {"groups": per_group, "cases": cases, "without_steps": missing}
