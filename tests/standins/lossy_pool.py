"""A pre-fork pool that loses requests: each worker drops every third request it accepts.

A worker recycling itself (or giving up on a request) after it already
accepted one is a classic pre-fork bug: the request is closed without a
handler ever running, and its client gets nothing back.  The pool is
``prefork_pool``'s; only the worker's accept step differs.
"""

from __future__ import annotations

from socketserver import *  # noqa: F403 - the rest of the API is the standard one
from socketserver import TCPServer, UDPServer, UnixDatagramServer, UnixStreamServer
from typing import Any

from standins import prefork_pool


class ThreadingMixIn(prefork_pool.ThreadingMixIn):
    """``prefork_pool``'s pool, whose workers close every third request unhandled."""

    lose_every = 3

    def _handle_request_noblock(self: Any) -> None:
        # Runs in a worker process: the count is the worker's own.
        self._accepted = getattr(self, "_accepted", 0) + 1
        if self._accepted % self.lose_every:
            super()._handle_request_noblock()  # type: ignore[misc]
            return
        try:
            request, _address = self.get_request()
        except OSError:
            return
        self.shutdown_request(request)  # dropped: no verify, no handler


class ThreadingTCPServer(ThreadingMixIn, TCPServer):
    pass


class ThreadingUDPServer(ThreadingMixIn, UDPServer):
    pass


class ThreadingUnixStreamServer(ThreadingMixIn, UnixStreamServer):
    pass


class ThreadingUnixDatagramServer(ThreadingMixIn, UnixDatagramServer):
    pass
