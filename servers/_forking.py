"""``ForkingMixIn``: one new child process per request (POSIX only).

The parent keeps the set of children it has forked and reaps them -- on every
``serve_forever()`` iteration, on ``handle_request()`` timeouts and in
``server_close()`` -- so finished children do not linger as zombies.  Only
pids the server forked itself are waited for individually; the one exception
is the throttle (``max_children``), which has to wait for *any* child.

This module is only imported on platforms with ``os.fork``.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from ._types import Address, Request

if TYPE_CHECKING:
    # See _threading.py: a BaseServer for the type checker, object at run time.
    from ._base import BaseServer as _MixinBase
else:
    _MixinBase = object


class ForkingMixIn(_MixinBase):
    """Mix-in that processes each request in a forked child process.

    Must precede the server class in the bases (``class S(ForkingMixIn,
    TCPServer)``).

    Class attributes:

    ``timeout`` (300)
        Overrides ``BaseServer.timeout`` so that a server driven by
        ``handle_request()`` still wakes up periodically to reap children.
    ``max_children`` (40)
        When ``collect_children()`` finds this many children outstanding it
        blocks until enough have exited.  ``process_request()`` itself never
        waits, so the limit is enforced at the next reaping point.
    ``block_on_close`` (True)
        Whether ``server_close()`` waits for all children to exit, or only
        reaps the ones already finished.

    Instance state: ``active_children`` -- ``None`` until the first fork,
    then the ``set`` of pids forked by this server and not yet reaped.

    Process model: the handler runs only in the child.  The child never
    returns into the caller's code: after the request it always ends with
    ``os._exit()`` -- status 0 if ``finish_request()`` returned, 1 if it
    raised anything -- so it can neither re-enter the accept loop nor run the
    parent's ``atexit`` handlers or flush stdio buffers inherited from it.
    State changed by a handler (e.g. attributes of the server) is therefore
    only visible in that child.
    """

    timeout: float | None = 300
    active_children: set[int] | None = None
    max_children: int = 40
    block_on_close: bool = True

    def collect_children(self, *, blocking: bool = False) -> None:
        """Reap exited children and forget their pids.

        Contract: called by the parent only (from ``service_actions()``,
        ``handle_timeout()`` and ``server_close()``).  First, while at least
        ``max_children`` children are outstanding, waits for any child to
        exit.  Then checks each remembered pid: with ``blocking`` false only
        finished children are reaped; with ``blocking`` true it waits for
        every one, so ``active_children`` is empty on return.  Pids that turn
        out not to be our children any more (reaped elsewhere) are forgotten.
        Does nothing before the first fork.
        """
        children = self.active_children
        if children is None:
            return

        # Throttle.  waitpid(-1) may collect a child this server did not fork;
        # the set is then unchanged and we simply wait again.
        while children and len(children) >= self.max_children:
            try:
                pid, _status = os.waitpid(-1, 0)
            except ChildProcessError:
                # The process has no children at all: every remembered pid is
                # stale (reaped by someone else), so forget them all.
                children.clear()
            except OSError:
                break
            else:
                children.discard(pid)

        options = 0 if blocking else os.WNOHANG
        for pid in list(children):
            try:
                reaped, _status = os.waitpid(pid, options)
            except ChildProcessError:
                children.discard(pid)
                continue
            except OSError:
                # Anything else is unexpected; keep the pid and retry next time.
                continue
            # With WNOHANG a still-running child is reported as pid 0.
            if reaped == pid:
                children.discard(pid)

    def handle_timeout(self) -> None:
        """Reap finished children (non-blocking) when ``handle_request()`` times out.

        Replaces, rather than extends, the next class's ``handle_timeout()``.
        """
        self.collect_children()

    def service_actions(self) -> None:
        """Reap finished children (non-blocking) on every ``serve_forever()`` iteration.

        Replaces, rather than extends, the next class's ``service_actions()``.
        """
        self.collect_children()

    def process_request(self, request: Request, client_address: Address) -> None:
        """Fork; the child handles the request, the parent returns at once.

        Contract, parent side (the serving thread): records the child's pid in
        ``active_children`` and calls ``close_request()`` to drop its own copy
        of the request -- *not* ``shutdown_request()``, which would also end
        the connection for the child.  ``os.fork()`` failing propagates
        (the serving loop then shuts the request down).

        Child side: runs ``finish_request()``; an ``Exception`` goes to
        ``handle_error()``; then ``shutdown_request()`` is called exactly once;
        then the process ends with ``os._exit(0)`` on success or
        ``os._exit(1)`` otherwise -- also when ``handle_error()`` or
        ``shutdown_request()`` raise, and for ``SystemExit``.
        """
        pid = os.fork()
        if pid:
            if self.active_children is None:
                self.active_children = set()
            self.active_children.add(pid)
            self.close_request(request)
            return

        # Child process.  Every path out of this block must end in os._exit().
        status = 1
        try:
            self.finish_request(request, client_address)
            status = 0
        except Exception:
            self.handle_error(request, client_address)
        finally:
            try:
                self.shutdown_request(request)
            finally:
                os._exit(status)

    def server_close(self) -> None:
        """Close the server, then reap children.

        Contract: after the next class's ``server_close()`` has run, calls
        ``collect_children(blocking=block_on_close)``: with the default
        ``block_on_close = True`` it returns only once every child has exited
        and been reaped (``active_children`` is then empty), leaving no zombies.
        """
        super().server_close()
        self.collect_children(blocking=self.block_on_close)
