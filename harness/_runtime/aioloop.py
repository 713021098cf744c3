"""Private asyncio event loops that run side by side with other threads' loops.

asyncio keeps one "running loop" mark per OS thread.  Under gevent's or
eventlet's monkey-patching every thread is a green thread of one OS thread, so
while one thread's loop waits in its selector (where it lets the others run),
a second thread starting a loop of its own finds the first one's mark and is
refused (``asyncio.run() cannot be called from a running event loop``) — and a
thread pool does not help, its workers being green threads too.  The loops
made here lift their mark while they wait in the selector and put it back
after, and a caller that is itself inside a running loop lifts its mark while
it waits for the worker thread.  With OS threads the mark is per thread anyway:
the same loop runs, in the same threads, as ``asyncio.run`` would.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import selectors
from collections.abc import Callable, Coroutine, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TypeVar

_T = TypeVar("_T")


def run_private(make: Callable[[], Coroutine[Any, Any, _T]]) -> _T:
    """Run the coroutine ``make()`` to completion in a fresh event loop, from any thread."""
    if asyncio._get_running_loop() is None:
        return _run_fresh(make)
    # Called from async code: asyncio refuses to nest loops, so use a worker thread
    # (the caller's loop is blocked meanwhile, as for any blocking call).
    pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="sockspec-swarm")
    with _mark_lifted(), pool:
        return pool.submit(_run_fresh, make).result()


def _run_fresh(make: Callable[[], Coroutine[Any, Any, _T]]) -> _T:
    """``asyncio.run(make())``, on a loop whose selector lifts the mark while it waits."""
    loop = asyncio.SelectorEventLoop(_SharingSelector())
    try:
        return loop.run_until_complete(make())
    finally:
        try:
            _cancel_remaining(loop)
            loop.run_until_complete(loop.shutdown_asyncgens())
            if hasattr(loop, "shutdown_default_executor"):  # Python 3.9+
                loop.run_until_complete(loop.shutdown_default_executor())
        finally:
            loop.close()


def _cancel_remaining(loop: asyncio.AbstractEventLoop) -> None:
    """Cancel the tasks still pending and let them finish, as ``asyncio.run`` does."""
    pending = asyncio.all_tasks(loop)
    for task in pending:
        task.cancel()
    if pending:
        loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))


@contextmanager
def _mark_lifted() -> Iterator[None]:
    """This OS thread's running-loop mark is cleared inside, and restored after."""
    running = asyncio._get_running_loop()
    asyncio._set_running_loop(None)
    try:
        yield
    finally:
        asyncio._set_running_loop(running)


class _SharingSelector(selectors.BaseSelector):
    """The default selector, with the running-loop mark lifted while ``select`` waits."""

    def __init__(self) -> None:
        self._inner = selectors.DefaultSelector()

    def register(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        return self._inner.register(fileobj, events, data)

    def unregister(self, fileobj: Any) -> selectors.SelectorKey:
        return self._inner.unregister(fileobj)

    def modify(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        return self._inner.modify(fileobj, events, data)

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        with _mark_lifted():
            return self._inner.select(timeout)

    def get_key(self, fileobj: Any) -> selectors.SelectorKey:
        return self._inner.get_key(fileobj)

    def get_map(self) -> Mapping[Any, selectors.SelectorKey]:
        return self._inner.get_map()

    def close(self) -> None:
        self._inner.close()
