"""The CLI contract: exit statuses, one-line errors, results.json, crash and hang survival."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import psutil
import pytest
from helpers.cli import CliRun
from mutants import by_name

from harness._report.results import stream_records

Cli = Callable[..., CliRun]


def test_unknown_implementation_exits_2_with_one_line(cli: Cli) -> None:
    run = cli("run", "--impl", "no_such_module")
    assert run.status == 2
    assert run.stderr.count("\n") == 1 and "unknown implementation 'no_such_module'" in run.stderr


def test_bad_argument_exits_2(cli: Cli) -> None:
    run = cli("run", "--profile", "huge")
    assert run.status == 2 and "invalid choice" in run.stderr


def test_select_matching_nothing_exits_2(cli: Cli) -> None:
    run = cli("run", "--select", "no.such.case")
    assert run.status == 2 and "no case matches" in run.stderr


def test_passing_run_exits_0_and_writes_results(cli: Cli) -> None:
    run = cli(
        "run",
        "--impl",
        "stdlib",
        "--impl",
        "reference",
        "--select",
        "lifecycle.handler.order[tcp-*",
    )
    assert run.status == 0, run.stderr
    doc = run.results()
    assert doc["schema"] == "sockspec-results/1"
    assert {r["impl"] for r in doc["results"]} == {"stdlib", "reference"}
    assert all(r["verdict"] == "pass" for r in doc["results"])
    # The stream is sealed (compressed) when the run ends; it holds every case.
    assert len(list(stream_records(run.report_dir))) == len(doc["results"])


def test_each_implementation_is_loaded_once_by_a_worker_that_then_runs_its_cases(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first worker of a run answers the plan and runs the cases: no process loads
    the implementation only to describe it (each process start costs ~0.2 s of CPU)."""
    loads = tmp_path / "loads"
    monkeypatch.setenv("SOCKSPEC_TEST_LOADS", str(loads))
    impl = tmp_path / "counted.py"
    impl.write_text(
        "import os\nfrom socketserver import *  # noqa: F403\n"
        "with open(os.environ['SOCKSPEC_TEST_LOADS'], 'a') as f:\n"
        "    f.write(f'{os.getpid()}\\n')\n"
    )
    only = ("--select", "lifecycle.handler.order[tcp-sync-fault=none-clients=20]")
    run = cli("run", "--impl", str(impl), "--jobs", "1", *only)
    assert run.status == 0, run.stderr
    assert len(loads.read_text().split()) == 1
    both = cli("run", "--impl", "stdlib", "--impl", str(impl), "--jobs", "1", *only)
    assert both.status == 0, both.stderr
    assert len(loads.read_text().split()) == 2  # one more: its worker, second in the plan
    assert [r["verdict"] for r in both.results()["results"]] == ["pass", "pass"]


def test_skipped_finish_exits_1(cli: Cli, tmp_path: Path) -> None:
    path = by_name("finish_skipped_when_handle_raises").write(tmp_path)
    run = cli("run", "--impl", str(path), "--select", "lifecycle.handler.order[tcp-*")
    assert run.status == 1
    verdicts = run.verdicts()
    assert (
        verdicts[(str(path), "lifecycle.handler.order[tcp-sync-fault=handle-clients=20]")] == "fail"
    )
    assert (
        verdicts[(str(path), "lifecycle.handler.order[tcp-sync-fault=none-clients=20]")] == "pass"
    )


@pytest.mark.slow
def test_hang_and_crash_are_verdicts_and_the_run_goes_on(cli: Cli, tmp_path: Path) -> None:
    hang = by_name("shutdown_never_returns").write(tmp_path)
    crash = by_name("finish_request_exits_process").write(tmp_path)
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    run = cli(
        "run",
        "--impl",
        str(hang),
        "--impl",
        str(crash),
        "--select",
        "echo.concurrent[tcp-*",
        "--jobs",
        "2",
    )
    assert run.status == 1
    verdicts = run.verdicts()
    assert verdicts[(str(hang), "echo.concurrent[tcp-sync-clients=100]")] == "hang"
    assert verdicts[(str(crash), "echo.concurrent[tcp-sync-clients=100]")] == "crash"
    # The cases after the hang and the crash still ran.
    assert verdicts[(str(crash), "echo.concurrent[tcp-threading-clients=100]")] == "crash"
    assert verdicts[(str(hang), "echo.concurrent[tcp-forking-clients=100]")] == "hang"
    crashed = next(r for r in run.results()["results"] if r["verdict"] == "crash")
    assert "exited with status 3" in crashed["reason"]
    hung = next(r for r in run.results()["results"] if r["verdict"] == "hang")
    assert "shutdown" in hung["evidence"]["stacks"]
    after = {p.pid for p in psutil.Process().children(recursive=True)}
    assert after <= before  # no worker or forked child left behind


def test_list_and_catalogue(cli: Cli) -> None:
    listed = cli("list", "--select", "echo.*")
    assert listed.status == 0 and "echo.concurrent[tcp-sync-clients=100]" in listed.stdout
    md = cli("list", "--format", "md")
    assert md.status == 0 and "| `lifecycle.handler.order` |" in md.stdout


def test_new_writes_a_skeleton_that_runs(cli: Cli, tmp_path: Path) -> None:
    made = cli("new", "mine.echo.twice", "--dir", str(tmp_path / "mine"))
    assert made.status == 0, made.stderr
    run = cli(
        "run", "--impl", "stdlib", "--scenarios", str(tmp_path / "mine"), "--select", "mine.*"
    )
    assert run.status == 0, run.stderr
    assert len(run.results()["results"]) == 4


def test_scenario_import_error_exits_2(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "user").mkdir()
    (tmp_path / "user" / "bad.py").write_text("import harness\nraise NameError('nope')\n")
    run = cli("run", "--scenarios", str(tmp_path / "user"))
    assert run.status == 2
    assert "bad.py" in run.stderr and "NameError" in run.stderr and run.stderr.count("\n") == 1


def test_scenario_that_raises_is_error_not_fail(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "user").mkdir()
    (tmp_path / "user" / "oops.py").write_text(
        "from harness import scenario\n"
        "@scenario('mine.oops', title='oops', transports=['tcp'], kinds=['sync'])\n"
        "def oops(ctx):\n    'nothing holds'\n    ctx.server()\n    return 1 / 0\n"
    )
    run = cli(
        "run", "--impl", "stdlib", "--scenarios", str(tmp_path / "user"), "--select", "mine.*"
    )
    assert run.status == 2
    (record,) = run.results()["results"]
    assert record["verdict"] == "error" and "ZeroDivisionError" in record["reason"]


def test_ctrl_c_writes_partial_results(tmp_path: Path) -> None:
    import json
    import os
    import signal
    import subprocess
    import sys
    import time

    from helpers import ROOT

    report = tmp_path / "report"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "harness",
            "run",
            "--impl",
            "reference",
            "--report-dir",
            str(report),
        ],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        # A shell starts background jobs with SIGINT ignored, and Python then keeps
        # it ignored: give the run the Ctrl-C handling a terminal user has.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        deadline = time.monotonic() + 60
        stream = report / "results.jsonl"
        while not (stream.exists() and stream.read_text().count("\n") >= 3):
            assert time.monotonic() < deadline, "no case finished within 60 s"
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        status = proc.wait(60)
    finally:
        proc.kill()
        proc.wait(10)
        if proc.stderr:
            proc.stderr.close()
    doc = json.loads((report / "results.json").read_text())
    assert doc["run"]["partial"] is True
    assert status == doc["run"]["exit_status"] != 0
    assert 3 <= len(doc["results"]) < 90


def test_one_bug_is_one_problem_however_many_cases_show_it(cli: Cli, tmp_path: Path) -> None:
    path = by_name("finish_skipped_when_handle_raises").write(tmp_path)
    run = cli("run", "--impl", str(path), "--select", "lifecycle.handler.order[*-fault=handle-*")
    assert run.status == 1
    doc = run.results()
    failing = [r for r in doc["results"] if r["verdict"] == "fail"]
    assert len(failing) > 5  # every transport and kind the host supports
    (problem,) = doc["problems"]
    assert problem["diagnosis"] == "finish() is not called: shutdown_request() runs without it"
    assert sorted(map(tuple, problem["cases"])) == sorted((r["impl"], r["id"]) for r in failing)
    summary = (run.report_dir / "summary.md").read_text()
    assert "**1 distinct problem(s)**" in summary
    assert "1 distinct problem(s)" in run.stdout + run.stderr
