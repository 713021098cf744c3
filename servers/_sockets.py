"""Socket-owning servers: TCP, UDP and their AF_UNIX twins.

``TCPServer`` is the general "server with a socket" class; the other three
only change the socket's family and/or type and the few hooks whose meaning
differs for datagrams.  The hierarchy (which CPython fixes, and user code
relies on via ``isinstance``) is::

    BaseServer
      `-- TCPServer ----------> UnixStreamServer
            `-- UDPServer ----> UnixDatagramServer

The AF_UNIX classes only exist on platforms that have ``socket.AF_UNIX``.
"""

from __future__ import annotations

import contextlib
import socket

from ._base import BaseServer
from ._types import Address, HandlerFactory, Request

# SO_REUSEPORT only means something for IP sockets; Linux 6.12.9+ rejects it
# on AF_UNIX sockets (EOPNOTSUPP), so setting it there would make construction
# fail.  CPython adopted the same restriction in gh-128916, backported to the
# 3.12/3.13 maintenance branches (3.13.0 itself still sets it unconditionally).
_REUSEPORT_FAMILIES = frozenset(
    family
    for family in (getattr(socket, "AF_INET", None), getattr(socket, "AF_INET6", None))
    if family is not None
)


class TCPServer(BaseServer):
    """Synchronous server on a stream socket (by default TCP over IPv4).

    Construction creates ``self.socket`` from ``address_family`` and
    ``socket_type``; unless ``bind_and_activate`` is false it then calls
    ``server_bind()`` and ``server_activate()``.  If either raises (any
    exception, including ``KeyboardInterrupt``), ``server_close()`` is called
    before the exception propagates, so a failed constructor never leaks the
    socket.  With ``bind_and_activate=False`` the caller may adjust
    ``self.socket`` and must call both hooks itself.

    Each accepted connection is one request: ``request`` is the connected
    socket and ``client_address`` the peer address from ``accept()``.

    Class attributes that subclasses or instances may override:

    ``address_family`` (``AF_INET``), ``socket_type`` (``SOCK_STREAM``)
        Used once, when the constructor creates the socket; set
        ``address_family = socket.AF_INET6`` in a subclass for IPv6.
    ``request_queue_size`` (5)
        The ``listen()`` backlog.
    ``allow_reuse_address`` (False)
        Set ``SO_REUSEADDR`` before binding (where the platform has it).
    ``allow_reuse_port`` (False)
        Set ``SO_REUSEPORT`` before binding, for AF_INET/AF_INET6 sockets on
        platforms that have it.
    ``timeout`` (None)
        See ``BaseServer``.

    After ``server_bind()``, ``server_address`` holds the address actually
    bound (``getsockname()``), so binding port 0 reveals the chosen port.
    """

    address_family: int = socket.AF_INET
    socket_type: int = socket.SOCK_STREAM
    request_queue_size: int = 5
    allow_reuse_address: bool = False
    allow_reuse_port: bool = False

    def __init__(
        self,
        server_address: Address,
        RequestHandlerClass: HandlerFactory,
        bind_and_activate: bool = True,
    ) -> None:
        """Create the socket and, by default, bind and activate it (see the class docstring)."""
        # BaseServer is named explicitly rather than via super(): TCPServer is
        # routinely combined with classes whose constructors take unrelated
        # arguments, and the next class in *their* MRO must not receive ours.
        BaseServer.__init__(self, server_address, RequestHandlerClass)
        self.socket = socket.socket(self.address_family, self.socket_type)
        if bind_and_activate:
            try:
                self.server_bind()
                self.server_activate()
            except BaseException:
                self.server_close()
                raise

    def server_bind(self) -> None:
        """Hook: apply the reuse options and bind ``self.socket`` to ``server_address``.

        Contract: called once by the constructor (when ``bind_and_activate``
        is true), before ``server_activate()``.  On return ``server_address``
        is the socket's actual bound address.  Overrides normally extend it
        (e.g. to set socket options first, or to derive names from the
        bound address afterwards).
        """
        if self.allow_reuse_address and hasattr(socket, "SO_REUSEADDR"):
            self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if (
            self.allow_reuse_port
            and hasattr(socket, "SO_REUSEPORT")
            and self.address_family in _REUSEPORT_FAMILIES
        ):
            self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        self.socket.bind(self.server_address)
        self.server_address = self.socket.getsockname()

    def server_activate(self) -> None:
        """Hook: start accepting connections (``listen(request_queue_size)``).

        Contract: called once by the constructor, after ``server_bind()``.
        """
        self.socket.listen(self.request_queue_size)

    def server_close(self) -> None:
        """Close the listening socket; idempotent (see ``BaseServer.server_close``).

        Afterwards ``self.socket.fileno()`` is -1.
        """
        self.socket.close()

    def fileno(self) -> int:
        """Return the listening socket's descriptor, so the server can be given to a selector."""
        return self.socket.fileno()

    def get_request(self) -> tuple[Request, Address]:
        """Hook: accept one connection and return ``(connection, peer_address)``.

        Contract: called by the serving loop, in the serving thread, only after
        the socket was reported readable.  Raising ``OSError`` makes the loop
        drop the attempt silently.
        """
        return self.socket.accept()

    def shutdown_request(self, request: Request) -> None:
        """Half-close the connection for writing, then ``close_request()`` it.

        The explicit ``shutdown(SHUT_WR)`` makes the peer see end-of-file even
        when another process (a forked sibling, say) still holds a duplicate
        of the descriptor, which a bare ``close()`` would not achieve.  It
        fails with ``ENOTCONN`` and similar if the peer already went away;
        that is harmless, so ``OSError`` is ignored.
        """
        with contextlib.suppress(OSError):
            request.shutdown(socket.SHUT_WR)
        self.close_request(request)

    def close_request(self, request: Request) -> None:
        """Close the connection socket."""
        request.close()


class UDPServer(TCPServer):
    """Synchronous server on a datagram socket (by default UDP over IPv4).

    Each received datagram is one request: ``request`` is the pair
    ``(data, server_socket)`` -- replies are sent through the *shared* server
    socket with ``sendto(..., client_address)`` -- and ``client_address`` is
    the sender address from ``recvfrom()``.  Datagrams longer than
    ``max_packet_size`` (8192) bytes are truncated by the kernel.

    There is no listen step and no per-request connection, so
    ``server_activate()``, ``shutdown_request()`` and ``close_request()``
    release nothing; in particular they never close the shared socket.
    """

    socket_type: int = socket.SOCK_DGRAM
    allow_reuse_address: bool = False
    allow_reuse_port: bool = False
    max_packet_size: int = 8192

    def get_request(self) -> tuple[Request, Address]:
        """Hook: receive one datagram; return ``((data, self.socket), sender_address)``."""
        data, client_address = self.socket.recvfrom(self.max_packet_size)
        return (data, self.socket), client_address

    def server_activate(self) -> None:
        """Datagram sockets need no ``listen()``; do nothing."""

    def shutdown_request(self, request: Request) -> None:
        """Only ``close_request()``: there is no connection to shut down."""
        self.close_request(request)

    def close_request(self, request: Request) -> None:
        """Do nothing: the request's socket is the server's own and must stay open."""


if hasattr(socket, "AF_UNIX"):

    class UnixStreamServer(TCPServer):
        """``TCPServer`` on an AF_UNIX stream socket; ``server_address`` is a filesystem path.

        The server does not remove its socket file, neither before binding nor
        on close -- exactly like CPython; that is the owner's job.
        """

        address_family: int = socket.AF_UNIX

    class UnixDatagramServer(UDPServer):
        """``UDPServer`` on an AF_UNIX datagram socket.

        A client must bind its own socket to a path to be able to receive the
        reply: for an unbound sender ``client_address`` is ``None`` (on Linux),
        so ``DatagramRequestHandler.finish()``'s ``sendto()`` raises and the
        server reports it through ``handle_error()``.
        """

        address_family: int = socket.AF_UNIX
