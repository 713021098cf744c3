"""A stream-only socketserver module over ``systemd-socketserver``'s socket-activated server.

``systemd_socketserver.SystemdSocketServer`` (PyPI ``systemd-socketserver`` 1.0)
serves a listening socket that systemd opened and passed in by descriptor: it
has no ``server_bind``/``server_activate`` of its own and takes a descriptor,
not an address.  The adapter stands in for systemd: it opens, binds and
listens on the address the harness asks for, then hands the descriptor over.
A server made with ``bind_and_activate=False`` cannot exist (there is no
descriptor to hand over yet), so the adapter refuses it as socket activation
would; the catalogue's deferred-bind cases then learn that no ``server_bind``
exists.  Only stream transports are offered: a datagram socket is served as
one already-"accepted" request, which is not the socketserver model.
"""

from __future__ import annotations

import socket
from socketserver import (
    BaseRequestHandler,
    BaseServer,
    DatagramRequestHandler,
    ForkingMixIn,
    StreamRequestHandler,
    ThreadingMixIn,
)
from typing import Any

from systemd_socketserver import SystemdSocketServer

__all__ = [
    "BaseRequestHandler",
    "BaseServer",
    "DatagramRequestHandler",
    "ForkingMixIn",
    "ForkingTCPServer",
    "ForkingUnixStreamServer",
    "StreamRequestHandler",
    "TCPServer",
    "ThreadingMixIn",
    "ThreadingTCPServer",
    "ThreadingUnixStreamServer",
    "UnixStreamServer",
]


class _Activated(SystemdSocketServer):
    """``SystemdSocketServer`` given a socket the way systemd would give it."""

    address_family = socket.AF_INET
    socket_type = socket.SOCK_STREAM
    request_queue_size = 5
    allow_reuse_address = True

    def __init__(
        self, server_address: Any, RequestHandlerClass: Any, bind_and_activate: bool = True
    ) -> None:
        if not bind_and_activate:
            raise TypeError("a socket-activated server is created from a listening descriptor")
        listener = socket.socket(self.address_family, self.socket_type)
        try:
            if self.allow_reuse_address and self.address_family != getattr(socket, "AF_UNIX", -1):
                listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind(server_address)
            listener.listen(self.request_queue_size)
        except BaseException:
            listener.close()
            raise
        # systemd passes the descriptor and keeps no object: detach ours.
        super().__init__(listener.detach(), RequestHandlerClass)


class TCPServer(_Activated):
    """TCP, socket-activated."""


class UnixStreamServer(_Activated):
    """Unix stream, socket-activated."""

    address_family = socket.AF_UNIX


class ThreadingTCPServer(ThreadingMixIn, TCPServer):
    """TCP, socket-activated, a thread per request."""


class ForkingTCPServer(ForkingMixIn, TCPServer):
    """TCP, socket-activated, a process per request."""


class ThreadingUnixStreamServer(ThreadingMixIn, UnixStreamServer):
    """Unix stream, socket-activated, a thread per request."""


class ForkingUnixStreamServer(ForkingMixIn, UnixStreamServer):
    """Unix stream, socket-activated, a process per request."""
