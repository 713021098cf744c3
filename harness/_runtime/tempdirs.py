"""Temporary directories of a worker, listed so that whoever ends it can remove them.

A worker killed on a hang, on Ctrl-C or with its controller cannot remove its
case directories (each can hold dozens of Unix socket files).  A worker keeps
a ledger in its work directory: ``make_tempdir`` appends each directory it
makes, and the supervisor (or the worker's lifeline, when the controller is
gone) removes every one listed.  The directories stay where ``tempfile``
puts them, so socket paths are no longer than without a ledger.
"""

from __future__ import annotations

import os
import shutil
import tempfile

#: The ledger's file name inside a worker's work directory.
LEDGER = "tempdirs.txt"
#: Only directories made here are ever removed from a ledger.
PREFIX = "sockspec-"

_ledger: str | None = None


def keep_ledger(path: str) -> None:
    """List every directory ``make_tempdir`` makes from now on in ``path``."""
    global _ledger
    _ledger = path


def make_tempdir(prefix: str = PREFIX) -> str:
    """``tempfile.mkdtemp`` (mode 0700), listed in the ledger when one is kept."""
    path = tempfile.mkdtemp(prefix=prefix)
    if _ledger is not None:
        try:
            with open(_ledger, "a") as ledger:  # one short line: appends stay whole
                ledger.write(path + "\n")
        except OSError:
            pass  # cleanup is best effort; the case itself must not suffer
    return path


def remove_listed(ledger: str) -> None:
    """Remove every directory listed in ``ledger`` (made by ``make_tempdir``)."""
    try:
        with open(ledger) as listed:
            paths = [line.strip() for line in listed if line.strip()]
    except OSError:
        return
    for path in paths:
        if os.path.basename(path).startswith(PREFIX):
            shutil.rmtree(path, ignore_errors=True)
