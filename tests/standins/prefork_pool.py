"""A pre-fork pool: ``ThreadingMixIn`` replaced by workers forked when serving starts.

Each worker process calls ``_handle_request_noblock`` (so ``get_request``)
itself, as pre-fork designs do; the serving process only waits for
``shutdown()``, runs ``service_actions`` and stops and reaps the workers.
"""

from __future__ import annotations

import os
import select
import signal
import threading
from socketserver import *  # noqa: F403 - the rest of the API is the standard one
from socketserver import TCPServer, UDPServer, UnixDatagramServer, UnixStreamServer
from typing import Any


class ThreadingMixIn:
    """A pool of ``workers`` processes, forked by ``serve_forever``."""

    workers = 2

    def serve_forever(self: Any, poll_interval: float = 0.5) -> None:
        self._pool_stop = threading.Event()
        self._pool_done = threading.Event()
        pids = [self._fork_worker(poll_interval) for _ in range(self.workers)]
        try:
            while not self._pool_stop.wait(poll_interval):
                self.service_actions()
        finally:
            for pid in pids:
                os.kill(pid, signal.SIGKILL)  # idle workers block in accept()/recvfrom()
            for pid in pids:
                os.waitpid(pid, 0)
            self._pool_done.set()

    def _fork_worker(self: Any, poll_interval: float) -> int:
        pid = os.fork()
        if pid:
            return pid
        try:
            while True:
                ready, _, _ = select.select([self], [], [], poll_interval)
                if ready:
                    self._handle_request_noblock()
        finally:
            os._exit(0)

    def shutdown(self: Any) -> None:
        self._pool_stop.set()
        self._pool_done.wait()


class ThreadingTCPServer(ThreadingMixIn, TCPServer):
    pass


class ThreadingUDPServer(ThreadingMixIn, UDPServer):
    pass


class ThreadingUnixStreamServer(ThreadingMixIn, UnixStreamServer):
    pass


class ThreadingUnixDatagramServer(ThreadingMixIn, UnixDatagramServer):
    pass
