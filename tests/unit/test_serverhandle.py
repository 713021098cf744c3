"""The harness's grip on a server: waiting for the serving thread after ``shutdown()``."""

from __future__ import annotations

import threading
import time
from typing import Any

from harness._runtime.serverhandle import ServerHandle


class _RunsOn:
    """A server whose ``shutdown()`` returns without stopping its loop."""

    def __init__(self) -> None:
        self.stop = threading.Event()

    def serve_forever(self, poll_interval: float) -> None:
        while not self.stop.wait(poll_interval):
            pass

    def shutdown(self) -> None:
        pass


def _stop(server: Any, limit: float, loop_ran: bool) -> float:
    handle = ServerHandle(server, "tcp", limit, loop_ran=lambda ident, since: loop_ran)
    handle.serve()
    started = time.monotonic()
    try:
        handle.stop()
    finally:
        server.stop.set()
    assert handle.survived_shutdown
    return time.monotonic() - started


def test_a_loop_seen_running_after_shutdown_ends_the_wait_at_once() -> None:
    assert _stop(_RunsOn(), 30.0, loop_ran=True) < 10.0  # not the 30 s deadline


def test_without_a_sign_of_the_loop_the_whole_deadline_is_waited() -> None:
    assert _stop(_RunsOn(), 0.3, loop_ran=False) >= 0.3
