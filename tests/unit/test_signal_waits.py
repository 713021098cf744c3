"""Where the signals scenarios' handler raises: only inside a wait, never on a line where
no correct loop catches the exception (a false failure of correct servers otherwise)."""

from __future__ import annotations

import linecache
import selectors
from pathlib import Path
from types import SimpleNamespace

import servers
from scenarios.signals import _in_wait


def _frame_at(filename: str, text: str) -> SimpleNamespace:
    """A stand-in frame stopped on the first line of ``filename`` holding ``text``."""
    lines = linecache.getlines(filename)
    lineno = next(i for i, line in enumerate(lines, 1) if text in line)
    return SimpleNamespace(f_code=SimpleNamespace(co_filename=filename), f_lineno=lineno)


def test_a_selectors_poll_is_a_wait() -> None:
    assert _in_wait(_frame_at(selectors.__file__, "self._selector.poll("))


def test_the_loops_own_selector_call_is_no_wait() -> None:
    # The signal lands on this line just after the selector returned, outside its try.
    base = str(Path(servers.__file__).with_name("_base.py"))
    assert not _in_wait(_frame_at(base, "selector.select(poll_interval)"))


def test_a_direct_poll_call_of_the_loop_is_a_wait() -> None:
    frame = _frame_at(__file__, "poller" + ".poll(")
    assert _in_wait(frame)


def test_no_frame_is_no_wait() -> None:
    assert not _in_wait(None)


def _a_loop_polling_directly(poller: object) -> None:
    poller.poll(50)  # type: ignore[attr-defined]
