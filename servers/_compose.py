"""Ready-made combinations of a concurrency mix-in with a socket server.

Each class is simply ``Mixin + Server`` with the mix-in first, so that its
``process_request()``/``server_close()`` (and for forking, ``timeout``,
``handle_timeout()`` and ``service_actions()``) take precedence.  Which
classes exist depends on the platform, exactly as in CPython: the forking ones
need ``os.fork``, the Unix ones ``socket.AF_UNIX``.
"""

from __future__ import annotations

import os
import socket

from ._sockets import TCPServer, UDPServer
from ._threading import ThreadingMixIn


class ThreadingTCPServer(ThreadingMixIn, TCPServer):
    """``TCPServer`` handling each connection in its own thread."""


class ThreadingUDPServer(ThreadingMixIn, UDPServer):
    """``UDPServer`` handling each datagram in its own thread."""


if hasattr(os, "fork"):
    from ._forking import ForkingMixIn

    class ForkingTCPServer(ForkingMixIn, TCPServer):
        """``TCPServer`` handling each connection in a forked child process."""

    class ForkingUDPServer(ForkingMixIn, UDPServer):
        """``UDPServer`` handling each datagram in a forked child process."""


if hasattr(socket, "AF_UNIX"):
    from ._sockets import UnixDatagramServer, UnixStreamServer

    class ThreadingUnixStreamServer(ThreadingMixIn, UnixStreamServer):
        """``UnixStreamServer`` handling each connection in its own thread."""

    class ThreadingUnixDatagramServer(ThreadingMixIn, UnixDatagramServer):
        """``UnixDatagramServer`` handling each datagram in its own thread."""

    if hasattr(os, "fork"):

        class ForkingUnixStreamServer(ForkingMixIn, UnixStreamServer):
            """``UnixStreamServer`` handling each connection in a forked child process."""

        class ForkingUnixDatagramServer(ForkingMixIn, UnixDatagramServer):
            """``UnixDatagramServer`` handling each datagram in a forked child process."""
