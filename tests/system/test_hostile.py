"""Hostile inputs (``tests/hostile``): each gives its documented result, never a silent
exit, a hang of the run, a traceback or a process left behind."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import psutil
import pytest
from helpers import ROOT
from hostile import HOSTILE, Hostile

#: What no line the harness prints may contain: raw escapes reach the terminal.
RAW_CONTROL = ("\x1b", "\x07", "\x00")


def _run(tmp_path: Path, entry: Hostile, pids: Path) -> subprocess.CompletedProcess[str]:
    args = entry.write(tmp_path)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HOSTILE_PIDS": str(pids), **entry.env}
    return subprocess.run(
        [sys.executable, "-m", "harness", "run", *args, "--report-dir", str(tmp_path / "r")],
        capture_output=True,
        text=True,
        errors="surrogateescape",
        timeout=180,
        cwd=tmp_path,
        env=env,
    )


@pytest.mark.parametrize("entry", HOSTILE, ids=[h.name for h in HOSTILE])
def test_hostile_input_gives_its_documented_result(tmp_path: Path, entry: Hostile) -> None:
    pids = tmp_path / "forked.pids"
    proc = _run(tmp_path, entry, pids)
    assert proc.returncode == entry.status, proc.stderr[-2000:]
    assert not any(c in proc.stderr for c in RAW_CONTROL), proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    results = tmp_path / "r" / "results.json"
    if entry.results == "none":
        assert proc.stderr.count("\n") == 1 and entry.message in proc.stderr, proc.stderr
        assert not results.exists()
        return
    doc = json.loads(results.read_text())
    assert doc["run"]["partial"] is (entry.results == "partial")
    assert doc["run"]["exit_status"] == entry.status
    (record,) = doc["results"]
    assert record["verdict"] == entry.verdict, record["reason"]
    for report in ("summary.md", "index.html", "junit.xml"):
        text = (tmp_path / "r" / report).read_text(encoding="utf-8")
        assert not any(c in text for c in RAW_CONTROL), report
    if pids.exists():  # what the implementation forked died with the probe and workers
        forked = [int(p) for p in pids.read_text().split()]
        assert forked
        _gone, alive = psutil.wait_procs(_existing(forked), timeout=5)
        assert not alive, alive


def _existing(pids: list[int]) -> list[psutil.Process]:
    out = []
    for pid in pids:
        try:
            out.append(psutil.Process(pid))
        except psutil.NoSuchProcess:
            pass
    return out
