"""How long a fuzz case shrinks its failure (``harness._fuzz.engine``)."""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any

import pytest

from harness._fuzz import engine
from harness._fuzz.engine import SHRINK_MIN, SHRINK_MIN_KNOWN, FuzzPlan, FuzzRun
from harness._fuzz.example import FuzzFailure
from harness._model.records import Finding


def _run(spec: str, checks: list[str]) -> FuzzRun:
    ctx: Any = SimpleNamespace(
        clock=SimpleNamespace(enabled=True, known={}),
        impl=SimpleNamespace(spec=spec),
        deadline=time.monotonic() + 1000.0,
    )
    run = FuzzRun(ctx, FuzzPlan(budget=1.0, examples=10, steps=12, wall_limit=5.0))
    run.found_after = 0.0
    run.smallest = FuzzFailure([Finding(check, "broken") for check in checks], ["1 step"])
    return run


def test_a_failure_an_earlier_case_already_shrank_shrinks_briefly(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A repeated symptom costs once: the first case with a failure of these checks
    shrinks it in full; later cases of the same implementation only briefly."""
    monkeypatch.setattr(engine, "_shrunk", {"impl.py": {"resources.fds"}})
    assert _run("impl.py", ["resources.fds"])._shrink_limit() < SHRINK_MIN_KNOWN + 1
    # Another check, or another implementation: shrunk in full.
    assert _run("impl.py", ["resources.fds", "lifecycle"])._shrink_limit() >= SHRINK_MIN / 2
    assert _run("other.py", ["resources.fds"])._shrink_limit() >= SHRINK_MIN / 2
