"""The report directory rule: a run's files never mix with another run's.

A run writes into a directory that does not exist yet or is empty, or into a
previous sockspec report, which it then replaces entirely (its results, its
reports, its case pages and captures; files that are not sockspec's are left
alone).  Any other non-empty directory is refused, as are paths that cannot
be written.  ``check_report_dir`` runs before anything is loaded and changes
nothing; ``prepare_report_dir`` clears and creates, just before the first case.
``point_latest`` makes ``<parent>/latest`` a symlink, never replacing anything
else of that name.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from harness._model.errors import UsageError

#: What a run writes into its report directory (names other writers may add too).
REPORT_ENTRIES = frozenset(
    {
        "results.json",
        "results.jsonl",
        "results.jsonl.gz",
        "summary.md",
        "junit.xml",
        "index.html",
        "report.css",
        "cases",
        "pcaps",
    }
)
#: Any one of these marks a directory as a previous sockspec report.
MARKERS = ("results.json", "results.jsonl", "results.jsonl.gz")


def check_report_dir(path: Path) -> None:
    """Raise UsageError (one line) unless a run could write its report into ``path``."""
    shown = str(path)
    if path.exists() and not path.is_dir():
        raise UsageError(f"report directory {shown!r} is a file, not a directory")
    if path.is_dir():
        _check_contents(path)
        writable = path
    else:
        writable = _existing_ancestor(path)
        if not writable.is_dir():
            raise UsageError(
                f"report directory {shown!r} cannot be made: {str(writable)!r} is not a directory"
            )
    if not os.access(writable, os.W_OK | os.X_OK):
        raise UsageError(
            f"report directory {shown!r} cannot be written: {str(writable)!r} is not writable"
        )


def prepare_report_dir(path: Path) -> None:
    """Create ``path`` or clear the previous report in it; raise UsageError if it fails."""
    check_report_dir(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        for entry in path.iterdir():
            if entry.name in REPORT_ENTRIES or entry.name.endswith(".tmp"):
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry)
                else:
                    entry.unlink()
        with tempfile.NamedTemporaryFile(dir=path, prefix=".sockspec-"):
            pass  # what os.access cannot tell (read-only mounts, quotas, root)
    except OSError as exc:
        raise UsageError(
            f"report directory {str(path)!r} cannot be written: {exc.strerror or exc}"
        ) from None


def point_latest(report_dir: Path) -> None:
    """Make ``<parent>/latest`` a symlink to ``report_dir``; anything else named so stays."""
    link = report_dir.parent / "latest"
    try:
        if link.is_symlink():
            link.unlink()
        elif link.exists():
            return
        link.symlink_to(report_dir.name)
    except OSError:
        pass


def _check_contents(path: Path) -> None:
    try:
        names = [p.name for p in path.iterdir()]
    except OSError as exc:
        raise UsageError(
            f"report directory {str(path)!r} cannot be read: {exc.strerror or exc}"
        ) from None
    if names and not any((path / m).is_file() for m in MARKERS):
        raise UsageError(
            f"report directory {str(path)!r} is not empty and holds no sockspec report; "
            "give a new or empty --report-dir"
        )


def _existing_ancestor(path: Path) -> Path:
    for parent in [path, *path.absolute().parents]:
        if parent.exists() or parent.is_symlink():
            return parent
    return Path("/")
