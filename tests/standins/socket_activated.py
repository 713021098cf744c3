"""A socket-activated TCP server: handed a listening socket, it has no ``server_bind``.

As ``systemd_socketserver.SystemdSocketServer`` (a ``BaseServer`` taking a
descriptor); here the constructor opens the listener itself, standing in for
systemd.
"""

from __future__ import annotations

import socket
from socketserver import BaseRequestHandler, BaseServer, StreamRequestHandler, ThreadingMixIn
from typing import Any


class TCPServer(BaseServer):
    address_family = socket.AF_INET

    def __init__(self, address: Any, handler: Any, bind_and_activate: bool = True) -> None:
        self.socket = socket.create_server(address)
        BaseServer.__init__(self, self.socket.getsockname(), handler)

    def fileno(self) -> int:
        return self.socket.fileno()

    def get_request(self) -> Any:
        return self.socket.accept()

    def shutdown_request(self, request: Any) -> None:
        try:
            request.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        self.close_request(request)

    def close_request(self, request: Any) -> None:
        request.close()

    def server_close(self) -> None:
        self.socket.close()


class ThreadingTCPServer(ThreadingMixIn, TCPServer):
    pass


__all__ = [
    "BaseRequestHandler",
    "BaseServer",
    "StreamRequestHandler",
    "TCPServer",
    "ThreadingTCPServer",
]
