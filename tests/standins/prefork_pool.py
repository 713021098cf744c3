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
import time
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
                os.kill(pid, signal.SIGTERM)  # idle workers leave at once, busy ones after
            for pid in pids:
                _reap(pid, poll_interval)
            self._pool_done.set()

    def _fork_worker(self: Any, poll_interval: float) -> int:
        pid = os.fork()
        if pid:
            return pid
        state = {"busy": False, "stop": False}
        accept = self.get_request

        def get_request() -> Any:
            request = accept()  # an idle worker may block here: SIGTERM ends it at once
            state["busy"] = True  # from here the request is finished before leaving
            return request

        def on_term(signum: int, frame: Any) -> None:
            state["stop"] = True
            if not state["busy"]:
                os._exit(0)

        self.get_request = get_request
        signal.signal(signal.SIGTERM, on_term)
        try:
            while not state["stop"]:
                ready, _, _ = select.select([self], [], [], poll_interval)
                if ready:
                    self._handle_request_noblock()
                    state["busy"] = False
        finally:
            os._exit(0)

    def shutdown(self: Any) -> None:
        self._pool_stop.set()
        self._pool_done.wait()


def _reap(pid: int, patience: float) -> None:
    """Wait for a worker to finish its request and leave; kill it if it takes too long.

    Within a second (ten poll intervals if longer), as pools do with stragglers: a
    worker can be busy for ever with a connection no client of the case made (another
    test's probe of a reused port, whose handler waits for bytes that never come), and
    waiting 5 s for it made ``shutdown()`` outlast its phase deadline under load.
    """
    deadline = time.monotonic() + max(1.0, 10 * patience)
    while time.monotonic() < deadline:
        if os.waitpid(pid, os.WNOHANG)[0]:
            return
        time.sleep(0.01)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)


class ThreadingTCPServer(ThreadingMixIn, TCPServer):
    pass


class ThreadingUDPServer(ThreadingMixIn, UDPServer):
    pass


class ThreadingUnixStreamServer(ThreadingMixIn, UnixStreamServer):
    pass


class ThreadingUnixDatagramServer(ThreadingMixIn, UnixDatagramServer):
    pass
