"""The worker's ledger of temporary directories: listed before made, removed by whoever ends it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from harness._runtime import tempdirs


@pytest.fixture
def ledger(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr(tempdirs.tempfile, "tempdir", None)  # re-read TMPDIR
    monkeypatch.setattr(tempdirs, "_closed", False)
    path = tmp_path / tempdirs.LEDGER
    monkeypatch.setattr(tempdirs, "_ledger", str(path))
    return path


def test_a_directory_is_listed_before_it_exists(
    ledger: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    listed_at_mkdir: list[bool] = []
    real_mkdir = os.mkdir

    def mkdir(path: str, mode: int = 0o777) -> None:
        listed_at_mkdir.append(path in ledger.read_text().split())
        real_mkdir(path, mode)

    monkeypatch.setattr(tempdirs.os, "mkdir", mkdir)
    made = tempdirs.make_tempdir()
    assert listed_at_mkdir == [True]  # a SIGKILL between the two steps leaks nothing
    assert Path(made).is_dir() and Path(made).parent == ledger.parent / "tmp"
    assert oct(Path(made).stat().st_mode & 0o777) == oct(0o700)
    tempdirs.remove_listed(str(ledger))
    assert not Path(made).exists()


def test_a_taken_name_is_retracted_and_never_removed(
    ledger: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    theirs = ledger.parent / "tmp" / "sockspec-00000000"
    theirs.mkdir()
    names = iter(["00000000", "11111111"])
    monkeypatch.setattr(tempdirs.secrets, "token_hex", lambda n: next(names))
    made = tempdirs.make_tempdir()
    assert made.endswith("sockspec-11111111")
    tempdirs.remove_listed(str(ledger))
    assert theirs.is_dir() and not Path(made).exists()


def test_no_directory_is_made_once_the_ledger_ends(ledger: Path) -> None:
    tempdirs.end_ledger()
    with pytest.raises(OSError, match="ending"):
        tempdirs.make_tempdir()
    assert list((ledger.parent / "tmp").iterdir()) == []
