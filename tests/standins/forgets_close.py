"""A server that never calls ``close_request``: CPython's reference counting closes for it."""

from __future__ import annotations

import socket
from socketserver import *  # noqa: F403
from socketserver import TCPServer, ThreadingMixIn
from typing import Any


class TCPServer(TCPServer):  # type: ignore[no-redef]
    def shutdown_request(self, request: Any) -> None:
        try:
            request.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # and no close_request(): the last reference going closes the socket


class ThreadingTCPServer(ThreadingMixIn, TCPServer):
    pass
