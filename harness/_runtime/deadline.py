"""Deadlines for calls into the implementation, and stack dumps when they pass.

A call that may block (``shutdown()``, ``server_close()``, ``handle_request()``)
runs in a helper thread; if it has not returned by its deadline the case ends
with ``Hang`` carrying a dump of every thread's stack.  The stuck thread cannot
be killed, so the process that ran it is retired by the supervisor.
"""

from __future__ import annotations

import sys
import threading
import traceback
from collections.abc import Callable
from typing import Any, TypeVar

from harness._model.errors import Hang
from harness._runtime.eventlog import HARNESS_THREAD_PREFIX

T = TypeVar("T")


def dump_stacks() -> str:
    """Every Python thread's current stack, labelled with its name."""
    names = {t.ident: (t.name, t.daemon) for t in threading.enumerate()}
    chunks = []
    for ident, frame in sys._current_frames().items():
        name, daemon = names.get(ident, ("<unknown>", False))
        header = f'Thread {ident:#x} "{name}"{" (daemon)" if daemon else ""}:'
        chunks.append(header + "\n" + "".join(traceback.format_stack(frame)))
    return "\n".join(chunks)


def call_with_deadline(fn: Callable[[], T], timeout: float, what: str) -> T:
    """Run ``fn()``; return its result, re-raise its exception, or raise ``Hang``."""
    box: dict[str, Any] = {}
    done = threading.Event()

    def runner() -> None:
        try:
            box["result"] = fn()
        except BaseException as exc:
            box["error"] = exc
        finally:
            done.set()

    thread = threading.Thread(target=runner, name=f"{HARNESS_THREAD_PREFIX}call", daemon=True)
    thread.start()
    if not done.wait(timeout):
        raise Hang(f"{what} did not return within {timeout:g}s", dump_stacks())
    thread.join(timeout)
    if "error" in box:
        raise box["error"]
    result: T = box["result"]
    return result
