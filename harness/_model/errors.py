"""Errors, split the h11 way.

* Local errors — the user or the harness misused something: bad arguments, an
  implementation that cannot be loaded, a scenario that is defined wrongly.
  They end a run with exit status 2 and one line (``str(exc)``).
* Outcome signals — raised inside a case to end it with a particular verdict
  (``Unsupported``, ``Hang``, ``Abort``).  They never escape a run.
"""

from __future__ import annotations

from pathlib import Path


class SockspecError(Exception):
    """Base class of every error the harness raises on purpose."""


class UsageError(SockspecError):
    """Bad command-line arguments or settings."""


class LoadError(SockspecError):
    """An implementation cannot be loaded or lacks the socketserver API."""


class ScenarioDefinitionError(SockspecError):
    """A scenario is declared wrongly (bad id, unknown transport, bad params...)."""


class ScenarioImportError(SockspecError):
    """A scenario module could not be imported."""


class CaseSignal(Exception):
    """Base of the signals that end a case early with a given verdict."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Unsupported(CaseSignal):
    """The implementation lacks something the case needs: verdict ``unsupported``."""


class Hang(CaseSignal):
    """A call into the implementation did not return by its deadline: verdict ``hang``."""

    def __init__(
        self, reason: str, stacks: str = "", phase: str = "", signature: str = "", note: str = ""
    ) -> None:
        super().__init__(reason)
        self.stacks = stacks
        self.phase = phase  # the phase that hung (see _model.phases), "" if unknown
        self.signature = signature  # where the implementation's threads were stuck
        self.note = note  # why the deadline was shortened, if it was


class ServeDied(CaseSignal):
    """The ``serve_forever()`` thread died or returned on its own: verdict ``fail``."""

    def __init__(
        self, reason: str, traceback: str = "", stacks: str = "", signature: str = ""
    ) -> None:
        super().__init__(reason)
        self.traceback = traceback
        self.stacks = stacks
        self.signature = signature  # how it died: "returned" or the exception's type
        self.note = ""  # why the scenario's grace after the death was shortened, if it was


class Abort(CaseSignal):
    """A check failed so badly that the scenario cannot go on (findings are kept)."""


def one_line(exc: BaseException, where: bool = True) -> str:
    """``Type: message`` on one line; with ``where``, the file and line it came from."""
    if isinstance(exc, SyntaxError):
        return f"SyntaxError: {exc.msg} ({Path(exc.filename or '?').name}, line {exc.lineno})"
    location = ""
    tb = exc.__traceback__
    while where and tb is not None:
        location = f" (line {tb.tb_lineno} of {Path(tb.tb_frame.f_code.co_filename).name})"
        tb = tb.tb_next
    text = f"{type(exc).__name__}: {exc}".strip().splitlines()[0]
    return text + location
