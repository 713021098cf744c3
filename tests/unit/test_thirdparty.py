"""The thirdparty env's inputs: expectations citing their sources, skips with reasons."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import pytest
from helpers import ROOT

from harness._control.expectations import load_expectations

THIRDPARTY = ROOT / "tests" / "thirdparty"
FILES = sorted((ROOT / "expectations" / "thirdparty").glob("*.toml"))


def test_there_is_one_expectation_file_per_library() -> None:
    assert [f.name for f in FILES] == [
        "eventlet-green.toml",
        "future.toml",
        "pooled-processmixin.toml",
        "systemd-socketserver.toml",
    ]


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_every_expectation_cites_a_source_line(path: Path) -> None:
    entries = load_expectations([path])
    assert entries
    uncited = [e.case for e in entries if not re.search(r"\w+\.py:\d+", e.reason)]
    assert not uncited, f"entries without a file.py:line citation: {uncited}"


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_every_expected_failure_names_the_checks_it_shows_as(path: Path) -> None:
    # A failure expected without its checks would hide any new failure of the same cases.
    unscoped = [e.case for e in load_expectations([path]) if "fail" in e.verdicts and not e.checks]
    assert not unscoped, f"entries expecting a fail without checks = [...]: {unscoped}"


def test_a_library_that_cannot_be_imported_is_skipped_with_a_reason() -> None:
    spec = importlib.util.spec_from_file_location("thirdparty_run", THIRDPARTY / "run.py")
    assert spec is not None and spec.loader is not None
    run = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(run)
    assert "not installed" in run.unavailable("sockspec_no_such_library")
    assert "libsystemd-dev" in run.unavailable("sockspec_no_such_systemd")
    # systemd.daemon when the systemd package itself is missing (the C extension failed to build)
    assert "libsystemd-dev" in run.unavailable("sockspec_systemd_absent.daemon")
    assert run.unavailable("json") == ""


def test_the_number_of_lanes_comes_from_the_environment_or_is_two() -> None:
    spec = importlib.util.spec_from_file_location("thirdparty_run", THIRDPARTY / "run.py")
    assert spec is not None and spec.loader is not None
    run = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(run)
    assert run._lanes("") == run.LANES == 2
    assert run._lanes("3") == 3 and run._lanes("0") == 1
    with pytest.raises(SystemExit, match="not a number"):
        run._lanes("many")
