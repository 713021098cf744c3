"""``BaseServer``: the transport-independent request pipeline.

Everything that does not depend on what kind of socket a server owns lives
here: the ``serve_forever()`` loop and its ``shutdown()`` handshake, the
single-shot ``handle_request()`` with its timeout rules, and the fixed order in
which the per-request hooks run.

The per-request pipeline, used by both ``serve_forever()`` and
``handle_request()`` once the listening socket is readable::

    request, client_address = get_request()       # OSError: dropped silently
    if not verify_request(request, client_address):
        shutdown_request(request)
    else:
        process_request(request, client_address)
        # raised Exception     -> handle_error(), then shutdown_request()
        # raised BaseException -> shutdown_request(), then re-raise

Everything in this module runs in the thread that called ``serve_forever()``
or ``handle_request()`` (the *serving thread*), except ``shutdown()``, which is
meant to be called from any other thread.
"""

from __future__ import annotations

import selectors
import sys
import threading
import traceback
from socket import socket as Socket
from time import monotonic
from typing import TYPE_CHECKING, Any, TypeVar

from ._types import Address, HandlerFactory, Request

# poll() is preferred because select() cannot watch descriptors numbered
# FD_SETSIZE (usually 1024) or above, which a busy process can easily reach.
# Platforms without poll() (Windows) fall back to select().
_Selector: type[selectors.BaseSelector]
if hasattr(selectors, "PollSelector"):
    _Selector = selectors.PollSelector
else:  # pragma: no cover - exercised only on platforms without poll()
    _Selector = selectors.SelectSelector

_ServerT = TypeVar("_ServerT", bound="BaseServer")


def _effective_timeout(socket_timeout: float | None, server_timeout: float | None) -> float | None:
    """Combine the two optional limits ``handle_request()`` honours: the smaller one wins."""
    if socket_timeout is None:
        return server_timeout
    if server_timeout is None:
        return socket_timeout
    return min(socket_timeout, server_timeout)


class BaseServer:
    """Abstract request-processing server.

    A server owns a listening object (normally ``self.socket``) and turns each
    readable event on it into one call of ``RequestHandlerClass(request,
    client_address, server)``.  ``BaseServer`` knows nothing about sockets: a
    concrete subclass must supply

    * ``fileno()`` -- a descriptor that becomes readable when a request is
      waiting (the loops hand ``self`` to a selector);
    * ``get_request()`` -- returns ``(request, client_address)`` without
      blocking once ``fileno()`` was reported readable; raising ``OSError``
      means "nothing to do after all";
    * ``socket`` -- an object with ``gettimeout()``, consulted by
      ``handle_request()``.

    ``TCPServer`` and its relatives provide all three.

    Public entry points (for the code that *runs* a server):
    ``serve_forever()``, ``shutdown()``, ``handle_request()``,
    ``server_close()`` and use as a context manager.

    Hooks (for subclasses and mix-ins), in pipeline order: ``get_request``,
    ``verify_request``, ``process_request``, ``finish_request``,
    ``shutdown_request``, ``close_request``, ``handle_error``; plus
    ``handle_timeout``, ``service_actions`` and ``server_close``.  Each hook's
    docstring states when it runs, who calls it, and what it must guarantee.

    Class attributes that instances may override:

    ``timeout``
        Seconds ``handle_request()`` waits before calling
        ``handle_timeout()``; ``None`` (the default) waits forever.
        ``serve_forever()`` ignores it.
    """

    timeout: float | None = None

    if TYPE_CHECKING:
        # Supplied by concrete subclasses (see the class docstring); declared
        # here only so the loops below type-check.  Not defined at run time, so
        # ``BaseServer`` keeps exactly the attribute set CPython's has.
        socket: Socket

        def fileno(self) -> int: ...

        def get_request(self) -> tuple[Request, Address]: ...

    def __init__(self, server_address: Address, RequestHandlerClass: HandlerFactory) -> None:
        """Record the address and handler factory; open nothing.

        Subclasses extend this (calling it first) rather than replace it,
        because the shutdown handshake state is created here.
        """
        self.server_address = server_address
        self.RequestHandlerClass = RequestHandlerClass
        # Set when no serve_forever() loop is running *after one has run*.
        # It starts cleared, which is what makes shutdown() block until a loop
        # has both started and finished -- including the race where shutdown()
        # is called just before the loop's thread gets going.
        self.__loop_finished = threading.Event()
        # Written by shutdown() in another thread, read by the loop.  A plain
        # attribute suffices: it is only ever flipped, never read-modify-written.
        self.__stop_requested = False

    # ------------------------------------------------------------------
    # Running the server

    def serve_forever(self, poll_interval: float = 0.5) -> None:
        """Handle requests one at a time until ``shutdown()`` is called.

        Contract:

        * Runs in the calling thread (the serving thread) until a
          ``shutdown()`` request is seen; a stop requested *before* this
          method starts is honoured too, making the loop exit immediately.
        * The stop request is re-checked every ``poll_interval`` seconds, so
          ``shutdown()`` returns at most about ``poll_interval`` seconds after
          it is called (plus the time to finish a request already in progress).
        * Wakes up at least every ``poll_interval`` seconds and calls
          ``service_actions()`` once per wake-up, whether or not a request was
          handled.  ``self.timeout`` is ignored; ``handle_timeout()`` is never
          called from here.
        * When it returns -- normally or by an exception escaping a hook --
          the stop request is cleared (so the server may be served again) and
          any ``shutdown()`` waiting in another thread is released.
        """
        self.__loop_finished.clear()
        try:
            with _Selector() as selector:
                selector.register(self, selectors.EVENT_READ)
                while not self.__stop_requested:
                    ready = selector.select(poll_interval)
                    # A stop requested while we were parked in select() takes
                    # priority over a request that became ready meanwhile:
                    # shutdown() promises prompt return, not one more request.
                    if self.__stop_requested:
                        break
                    if ready:
                        self._handle_ready_request()
                    self.service_actions()
        finally:
            self.__stop_requested = False
            self.__loop_finished.set()

    def shutdown(self) -> None:
        """Ask ``serve_forever()`` to stop and wait until it has returned.

        Contract: must be called from a thread other than the serving thread,
        while ``serve_forever()`` is running or about to run there.  Called
        from the serving thread itself (e.g. inside a handler of a synchronous
        server), or on a server that never entered ``serve_forever()``, it
        blocks forever -- this mirrors CPython, whose documentation states
        the deadlock.  Once it returns, ``serve_forever()`` has returned; the
        listening socket is still open (call ``server_close()`` for that).

        Called after a ``serve_forever()`` has already returned, it returns at
        once but the stop request stays pending, so the *next*
        ``serve_forever()`` exits immediately (again as CPython does).
        """
        self.__stop_requested = True
        self.__loop_finished.wait()

    def service_actions(self) -> None:
        """Periodic hook, called by ``serve_forever()`` in the serving thread.

        Contract: called once per loop iteration -- after each request handled
        by the loop and after each ``poll_interval`` that passed without one --
        and never by ``handle_request()``.  It must not block for long, since
        the loop (and therefore ``shutdown()``) waits for it.  The default does
        nothing; ``ForkingMixIn`` reaps finished children here.
        """

    def handle_request(self) -> None:
        """Wait for and handle exactly one request, or time out.

        Contract:

        * The wait is bounded by the smaller of ``self.timeout`` and the
          listening socket's own ``gettimeout()`` (``None`` meaning "no
          limit"); with neither set it blocks until a request arrives.
        * If the limit passes with no request, ``handle_timeout()`` is called
          once (in this thread) and the method returns.
        * Otherwise the request goes through the normal pipeline (see the
          module docstring) and the method returns after ``process_request()``
          has returned -- for the mix-ins that means after the thread/process
          was *started*, not after the handler finished.
        * ``service_actions()`` is not called.
        """
        limit = _effective_timeout(self.socket.gettimeout(), self.timeout)
        deadline = None if limit is None else monotonic() + limit
        remaining = limit
        with _Selector() as selector:
            selector.register(self, selectors.EVENT_READ)
            while True:
                if selector.select(remaining):
                    self._handle_ready_request()
                    return
                # select() may return early and empty (e.g. after a signal);
                # only the deadline decides that the wait has timed out.
                if deadline is not None:
                    remaining = deadline - monotonic()
                    if remaining <= 0:
                        self.handle_timeout()
                        return

    def _handle_ready_request(self) -> None:
        """Run one request through the pipeline; the listening object is readable.

        Called only by ``serve_forever()``/``handle_request()`` after the
        selector reported readiness, so ``get_request()`` is not expected to
        block.  Guarantees ``shutdown_request()`` is called exactly once for
        every request that ``process_request()`` did not take over (see
        ``process_request``), even when a hook raises ``SystemExit`` or
        ``KeyboardInterrupt`` -- those are re-raised, never passed to
        ``handle_error()``.
        """
        try:
            request, client_address = self.get_request()
        except OSError:
            # Readiness can be stale: another process sharing the socket got
            # there first, or the peer vanished between the SYN and accept().
            # There is no request to report on, so drop it silently.
            return
        if not self.verify_request(request, client_address):
            self.shutdown_request(request)
            return
        try:
            self.process_request(request, client_address)
        except Exception:
            # handle_error() is called while the exception is being handled,
            # so it can inspect sys.exc_info() or re-raise it with a bare
            # ``raise``.
            self.handle_error(request, client_address)
            self.shutdown_request(request)
        except BaseException:
            # SystemExit/KeyboardInterrupt (etc.) must reach the caller, but
            # the connection must not be leaked on the way out.
            self.shutdown_request(request)
            raise

    def handle_timeout(self) -> None:
        """Hook: ``handle_request()`` waited its full limit without a request.

        Contract: called by ``handle_request()`` only, in the serving thread,
        at most once per ``handle_request()`` call, and only when a limit was
        in force (see ``handle_request``).  The default does nothing;
        ``ForkingMixIn`` reaps finished children here.
        """

    # ------------------------------------------------------------------
    # Per-request hooks, in pipeline order

    def verify_request(self, request: Request, client_address: Address) -> bool:
        """Hook: decide whether to process a request that has been received.

        Contract: called once per request, in the serving thread, before
        ``process_request()``.  Returning false makes the server call
        ``shutdown_request(request)`` and move on; the handler never runs.
        The default accepts everything.  An exception raised here propagates
        out of the serving loop unhandled (and the request is not shut down),
        so overrides should not raise.
        """
        return True

    def process_request(self, request: Request, client_address: Address) -> None:
        """Hook: dispatch a verified request.

        Contract: called once per verified request, in the serving thread.
        It owns the request from here on: it must eventually cause
        ``shutdown_request(request)`` to be called exactly once -- except that
        if it *raises*, the caller calls ``shutdown_request()`` itself (after
        ``handle_error()`` for an ``Exception``), so an implementation must not
        also have done so.

        The synchronous default runs ``finish_request()`` and then
        ``shutdown_request()`` in this thread.  ``ThreadingMixIn`` and
        ``ForkingMixIn`` override it to run the same two steps in a new thread
        or child process and return immediately.
        """
        self.finish_request(request, client_address)
        self.shutdown_request(request)

    def finish_request(self, request: Request, client_address: Address) -> None:
        """Hook: do the actual work for one request.

        Contract: called exactly once per processed request, by
        ``process_request()`` (so in the serving thread, a handler thread or a
        forked child depending on the mix-in).  The default instantiates
        ``RequestHandlerClass(request, client_address, self)``, whose
        constructor runs the handler to completion.  Exceptions propagate to
        the caller, which reports them through ``handle_error()``.
        """
        self.RequestHandlerClass(request, client_address, self)

    def shutdown_request(self, request: Request) -> None:
        """Hook: end a request's life -- shut the connection down, then close it.

        Contract: called exactly once per request obtained from
        ``get_request()`` (rejected, failed or completed), in whichever
        thread/process finished with it, after the handler (if any) has
        returned.  It must end by calling ``close_request()``.  The default
        only calls ``close_request()``; ``TCPServer`` first half-closes the
        connection so the peer sees end-of-file.
        """
        self.close_request(request)

    def close_request(self, request: Request) -> None:
        """Hook: release a request's resources.

        Contract: called by ``shutdown_request()`` and, in ``ForkingMixIn``'s
        parent process, right after forking (the parent's copy of the
        connection is not needed there).  Must be safe to call on a request
        whose connection is already broken.  The default does nothing.
        """

    def handle_error(self, request: Request, client_address: Address) -> None:
        """Hook: report an ``Exception`` raised while processing a request.

        Contract: called from inside the ``except`` block that caught the
        exception -- so ``sys.exc_info()`` describes it and a bare ``raise``
        re-raises it -- in the thread/process where the request was being
        processed.  Called at most once per request, and never for
        ``SystemExit``, ``KeyboardInterrupt`` or other non-``Exception``
        exceptions.  The request has *not* yet been shut down; the caller does
        that after this returns.  The default writes the traceback to the
        current ``sys.stderr`` and lets the server carry on.
        """
        rule = "-" * 40
        # One write, so reports from concurrent handler threads do not interleave.
        sys.stderr.write(
            f"{rule}\n"
            f"Exception occurred during processing of request from {client_address}\n"
            f"{traceback.format_exc()}"
            f"{rule}\n"
        )

    # ------------------------------------------------------------------
    # Teardown

    def server_close(self) -> None:
        """Hook: release the server's resources.

        Contract: called by the owner (directly or via ``__exit__``) after
        serving is over, and by ``TCPServer.__init__`` when binding or
        activating fails.  It should be safe to call more than once.  The
        default does nothing; ``TCPServer`` closes the listening socket and the
        mix-ins additionally wait for outstanding handlers (see
        ``block_on_close``).
        """

    def __enter__(self: _ServerT) -> _ServerT:
        """Return the server itself; ``with Server(...) as srv:`` closes it on exit."""
        return self

    def __exit__(self, *exc_info: Any) -> None:
        """Call ``server_close()``; exceptions from the ``with`` body propagate."""
        self.server_close()
