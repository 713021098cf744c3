"""Running ``python -m harness`` in a subprocess, as a user would."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from helpers import ROOT


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


def run_cli(workdir: Path, *args: str, timeout: float = 240.0) -> CliRun:
    """Run ``python -m harness ARGS`` in ``workdir`` with a deadline.

    ``run`` without ``--report-dir`` gets a fresh report directory inside ``workdir``.
    """
    report_dir = None
    argv = list(args)
    if argv and argv[0] == "run" and "--report-dir" not in argv:
        report_dir = workdir / f"report{len(list(workdir.iterdir()))}"
        argv += ["--report-dir", str(report_dir)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-m", "harness", *argv],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=workdir,
        env=env,
    )
    return CliRun(proc, report_dir)
