"""Judge one mutant with the harness: supervised runs of its cases, in batches.

Each batch is a real ``python -m harness run`` (workers, deadlines, hang and
crash verdicts), so a mutant is judged exactly as a user's implementation
would be.  Exit status 1 kills the mutant; 2 means the run could not be made
(a mutant that no longer loads is killed at load); 0 lets it survive the
batch.  A run that outlives its own deadline is a ``timeout``, and exit status 1
without a failing case in results.json is ``broken``: both are the harness's
fault, reported apart and never counted as kills.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from harness._mutation.mutants import Mutant
from harness._mutation.selection import batches
from harness._mutation.targets import Placement, Target

#: Seconds one batch run may take before it is a ``timeout``.
BATCH_TIMEOUT = 900.0


@dataclass(frozen=True)
class Judgement:
    """What the harness made of one mutant."""

    key: str
    status: str  # killed | survived | timeout | broken
    how: str  # the killing case and verdict, "does not load: …", or why it survived
    cases_run: int
    seconds: float


def judge(mutant: Mutant, case_ids: Sequence[str], workdir: Path, target: Target) -> Judgement:
    """Write the mutant, run its batches until one kills it; never raises for the mutant."""
    started = time.monotonic()
    home = workdir / f"mutant_{mutant.key.replace(':', '_')}"
    placement = target.materialise(home, (mutant.file or target.files[0], mutant.source))
    run = 0
    try:
        for batch in batches(case_ids):
            run += len(batch)
            status, how = _run_batch(placement, batch, workdir)
            if status != "survived":
                return Judgement(mutant.key, status, how, run, time.monotonic() - started)
        how = f"all {run} selected case(s) passed" if run else "no case selected"
        return Judgement(mutant.key, "survived", how, run, time.monotonic() - started)
    finally:
        shutil.rmtree(home, ignore_errors=True)


def _run_batch(placement: Placement, case_ids: Sequence[str], workdir: Path) -> tuple[str, str]:
    report = Path(tempfile.mkdtemp(prefix="batch-", dir=workdir))
    argv = [sys.executable, "-m", "harness", "run", "--impl", placement.spec, "--jobs", "1"]
    for case_id in case_ids:
        argv += ["--select", case_id]
    argv += ["--quiet", "--report-dir", str(report)]
    try:
        proc = subprocess.run(
            argv,
            capture_output=True,
            text=True,
            timeout=BATCH_TIMEOUT,
            env=placement.environ(),
            cwd=workdir,
        )
    except subprocess.TimeoutExpired:
        return "timeout", f"the run of {len(case_ids)} case(s) outlived {BATCH_TIMEOUT:g}s"
    try:
        if proc.returncode == 1:
            killer = _killer(report)
            if killer is None:  # exit 1 without a failing case: the harness itself broke
                tail = (proc.stderr.strip().splitlines() or ["exit status 1"])[-1]
                return "broken", f"the harness exited 1 without a failing case: {tail[:200]}"
            return "killed", killer
        if proc.returncode == 2:
            line = (proc.stderr.strip().splitlines() or ["exit status 2"])[-1]
            return "killed", f"the run could not be made: {line[:200]}"
        return "survived", ""
    finally:
        shutil.rmtree(report, ignore_errors=True)


def _killer(report: Path) -> str | None:
    """The first failing ``must`` case of a run, with its verdict and first finding."""
    try:
        results = json.loads((report / "results.json").read_text())["results"]
    except (OSError, ValueError, KeyError):
        return None
    for result in results:
        if (
            result.get("verdict") in ("fail", "hang", "crash")
            and result.get("strictness") == "must"
        ):
            findings = result.get("findings") or [{}]
            check = findings[0].get("check", "") if isinstance(findings[0], dict) else ""
            return f"{result['id']}: {result['verdict']} {check}".strip()
    return None
