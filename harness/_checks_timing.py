"""Timing helpers for scenarios: blocking calls watched from the side, and duration bounds.

A scenario that must observe *when* a blocking call returns cannot make that
call itself.  ``Background`` runs it in a thread of its own and times it, so
the scenario can wait for it with a limit, act while it blocks (connect the
client it is waiting for), and then judge how long it took.  ``within`` and
``in_order`` turn durations and event orders into findings; ``slack`` is the
tolerance a loaded machine needs on top of a nominal duration.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ._deadline import dump_stacks
from ._errors import Hang

if TYPE_CHECKING:
    from ._context import Context
    from ._records import LifecycleEvent

__all__ = ["Background", "first_event", "in_order", "slack", "within"]

#: Seconds a loaded 2-core machine may add to any nominal duration.
SLACK = 1.5


def slack(ctx: Context, seconds: float = SLACK) -> float:
    """The tolerance added to nominal durations, stretched by the deadline scale."""
    return seconds * ctx.scale


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

    def finish(self, timeout: float) -> Any:
        """Wait for the call and return its result or re-raise its error; ``Hang`` if it runs on."""
        if not self.wait(timeout):
            raise Hang(f"{self.what} did not return within {timeout:g}s", dump_stacks())
        if self.error is not None:
            raise self.error
        return self.result


def within(ctx: Context, check: str, what: str, elapsed: float, low: float, high: float) -> bool:
    """Record a finding unless ``low <= elapsed < high``."""
    return ctx.expect(
        low <= elapsed < high,
        check,
        f"{what} took {elapsed:.3f}s",
        expected=f"at least {low:.3f}s and under {high:.3f}s",
        observed=f"{elapsed:.3f}s",
    )


def first_event(ctx: Context, name: str, phase: str) -> LifecycleEvent | None:
    """The first logged ``name``/``phase`` event, if any."""
    return next((e for e in ctx.events(name) if e.phase == phase), None)


def in_order(ctx: Context, check: str, *steps: tuple[str, str]) -> bool:
    """Record a finding unless the first event of each ``(name, phase)`` came in this order.

    A missing event is a violation too: ``("serve_forever", "return")`` must
    exist to come before ``("shutdown", "return")``.
    """
    found = [(f"{name} {phase}", first_event(ctx, name, phase)) for name, phase in steps]
    observed = sorted(
        ((event.t, label) for label, event in found if event is not None), key=lambda p: p[0]
    )
    missing = [label for label, event in found if event is None]
    ok = not missing and [label for _t, label in observed] == [label for label, _e in found]
    return ctx.expect(
        ok,
        check,
        "lifecycle events out of order" + (f" ({', '.join(missing)} missing)" if missing else ""),
        expected=" → ".join(label for label, _e in found),
        observed=" → ".join(label for _t, label in observed) or "(nothing)",
    )
