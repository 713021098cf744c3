"""A server under test: an instrumented instance plus the harness's grip on it.

``ServerHandle`` owns the serving thread and makes every blocking call with a
deadline, so a server that hangs in ``shutdown()`` or ``server_close()`` ends
the case as ``hang`` instead of hanging the run.  Each of those calls is a
phase with its own deadline (``PhaseClock``).  When ``serve_forever`` ends
without the harness asking, ``on_end`` is told at once, so the case need not
wait for its deadline to notice a dead server.
"""

from __future__ import annotations

import socket
import threading
import time
import traceback
from collections.abc import Callable, Iterable
from typing import Any

from harness._model.records import Endpoint
from harness._model.variants import TRANSPORTS
from harness._runtime.deadline import NO_PHASES, PhaseClock, call_with_deadline
from harness._runtime.eventlog import HARNESS_THREAD_PREFIX


class ServerHandle:
    """One instrumented server instance of a case."""

    def __init__(
        self,
        server: Any,
        transport: str,
        call_timeout: float,
        clock: PhaseClock = NO_PHASES,
        on_end: Callable[[ServerHandle], None] | None = None,
        loop_ran: Callable[[int, float], bool] | None = None,
    ) -> None:
        self.server = server
        self.transport = transport
        self.call_timeout = call_timeout
        self.clock = clock
        self._on_end = on_end
        #: ``loop_ran(thread_ident, since)``: did that thread run a loop hook after ``since``?
        self._loop_ran = loop_ran
        self._thread: threading.Thread | None = None
        self._serve_error: BaseException | None = None
        self._serve_traceback = ""
        self._stopping = False  # the harness asked serve_forever() to end
        self._closed = False
        #: ``serve_forever()`` kept running after ``shutdown()`` returned (checked by the executor).
        self.survived_shutdown = False

    @property
    def endpoint(self) -> Endpoint:
        """Where clients reach the server (its real bound address)."""
        t = TRANSPORTS[self.transport]
        address = self.server.server_address
        if isinstance(address, tuple):
            address = (address[0], address[1])
        elif isinstance(address, bytes):
            address = address.decode()
        return Endpoint(self.transport, t.family, t.socktype, address)

    @property
    def serving(self) -> bool:
        """True while the ``serve_forever`` thread runs."""
        return self._thread is not None and self._thread.is_alive()

    @property
    def serve_error(self) -> BaseException | None:
        """The exception that ended ``serve_forever``, if any."""
        return self._serve_error

    @property
    def serve_traceback(self) -> str:
        """The formatted traceback of ``serve_error`` ("" if none)."""
        return self._serve_traceback

    @property
    def stopping(self) -> bool:
        """True once the harness asked ``serve_forever`` to end (``stop``/``close``)."""
        return self._stopping

    def serve(self, poll_interval: float = 0.01) -> None:
        """Run ``serve_forever(poll_interval)`` in a harness thread."""

        def run() -> None:
            try:
                self.server.serve_forever(poll_interval)
            except BaseException as exc:
                self._serve_error = exc
                self._serve_traceback = "".join(
                    traceback.format_exception(type(exc), exc, exc.__traceback__)
                )[-8000:]
            finally:
                if self._on_end is not None and not self._stopping:
                    self._on_end(self)

        self._thread = threading.Thread(
            target=run, name=f"{HARNESS_THREAD_PREFIX}serve", daemon=True
        )
        self._thread.start()

    def stop(self, timeout: float | None = None, phased: bool = False) -> None:
        """``shutdown()`` and wait for the serving thread, both with a deadline.

        ``phased`` (teardown, where every gate is open and every client closed)
        bounds each call by its phase deadline too; a scenario's own call may
        legitimately wait for handlers it holds, so it gets ``timeout`` only.
        """
        if self._thread is None:
            return
        self._stopping = True
        limit = timeout or self.call_timeout
        clock = self.clock if phased else self.clock.without_limits()
        if self._thread.is_alive():
            wait = clock.limit("shutdown", limit)
            call_with_deadline(self.server.shutdown, wait, "shutdown()", clock, "shutdown")
        returned = time.monotonic()
        thread, self._thread = self._thread, None
        # A loop still running after shutdown() returned is noted here and judged by
        # the executor (shutdown.loop_continues).
        self._join(thread, clock.limit("serve_join", limit), returned)
        self._note_survivor(thread)

    def _join(self, thread: threading.Thread, limit: float, since: float) -> None:
        """Wait up to ``limit`` for the serving thread to end, but no longer than the
        log takes to show its loop running on (a loop hook after ``shutdown()``
        returned): the finding is then certain and waiting cannot change it."""
        deadline = time.monotonic() + limit
        while thread.is_alive():
            left = deadline - time.monotonic()
            if left <= 0:
                return
            thread.join(min(left, 0.05))
            ident = thread.ident
            if thread.is_alive() and self._loop_ran and ident and self._loop_ran(ident, since):
                return

    def _note_survivor(self, thread: threading.Thread) -> None:
        """Remember a ``serve_forever()`` thread alive after ``shutdown()`` and the wait."""
        self.survived_shutdown = self.survived_shutdown or thread.is_alive()

    def handle_request(self, timeout: float | None = None) -> None:
        """One ``handle_request()`` with a deadline."""
        limit = timeout or self.call_timeout
        clock = self.clock.without_limits()  # a hang gets a phase and signature
        call_with_deadline(
            self.server.handle_request, limit, "handle_request()", clock, "handle_request"
        )

    def close(self, timeout: float | None = None, phased: bool = False) -> None:
        """Stop serving if needed, then ``server_close()`` (once) with a deadline
        (``phased``: see ``stop``)."""
        self.stop(timeout, phased)
        if self._closed:
            return
        self._closed = True
        clock = self.clock if phased else self.clock.without_limits()
        limit = clock.limit("server_close", timeout or self.call_timeout)
        call_with_deadline(self.server.server_close, limit, "server_close()", clock, "server_close")

    def listening_fd(self) -> int:
        """The listening socket's descriptor (-1 once closed)."""
        sock: socket.socket = self.server.socket
        return sock.fileno()


def sockets_held(handles: Iterable[ServerHandle]) -> set[int]:
    """Descriptors of the open sockets the case's server objects still hold: their
    listening socket (after a ``server_close()`` that does not close it) and any
    socket kept in their attributes or in a container there (requests a server
    keeps).  Once no thread or child of the case is left, no wait sees them close
    (``resources.settle``)."""
    fds: set[int] = set()
    for handle in handles:
        for value in _held(
            vars(handle.server).values() if hasattr(handle.server, "__dict__") else ()
        ):
            if isinstance(value, socket.socket) and value.fileno() != -1:
                fds.add(value.fileno())
    return fds


def _held(values: Iterable[Any], depth: int = 2) -> Iterable[Any]:
    """``values``, and (``depth`` levels down) what lists, tuples, sets and dicts hold."""
    for value in values:
        yield value
        if depth and isinstance(value, (list, tuple, set, frozenset)):
            yield from _held(list(value), depth - 1)
        elif depth and isinstance(value, dict):
            yield from _held(list(value.values()), depth - 1)
