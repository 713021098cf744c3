"""Temporary directories of a worker, listed so that whoever ends it can remove them.

A worker killed on a hang, on Ctrl-C or with its controller cannot remove its
case directories (each can hold dozens of Unix socket files).  A worker keeps
a ledger in its work directory: ``make_tempdir`` lists each directory it
makes, and the supervisor (or the worker's lifeline, when the controller is
gone) removes every one listed.  The directories stay where ``tempfile``
puts them, so socket paths are no longer than without a ledger.

A directory is listed *before* it is made.  A stop signal lands just after a
case result, which is just when the next case makes its directory: listing it
afterwards left a window in which a SIGKILL leaked the directory.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
import threading

#: The ledger's file name inside a worker's work directory.
LEDGER = "tempdirs.txt"
#: Only directories made here are ever removed from a ledger.
PREFIX = "sockspec-"
#: Ledger lines starting with this retract a listed name that turned out to be taken.
_RETRACTED = "-"
#: Names tried before giving up (as ``tempfile.TMP_MAX``).
_ATTEMPTS = 10_000

_ledger: str | None = None
_closed = False
_lock = threading.Lock()  # listing and making a directory is one step for end_ledger()


def keep_ledger(path: str) -> None:
    """List every directory ``make_tempdir`` makes from now on in ``path``."""
    global _ledger
    _ledger = path


def end_ledger() -> None:
    """No directory is made from now on: the ledger is about to be emptied."""
    global _closed
    with _lock:
        _closed = True


def make_tempdir(prefix: str = PREFIX) -> str:
    """A new directory (mode 0700) where ``tempfile`` puts them, listed in the
    ledger before it exists when one is kept."""
    with _lock:
        if _closed:
            raise OSError("the worker is ending: no new temporary directory")
        if _ledger is None:
            return tempfile.mkdtemp(prefix=prefix)
        parent = tempfile.gettempdir()
        for _ in range(_ATTEMPTS):
            path = os.path.join(parent, prefix + secrets.token_hex(4))
            _list(_ledger, path)
            try:
                os.mkdir(path, 0o700)
            except FileExistsError:
                _list(_ledger, _RETRACTED + path)  # someone else's: never remove it
                continue
            return path
    raise FileExistsError(f"no free temporary directory name in {parent}")


def _list(ledger: str, line: str) -> None:
    try:
        with open(ledger, "a") as file:  # one short line: appends stay whole
            file.write(line + "\n")
    except OSError:
        pass  # cleanup is best effort; the case itself must not suffer


def remove_listed(ledger: str) -> None:
    """Remove every directory listed in ``ledger`` (made by ``make_tempdir``)."""
    try:
        with open(ledger) as listed:
            lines = [line.strip() for line in listed if line.strip()]
    except OSError:
        return
    retracted = {line[len(_RETRACTED) :] for line in lines if line.startswith(_RETRACTED)}
    for path in lines:
        if path not in retracted and os.path.basename(path).startswith(PREFIX):
            shutil.rmtree(path, ignore_errors=True)
