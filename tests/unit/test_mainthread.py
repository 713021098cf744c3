"""in_main_thread(): a call in the main thread of a forked child, always reaped."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

from harness.support import ChildCall, child_states, in_main_thread


def _main_thread_takes_signals() -> tuple[bool, bool]:
    """In the child: is this the main thread, and does a raising handler wake a wait?"""

    def on_alarm(signum: int, frame: object) -> None:
        raise InterruptedError

    signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, 0.02)
    read_end, _write_end = os.pipe()
    try:
        os.read(read_end, 1)  # blocks until the signal's handler raises
        woken = False
    except InterruptedError:
        woken = True
    return threading.current_thread() is threading.main_thread(), woken


def _in_a_thread(fn: Callable[[], Any], timeout: float) -> ChildCall:
    out: list[ChildCall] = []
    thread = threading.Thread(target=lambda: out.append(in_main_thread(fn, timeout)))
    thread.start()
    thread.join(30)
    return out[0]


def test_the_call_runs_in_the_childs_main_thread_even_from_another_thread() -> None:
    call = _in_a_thread(_main_thread_takes_signals, 10.0)
    assert call.status == "returned", call
    assert call.value == (True, True)
    assert call.pid != os.getpid()
    assert call.pid not in child_states([call.pid])  # reaped


def test_an_exception_comes_back_as_its_type_and_message() -> None:
    def fails() -> None:
        raise ValueError("no good")

    call = in_main_thread(fails, 10.0)
    assert (call.status, call.value) == ("raised", "ValueError: no good")


def test_a_child_that_outlives_its_timeout_is_killed_and_reaped() -> None:
    started = time.monotonic()
    call = in_main_thread(lambda: time.sleep(30), 0.3)
    assert call.status == "timeout"
    assert time.monotonic() - started < 10
    assert os.WIFSIGNALED(call.exit_status)
    assert call.pid not in child_states([call.pid])


def test_a_child_that_dies_without_a_report_says_so() -> None:
    call = in_main_thread(lambda: os._exit(7), 10.0)
    assert call.status == "no report"
    assert os.WEXITSTATUS(call.exit_status) == 7
