"""Bad input is one line on stderr and exit 2, before any case runs; report
directories never mix two runs or lose a user's file."""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers.cli import CliRun

Cli = Callable[..., CliRun]
CASE = "lifecycle.handler.order[tcp-sync-fault=none-clients=20]"
TWO_CASES = "lifecycle.handler.order[tcp-sync-fault=*-clients=20]"


def _one_line_exit_2(run: CliRun, words: str) -> None:
    assert run.status == 2, run.stderr
    assert run.stderr.count("\n") == 1 and "Traceback" not in run.stderr, run.stderr
    assert words in run.stderr, run.stderr


@pytest.mark.parametrize(
    ("args", "env", "words"),
    [
        (["--jobs", "1000"], {}, "--jobs 1000 is more than 4 workers per CPU"),
        (["--fuzz-budget", "-5"], {}, "'-5' is not a finite number above 0"),
        (["--fuzz-budget", "nan"], {}, "'nan' is not a finite number above 0"),
        (["--fuzz-budget", "inf"], {}, "'inf' is not a finite number above 0"),
        ([], {"SOCKSPEC_DEADLINE_SCALE": "nan"}, "SOCKSPEC_DEADLINE_SCALE must be a finite"),
        ([], {"SOCKSPEC_DEADLINE_SCALE": "inf"}, "SOCKSPEC_DEADLINE_SCALE must be a finite"),
        ([], {"SOCKSPEC_DEADLINE_SCALE": "0"}, "SOCKSPEC_DEADLINE_SCALE must be a finite"),
        ([], {"SOCKSPEC_SEED": "nan"}, "SOCKSPEC_SEED='nan' is not an integer"),
        (["--impl", "stdlib"], {}, "--impl 'stdlib' is given more than once"),
    ],
)
def test_bad_option_is_one_line_before_any_case(
    cli: Cli, monkeypatch: pytest.MonkeyPatch, args: list[str], env: dict[str, str], words: str
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    run = cli("run", "--impl", "stdlib", "--select", CASE, *args)
    _one_line_exit_2(run, words)
    assert run.report_dir is not None and not run.report_dir.exists()


@pytest.mark.parametrize(
    ("text", "words"),
    [
        (b'expect = "oops"\n', "'expect' must be an array of tables"),
        (b'[[expect]]\nimpl = 5\ncase = "x"\nreason = "r"\n', "entry 1: impl = 5 is not a string"),
        (
            b'[[expect]]\nimpl = "a"\ncase = "b"\nreason = "c"\nverdict = ["fail"]\n',
            "entry 1: unknown key 'verdict'",
        ),
        (b'[[expects]]\nimpl = "a"\n', "unknown table or key 'expects'"),
        (b"\xff\xfe[[expect]]\n", "is not UTF-8 text"),
    ],
)
def test_bad_expectation_file_is_one_line_before_any_case(
    cli: Cli, tmp_path: Path, text: bytes, words: str
) -> None:
    path = tmp_path / "expect.toml"
    path.write_bytes(text)
    run = cli("run", "--impl", "stdlib", "--select", CASE, "--expect", str(path))
    _one_line_exit_2(run, words)
    assert "expect.toml" in run.stderr
    assert run.report_dir is not None and not run.report_dir.exists()


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (lambda d: _file(d / "r"), "is a file, not a directory"),
        (lambda d: _file(d / "f") / "r", "is not a directory"),
        (lambda d: _file(d / "mine" / "notes.txt").parent, "holds no sockspec report"),
        (lambda d: _file(d / "r" / "results.jsonl" / "x").parents[1], "holds no sockspec report"),
        (lambda d: Path("/proc/sockspec-report"), "cannot be written"),
    ],
    ids=["file", "under-a-file", "foreign-dir", "jsonl-is-a-dir", "unwritable"],
)
def test_unusable_report_dir_is_one_line_before_any_case(
    cli: Cli, tmp_path: Path, make: Callable[[Path], Path], words: str
) -> None:
    target = make(tmp_path)
    run = cli("run", "--impl", "stdlib", "--select", CASE, "--report-dir", str(target))
    _one_line_exit_2(run, words)
    assert not (target / "results.json").exists()


def test_new_into_a_file_is_one_line(cli: Cli, tmp_path: Path) -> None:
    run = cli("new", "mine.echo.twice", "--dir", str(_file(tmp_path / "f")))
    _one_line_exit_2(run, "is a file, not a directory")


def test_reused_report_dir_holds_only_the_new_run(cli: Cli, tmp_path: Path) -> None:
    report = tmp_path / "reports" / "r"
    first = cli("run", "--impl", "stdlib", "--select", TWO_CASES, "--report-dir", str(report))
    assert first.status == 0, first.stderr
    pages = sorted(p.name for p in (report / "cases").rglob("*.html"))
    second = cli("run", "--impl", "stdlib", "--select", CASE, "--report-dir", str(report))
    assert second.status == 0, second.stderr
    assert len(json.loads((report / "results.json").read_text())["results"]) == 1
    with gzip.open(report / "results.jsonl.gz", "rt") as stream:  # sealed at the end
        assert stream.read().count("\n") == 1
    assert not (report / "results.jsonl").exists()
    assert len(pages) > 1 and len(list((report / "cases").rglob("*.html"))) == 1


def test_latest_replaces_only_a_symlink(cli: Cli, tmp_path: Path) -> None:
    mine = _file(tmp_path / "reports" / "latest")
    run = cli("run", "--impl", "stdlib", "--select", CASE, "--report-dir", str(mine.parent / "r"))
    assert run.status == 0, run.stderr
    assert not mine.is_symlink() and mine.read_text() == "mine"
    mine.unlink()
    mine.symlink_to("elsewhere")
    run = cli("run", "--impl", "stdlib", "--select", CASE, "--report-dir", str(mine.parent / "r"))
    assert run.status == 0, run.stderr
    assert mine.is_symlink() and mine.resolve() == (mine.parent / "r").resolve()


def _file(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("mine")
    return path
