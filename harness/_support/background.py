"""Blocking calls watched from the side: ``Background`` and ``BackgroundClose``.

A scenario that must observe *when* a blocking call returns cannot make that
call itself.  ``Background`` runs it in a thread of its own and times it, so
the scenario can wait for it with a limit, act while it blocks (connect the
client it is waiting for), and then judge how long it took.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from harness._runtime.deadline import NO_PHASES, PhaseClock
from harness._runtime.eventlog import HARNESS_THREAD_PREFIX

if TYPE_CHECKING:
    from harness._runtime.serverhandle import ServerHandle


class Background:
    """``fn()`` running in a thread of its own, timed from just before the call.

    The thread is *not* a harness thread: if the implementation never returns
    it stays alive, and the resource check reports it and retires the process.
    """

    def __init__(self, fn: Callable[[], Any], what: str) -> None:
        self.what = what
        self.error: BaseException | None = None
        self.result: Any = None
        self.ended: float | None = None
        self._done = threading.Event()
        self._fn = fn
        self._thread = threading.Thread(target=self._run, name=f"timed {what}", daemon=True)
        self.started = time.monotonic()
        self._thread.start()

    def _run(self) -> None:
        try:
            self.result = self._fn()
        except BaseException as exc:
            self.error = exc
        finally:
            self.ended = time.monotonic()
            self._done.set()

    @property
    def done(self) -> bool:
        """True once the call has returned or raised."""
        return self._done.is_set()

    @property
    def elapsed(self) -> float:
        """Seconds from the call to its end (or to now, while it still runs)."""
        return (self.ended if self.ended is not None else time.monotonic()) - self.started

    def wait(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for the call to end; True if it has."""
        if self._done.wait(timeout):
            self._thread.join(timeout)
            return True
        return False

    def finish(self, timeout: float, clock: PhaseClock = NO_PHASES, phase: str = "call") -> Any:
        """Wait for the call and return its result or re-raise its error; ``Hang`` if it runs on.

        With the case's ``clock`` (``ctx.clock``) the hang carries ``phase`` and the
        stack signature, so a hang this implementation already showed the same way
        costs only the shortened deadline; ``timeout`` stays the caller's own limit.
        """
        clock.without_limits().wait(self.wait, phase, timeout, self.what)
        if self.error is not None:
            raise self.error
        return self.result


class BackgroundClose:
    """``handle.close()`` (shutdown and ``server_close()``) running in a harness thread.

    Lets a scenario see whether ``server_close()`` returns while handlers are
    still busy: ``wait(window)`` says whether it has returned yet; ``error`` is
    what ``close()`` raised (a ``Hang`` past ``timeout``), if anything.
    """

    def __init__(self, handle: ServerHandle, timeout: float) -> None:
        self.error: BaseException | None = None
        self._done = threading.Event()

        def run() -> None:
            try:
                handle.close(timeout)
            except BaseException as exc:
                self.error = exc
            finally:
                self._done.set()

        self._thread = threading.Thread(
            target=run, name=f"{HARNESS_THREAD_PREFIX}close", daemon=True
        )
        self._thread.start()

    def wait(self, timeout: float) -> bool:
        """True once ``close()`` has returned (or raised), waiting up to ``timeout``."""
        return self._done.wait(timeout)
