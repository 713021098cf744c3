"""Shared fixtures: running the CLI in a subprocess, and mutant implementations."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent


class CliRun:
    """The outcome of one ``python -m harness`` subprocess."""

    def __init__(self, proc: subprocess.CompletedProcess[str], report_dir: Path | None) -> None:
        self.status = proc.returncode
        self.stdout = proc.stdout
        self.stderr = proc.stderr
        self.report_dir = report_dir

    def results(self) -> dict[str, Any]:
        """The run's results.json."""
        assert self.report_dir is not None
        return json.loads((self.report_dir / "results.json").read_text())

    def verdicts(self) -> dict[tuple[str, str], str]:
        """(impl, case id) -> verdict."""
        return {(r["impl"], r["id"]): r["verdict"] for r in self.results()["results"]}


@pytest.fixture
def cli(tmp_path: Path) -> Callable[..., CliRun]:
    """Run ``python -m harness ARGS`` with a deadline; ``run`` gets its own report dir."""

    def invoke(*args: str, timeout: float = 240.0) -> CliRun:
        report_dir = None
        argv = list(args)
        if argv and argv[0] == "run" and "--report-dir" not in argv:
            report_dir = tmp_path / f"report{len(list(tmp_path.iterdir()))}"
            argv += ["--report-dir", str(report_dir)]
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        proc = subprocess.run(
            [sys.executable, "-m", "harness", *argv],
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=tmp_path,
            env=env,
        )
        return CliRun(proc, report_dir)

    return invoke
