"""The report directory rule: fresh, empty or a previous report (replaced); latest a symlink."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness._model.errors import UsageError
from harness._report.reportdir import check_report_dir, point_latest, prepare_report_dir


def test_previous_report_is_replaced_and_other_files_stay(tmp_path: Path) -> None:
    report = tmp_path / "r"
    (report / "cases" / "stdlib").mkdir(parents=True)
    (report / "cases" / "stdlib" / "old.html").write_text("old")
    for name in ("results.json", "results.jsonl", "summary.md", "index.html.tmp"):
        (report / name).write_text("old")
    (report / "notes.txt").write_text("mine")
    prepare_report_dir(report)
    assert sorted(p.name for p in report.iterdir()) == ["notes.txt"]


def test_foreign_directory_is_refused_untouched(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(UsageError, match="holds no sockspec report"):
        prepare_report_dir(tmp_path)
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_check_changes_nothing(tmp_path: Path) -> None:
    check_report_dir(tmp_path / "a" / "b")
    assert not (tmp_path / "a").exists()


def test_latest_is_made_and_replaced_only_as_a_symlink(tmp_path: Path) -> None:
    (tmp_path / "r1").mkdir()
    (tmp_path / "r2").mkdir()
    point_latest(tmp_path / "r1")
    assert (tmp_path / "latest").resolve() == (tmp_path / "r1").resolve()
    point_latest(tmp_path / "r2")
    assert (tmp_path / "latest").resolve() == (tmp_path / "r2").resolve()
    (tmp_path / "latest").unlink()
    (tmp_path / "latest").write_text("mine")
    point_latest(tmp_path / "r1")
    assert (tmp_path / "latest").read_text() == "mine"
