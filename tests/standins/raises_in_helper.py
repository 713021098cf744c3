"""A library whose servers take ``shutdown()`` from a helper module it imports."""

from __future__ import annotations

from socketserver import *  # noqa: F403
from socketserver import TCPServer, UDPServer

from standins._helper_raises import LazyPoolMixIn


class ThreadingTCPServer(LazyPoolMixIn, TCPServer):
    pass


class ThreadingUDPServer(LazyPoolMixIn, UDPServer):
    pass
