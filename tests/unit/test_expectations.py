"""Expectation files: known failures become xfail, unexpected passes xpass."""

from __future__ import annotations

from pathlib import Path

import pytest
from helpers import ROOT

from harness import CaseResult, Finding, Strictness, UsageError, Verdict
from harness._control.expectations import apply_expectations, load_expectations
from harness._control.runner import exit_status


def _result(
    case: str, verdict: Verdict, impl: str = "/py/3.6/socketserver.py", checks: tuple[str, ...] = ()
) -> CaseResult:
    findings = tuple(Finding(check, f"{check} failed") for check in checks)
    return CaseResult(case, case.split("[")[0], impl, verdict, Strictness.MUST, 0.1, {}, findings)


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "e.toml"
    path.write_text(text)
    return path


def test_expected_failure_is_xfail_and_unexpected_pass_is_xpass(tmp_path: Path) -> None:
    exp = load_expectations(
        [_write(tmp_path, '[[expect]]\nimpl = "*3.6*"\ncase = "a.b"\nreason = "bpo-1"\n')]
    )
    out = apply_expectations(
        [
            _result("a.b[tcp-sync]", Verdict.FAIL),
            _result("a.b[udp-sync]", Verdict.PASS),
            _result("a.c[tcp-sync]", Verdict.FAIL),
            _result("a.b[tcp-sync]", Verdict.FAIL, impl="stdlib"),
        ],
        exp,
    )
    assert [r.verdict for r in out] == [Verdict.XFAIL, Verdict.XPASS, Verdict.FAIL, Verdict.FAIL]
    assert out[0].reason == "bpo-1"
    assert exit_status(out[:2]) == 0 and exit_status(out[:2], strict=True) == 1


def test_race_expectation_lets_a_pass_stay_a_pass(tmp_path: Path) -> None:
    text = (
        '[[expect]]\nimpl = "*"\ncase = "*-forking-*"\nreason = "r"\nverdicts = ["fail", "pass"]\n'
    )
    exp = load_expectations([_write(tmp_path, text)])
    out = apply_expectations([_result("x.y[tcp-forking]", Verdict.PASS)], exp)
    assert out[0].verdict is Verdict.PASS


def test_check_scoped_entries_do_not_hide_a_new_failure(tmp_path: Path) -> None:
    text = (
        '[[expect]]\nimpl = "*"\ncase = "*"\nchecks = ["hooks.noop"]\n'
        'reason = "no-op close (a.py:3)"\n'
        '[[expect]]\nimpl = "*"\ncase = "a.*"\nchecks = ["resources.*"]\n'
        'reason = "leak (a.py:9)"\n'
    )
    exp = load_expectations([_write(tmp_path, text)])
    out = apply_expectations(
        [
            _result("a.b[tcp-sync]", Verdict.FAIL, checks=("hooks.noop", "resources.fds")),
            _result("c.d[tcp-sync]", Verdict.FAIL, checks=("hooks.noop",)),
            _result("c.d[udp-sync]", Verdict.FAIL, checks=("hooks.noop", "resources.fds")),
            _result("a.b[udp-sync]", Verdict.FAIL, checks=("hooks.noop", "requests.lost")),
            _result("a.b[unix-sync]", Verdict.HANG),
            _result("a.b[tcp6-sync]", Verdict.PASS),
        ],
        exp,
    )
    verdicts = [r.verdict for r in out]
    assert verdicts == [
        Verdict.XFAIL,
        Verdict.XFAIL,
        Verdict.FAIL,
        Verdict.FAIL,
        Verdict.HANG,
        Verdict.PASS,  # a check-scoped entry names findings, not cases that must fail
    ]
    assert out[0].reason == "no-op close (a.py:3) | leak (a.py:9)"  # both causes, in file order
    assert out[1].reason == "no-op close (a.py:3)"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[[expect]]\nimpl = 'x'\n", "missing case, reason"),
        ("[[expect\n", "not valid TOML"),
        ("[[expect]]\nimpl='x'\ncase='y'\nreason='z'\nverdicts=['boom']\n", "verdicts"),
        ("[[expect]]\nimpl='x'\ncase='y'\nreason='z'\nchecks=[]\n", "check id globs"),
        ("[[expect]]\nimpl='x'\ncase='y'\nreason='z'\nchecks=[1]\n", "check id globs"),
    ],
)
def test_bad_files_are_one_line_usage_errors(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        load_expectations([_write(tmp_path, text)])


def test_shipped_expectation_files_load() -> None:
    files = sorted((ROOT / "expectations").glob("*.toml"))
    assert files
    for exp in load_expectations(files):
        # A CPython issue, or for a monkey-patched implementation the library's own source.
        patch = exp.impl.rpartition("+")[2] if "+" in exp.impl else None
        assert "bpo-" in exp.reason or "gh-" in exp.reason or f"{patch}/" in exp.reason
