"""A library offering TCP only: no UDP, no Unix sockets."""

from __future__ import annotations

from socketserver import (
    BaseRequestHandler,
    BaseServer,
    ForkingMixIn,
    ForkingTCPServer,
    StreamRequestHandler,
    TCPServer,
    ThreadingMixIn,
    ThreadingTCPServer,
)

__all__ = [
    "BaseRequestHandler",
    "BaseServer",
    "ForkingMixIn",
    "ForkingTCPServer",
    "StreamRequestHandler",
    "TCPServer",
    "ThreadingMixIn",
    "ThreadingTCPServer",
]
