"""Request handlers: the objects that do the per-request work.

A server calls ``RequestHandlerClass(request, client_address, server)`` once per
request (from ``finish_request()``); the handler does all of its work inside
that constructor call.  ``BaseRequestHandler`` fixes the lifecycle;
``StreamRequestHandler`` and ``DatagramRequestHandler`` give the handler
file-like ``rfile``/``wfile`` objects for the two kinds of socket.

Handlers never close the request's socket: that is the server's
``shutdown_request()``, which runs after the handler has returned.
"""

from __future__ import annotations

import contextlib
import io
import socket
from typing import TYPE_CHECKING, cast

from ._types import Address, Request

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer

    from ._base import BaseServer


class BaseRequestHandler:
    """Base class for request handlers; one instance serves exactly one request.

    Lifecycle, all inside ``__init__`` and in the thread/process that called
    ``finish_request()``:

    1. ``request``, ``client_address`` and ``server`` are stored on the
       instance;
    2. ``setup()`` is called -- if it raises, neither ``handle()`` nor
       ``finish()`` runs;
    3. ``handle()`` is called;
    4. ``finish()`` is called exactly once *whenever setup() succeeded*, even
       if ``handle()`` raised (the exception then propagates after it).

    Subclasses implement ``handle()``; since every request gets a fresh
    instance, per-request state can live in instance attributes.
    """

    def __init__(self, request: Request, client_address: Address, server: BaseServer) -> None:
        """Store the request context and run setup/handle/finish (see the class docstring)."""
        self.request = request
        self.client_address = client_address
        self.server = server
        self.setup()
        try:
            self.handle()
        finally:
            self.finish()

    def setup(self) -> None:
        """Hook: prepare for ``handle()``; called once, first.  Default: nothing."""

    def handle(self) -> None:
        """Hook: service the request; called once, after ``setup()``.  Default: nothing."""

    def finish(self) -> None:
        """Hook: clean up; called once after ``handle()``, even if it raised.  Default: nothing."""


class _SocketWriter(io.BufferedIOBase):
    """Unbuffered, write-only binary file over a connected socket.

    ``StreamRequestHandler`` uses it as ``wfile`` when ``wbufsize == 0``.
    A plain ``socket.makefile('wb', 0)`` would return a raw ``SocketIO``,
    whose ``write()`` may send only part of the data (for instance when a
    signal interrupts a large send); this writer instead uses ``sendall()``,
    so each ``write()`` either transmits every byte or raises, and returns the
    full length.  Nothing is ever held back, so ``flush()`` is a no-op and
    ``close()`` leaves the socket itself open.
    """

    def __init__(self, sock: socket.socket) -> None:
        """Wrap ``sock``; the writer never closes it."""
        super().__init__()
        self._sock = sock

    def writable(self) -> bool:
        """Return True: this file only writes."""
        return True

    def write(self, b: ReadableBuffer, /) -> int:
        """Send all of ``b`` (blocking as needed) and return its length in bytes."""
        self._sock.sendall(b)
        # Report bytes, not items: ``b`` may be e.g. an array of wider elements.
        with memoryview(b) as view:
            return view.nbytes

    def fileno(self) -> int:
        """Return the underlying socket's descriptor."""
        return self._sock.fileno()


class StreamRequestHandler(BaseRequestHandler):
    """Handler for stream (connection) requests, with ``rfile`` and ``wfile``.

    ``setup()`` stores the connected socket as ``connection`` and wraps it:

    * ``rfile`` -- binary reader with buffer size ``rbufsize`` (-1: default
      buffering).  Reading past what the client sent blocks; end-of-file
      arrives when the client shuts down its sending side.
    * ``wfile`` -- binary writer with buffer size ``wbufsize``.  The default 0
      gives an unbuffered writer on which every ``write()`` sends all of its
      data before returning; any other value gives a buffered writer that
      ``finish()`` flushes.

    Class attributes: ``rbufsize`` (-1), ``wbufsize`` (0), ``timeout`` (None:
    if set, applied with ``connection.settimeout()`` so a stalled client
    raises ``TimeoutError`` in the handler instead of blocking it forever),
    ``disable_nagle_algorithm`` (False: if true, ``TCP_NODELAY`` is set, which
    only makes sense for TCP connections).
    """

    rbufsize: int = -1
    wbufsize: int = 0
    timeout: float | None = None
    disable_nagle_algorithm: bool = False

    # typeshed declares both files as BufferedIOBase; keep that interface so
    # code written against the stdlib stubs type-checks unchanged.
    connection: socket.socket
    rfile: io.BufferedIOBase
    wfile: io.BufferedIOBase

    def setup(self) -> None:
        """Configure the connection and create ``rfile``/``wfile`` (see the class docstring)."""
        self.connection = self.request
        if self.timeout is not None:
            self.connection.settimeout(self.timeout)
        if self.disable_nagle_algorithm:
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, True)
        self.rfile = cast(io.BufferedIOBase, self.connection.makefile("rb", self.rbufsize))
        if self.wbufsize == 0:
            self.wfile = _SocketWriter(self.connection)
        else:
            self.wfile = cast(io.BufferedIOBase, self.connection.makefile("wb", self.wbufsize))

    def finish(self) -> None:
        """Flush and close ``wfile``, then close ``rfile``; the connection stays open.

        A flush failure caused by the peer having gone away (``OSError``) is
        ignored: the handler is done and there is nobody left to tell.
        """
        if not self.wfile.closed:
            with contextlib.suppress(OSError):
                self.wfile.flush()
        self.wfile.close()
        self.rfile.close()


class DatagramRequestHandler(BaseRequestHandler):
    """Handler for datagram requests, with in-memory ``rfile`` and ``wfile``.

    ``setup()`` unpacks the request into ``packet`` (the received bytes) and
    ``socket`` (the server's socket), and creates ``rfile`` (a ``BytesIO``
    over the packet) and ``wfile`` (an empty ``BytesIO``).  ``finish()`` sends
    whatever was written to ``wfile`` back to ``client_address`` as a single
    datagram -- an empty one if nothing was written.
    """

    packet: bytes
    socket: socket.socket
    rfile: io.BytesIO
    wfile: io.BytesIO

    def setup(self) -> None:
        """Unpack the request and create the in-memory files."""
        self.packet, self.socket = self.request
        self.rfile = io.BytesIO(self.packet)
        self.wfile = io.BytesIO()

    def finish(self) -> None:
        """Send ``wfile``'s contents to ``client_address`` with one ``sendto()``."""
        self.socket.sendto(self.wfile.getvalue(), self.client_address)
