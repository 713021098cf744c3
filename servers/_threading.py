"""``ThreadingMixIn``: one new thread per request.

The mix-in also keeps track of the handler threads that ``server_close()``
has to wait for.  That bookkeeping must not grow without bound on a
long-running server (CPython bpo-37193), so finished threads are dropped every
time a new one is registered.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING

from ._types import Address, Request

if TYPE_CHECKING:
    # Type checkers see the mix-in as a BaseServer so that calls to the hooks it
    # relies on are checked; at run time it is a plain object subclass, which
    # keeps the MRO of the composed classes identical to CPython's.
    from ._base import BaseServer as _MixinBase
else:
    _MixinBase = object


class _NoThreadRegistry:
    """Registry used when nothing needs joining: remembers no thread at all.

    Shared, stateless default for ``ThreadingMixIn._threads`` so that a server
    with ``block_on_close = False`` never accumulates thread objects.
    """

    def append(self, thread: threading.Thread) -> None:
        """Forget ``thread`` immediately."""

    def join(self) -> None:
        """Nothing to wait for."""

    def __len__(self) -> int:
        """Always 0."""
        return 0

    def __iter__(self) -> Iterator[threading.Thread]:
        """Always empty."""
        return iter(())


class _ThreadRegistry:
    """Live non-daemon handler threads of one server, for ``server_close()`` to join.

    Contract:

    * ``append()`` is called by the serving thread for each *started* handler
      thread.  Daemon threads are not recorded (nobody waits for them), and
      every call first discards threads that have finished, so the registry
      never holds more than the threads still alive at the previous
      registration plus the newest one.
    * ``join()`` waits for every recorded thread and empties the registry.
      It may be called from a thread other than the serving thread, hence
      the lock around the list.
    * ``len()`` and iteration report the currently recorded threads (CPython's
      test suite inspects ``len(server._threads)``).
    """

    def __init__(self) -> None:
        """Start empty."""
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []

    def reap(self) -> None:
        """Drop threads that have finished running."""
        with self._lock:
            self._threads = [t for t in self._threads if t.is_alive()]

    def append(self, thread: threading.Thread) -> None:
        """Reap finished threads, then record ``thread`` unless it is a daemon."""
        self.reap()
        if not thread.daemon:
            with self._lock:
                self._threads.append(thread)

    def join(self) -> None:
        """Wait for all recorded threads, emptying the registry."""
        # Take the whole list under the lock but join outside it, so a serving
        # thread that is still registering threads is never blocked by us.
        with self._lock:
            pending, self._threads = self._threads, []
        for thread in pending:
            thread.join()

    def __len__(self) -> int:
        """Number of recorded threads."""
        with self._lock:
            return len(self._threads)

    def __iter__(self) -> Iterator[threading.Thread]:
        """Iterate over a snapshot of the recorded threads."""
        with self._lock:
            return iter(list(self._threads))


class ThreadingMixIn(_MixinBase):
    """Mix-in that processes each request in a new thread.

    Must precede the server class in the bases (``class S(ThreadingMixIn,
    TCPServer)``) so its ``process_request()`` and ``server_close()`` win.

    Class attributes:

    ``daemon_threads`` (False)
        Whether handler threads are daemon threads.  Daemon handlers do not
        keep the interpreter alive at exit and are never joined.
    ``block_on_close`` (True)
        Whether ``server_close()`` waits for the non-daemon handler threads
        that are still running.  Read by ``process_request()``: only threads
        started while it is true are waited for.

    Instance state: ``_threads`` -- the registry of handler threads that
    ``server_close()`` joins (see ``_ThreadRegistry``); finished threads are
    dropped from it whenever a new request is dispatched.
    """

    daemon_threads: bool = False
    block_on_close: bool = True
    # Class-level default shared by all instances; process_request() installs a
    # per-instance real registry the first time one is needed.
    _threads: _ThreadRegistry | _NoThreadRegistry = _NoThreadRegistry()

    def process_request_thread(self, request: Request, client_address: Address) -> None:
        """Body of a handler thread: ``finish_request()``, then ``shutdown_request()``.

        Contract: runs in the new thread, once per request.  An ``Exception``
        from ``finish_request()`` is passed to ``handle_error()`` (in this
        thread); ``SystemExit``/``KeyboardInterrupt`` are not, and propagate
        out of the thread (reaching ``threading.excepthook``).  Either way
        ``shutdown_request()`` is called exactly once, last.
        """
        try:
            self.finish_request(request, client_address)
        except Exception:
            self.handle_error(request, client_address)
        finally:
            self.shutdown_request(request)

    def process_request(self, request: Request, client_address: Address) -> None:
        """Start a thread running ``process_request_thread()`` and return at once.

        Contract: called in the serving thread.  After it returns normally the
        new thread owns the request (it will call ``shutdown_request()``).  If
        the thread cannot be started the exception propagates and the serving
        loop shuts the request down instead; nothing is registered then.
        """
        if self.block_on_close and "_threads" not in vars(self):
            self._threads = _ThreadRegistry()
        thread = threading.Thread(
            target=self.process_request_thread, args=(request, client_address)
        )
        thread.daemon = self.daemon_threads
        thread.start()
        # Registered only once started: a registry entry must always be
        # joinable, and a thread that failed to start must not be one.
        self._threads.append(thread)

    def server_close(self) -> None:
        """Close the server, then wait for the registered handler threads.

        Contract: after the next class's ``server_close()`` has run, blocks
        until every non-daemon handler thread started while ``block_on_close``
        was true has finished.  Returns immediately if there are none.
        """
        super().server_close()
        self._threads.join()
