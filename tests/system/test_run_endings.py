"""Every way a run ends leaves an honest record and no process behind.

Signals stop a run like Ctrl-C (partial results.json and every report, exit
128 + N); an error in recording or progress output stops it partial with
exit 2; SIGKILL of the controller takes its workers and everything they
forked along within seconds, even while a case's threads hang.
"""

from __future__ import annotations

import json
import os
import signal
import socketserver
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import psutil
import pytest
from helpers import ROOT
from hostile import HANGING_HANDLERS
from mutants import by_name

from harness._control.runner import run
from harness._model.records import CaseResult
from harness._model.settings import Settings

HANGING_CASE = "lifecycle.handler.order[tcp-{kind}-fault=none-clients=20]"


@contextmanager
def _controller(tmp_path: Path, *args: str) -> Iterator[subprocess.Popen[str]]:
    """``python -m harness run ARGS`` in the background; killed (with its group) at the end."""
    (tmp_path / "tmp").mkdir(exist_ok=True)
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "TMPDIR": str(tmp_path / "tmp"),
        "HOSTILE_PIDS": str(tmp_path / "handlers.pids"),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "harness", "run", *args, "--report-dir", str(tmp_path / "r")],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        # A shell starts background jobs with SIGINT ignored, and Python then keeps
        # it ignored: give the run the Ctrl-C handling a terminal user has.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(30)
        if proc.stderr:
            proc.stderr.close()


def _wait_for(
    condition: Callable[[], bool], what: str, proc: subprocess.Popen[str], limit: float = 60
) -> None:
    deadline = time.monotonic() + limit
    while not condition():
        assert time.monotonic() < deadline, f"no {what} within {limit:g} s"
        assert proc.poll() is None, f"the run ended before {what}"
        time.sleep(0.05)


def _lines(path: Path) -> int:
    return path.read_text().count("\n") if path.exists() else 0


def _survivors(procs: list[psutil.Process], within: float = 5.0) -> list[psutil.Process]:
    _gone, alive = psutil.wait_procs(procs, timeout=within)
    return alive


@pytest.mark.parametrize("kind", ["threading", "forking"])
def test_no_process_survives_sigkill_of_the_controller(tmp_path: Path, kind: str) -> None:
    impl = tmp_path / "hanging.py"
    impl.write_text(Path(socketserver.__file__).read_text() + HANGING_HANDLERS)
    pids = tmp_path / "handlers.pids"
    with _controller(
        tmp_path, "--impl", str(impl), "--select", HANGING_CASE.format(kind=kind)
    ) as proc:
        _wait_for(lambda: _lines(pids) >= 3, "hanging handler", proc)
        run = psutil.Process(proc.pid).children(recursive=True)
        handlers = [psutil.Process(int(p)) for p in set(pids.read_text().split())]
        assert run and handlers
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        assert not _survivors([*run, *handlers])
    assert list((tmp_path / "tmp").iterdir()) == []  # the workers removed their directories


@pytest.mark.parametrize(
    ("signum", "times", "status"),
    [(signal.SIGTERM, 1, 143), (signal.SIGHUP, 1, 129), (signal.SIGINT, 2, 130)],
    ids=["SIGTERM", "SIGHUP", "double-Ctrl-C"],
)
def test_stop_signal_writes_partial_results_and_reports(
    tmp_path: Path, signum: int, times: int, status: int
) -> None:
    stream = tmp_path / "r" / "results.jsonl"
    with _controller(tmp_path, "--impl", "reference", "--jobs", "2") as proc:
        _wait_for(lambda: _lines(stream) >= 3, "3 finished cases", proc)
        run = psutil.Process(proc.pid).children(recursive=True)
        for _ in range(times):
            proc.send_signal(signum)
        assert proc.wait(60) == status
        stderr = proc.stderr.read() if proc.stderr else ""
        assert _survivors(run, 5.0) == []
    doc = json.loads((tmp_path / "r" / "results.json").read_text())
    assert doc["run"]["partial"] is True and doc["run"]["exit_status"] == status
    assert doc["run"]["stopped_by"] == f"signal {signal.Signals(signum).name}"
    assert 3 <= len(doc["results"]) < 90
    for report in ("summary.md", "index.html", "junit.xml"):
        assert (tmp_path / "r" / report).exists(), report
    assert "results are partial" in stderr and "Traceback" not in stderr
    assert "OSError" not in stderr and "sockspec: interrupted" not in stderr
    assert list((tmp_path / "tmp").iterdir()) == []  # worker and case temp dirs removed


def test_closed_progress_pipe_stops_the_run_partial_with_exit_2(tmp_path: Path) -> None:
    path = by_name("finish_skipped_when_handle_raises").write(tmp_path)
    args = ("--impl", str(path), "--select", "lifecycle.handler.order[*-fault=handle-*")
    with _controller(tmp_path, *args) as proc:
        assert proc.stderr is not None
        assert "running" in proc.stderr.readline()
        proc.stderr.close()  # as `| head -1` does
        assert proc.wait(120) == 2
    doc = json.loads((tmp_path / "r" / "results.json").read_text())
    assert doc["run"]["partial"] is True and doc["run"]["exit_status"] == 2
    assert "BrokenPipeError" in doc["run"]["stopped_by"]
    assert len(doc["results"]) < 12


class _FailingProgress:
    """Progress output that breaks at the first finished case (a full disk, say)."""

    def start(self, total: int) -> None:
        """Nothing to show."""

    def case_done(self, result: CaseResult) -> None:
        """Fails."""
        raise OSError(28, "No space left on device")


def test_error_while_recording_stops_the_run_partial_with_exit_2(tmp_path: Path) -> None:
    settings = Settings(
        impls=("stdlib",), select=("lifecycle.handler.order[tcp-*",), report_dir=tmp_path / "r"
    )
    outcome = run(settings, progress=_FailingProgress())
    assert outcome.partial and outcome.exit_status == 2
    assert "No space left on device" in outcome.stopped_by
    doc = json.loads((tmp_path / "r" / "results.json").read_text())
    assert doc["run"]["partial"] is True and doc["run"]["exit_status"] == 2
    assert 1 <= len(doc["results"]) < 12
