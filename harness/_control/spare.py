"""Spare workers: a replacement is started ahead, off the critical path.

A worker is retired after every hang or crash, and starting one (interpreter,
implementation, scenario discovery) costs about half a second.  Once an
implementation has lost a worker, more losses are likely, so a spare for it is
started in the background; the next replacement takes it at once.  A clean run
never retires a worker and so never starts a spare.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from harness._control.supervisor import Worker


class SpareWorkers:
    """Up to ``depth`` spare workers per implementation, started in the background.

    ``depth`` is the number of worker slots: when every case hangs, every slot
    retires its worker at about the same time, and each should find a spare.
    """

    def __init__(self, start: Callable[[str], Worker], depth: int = 1) -> None:
        self._start = start
        self._depth = max(1, depth)
        self._lock = threading.Lock()
        self._spares: dict[str, list[threading.Thread]] = {}
        self._ready: dict[threading.Thread, Worker] = {}
        self._closed = False

    def take(self, spec: str) -> Worker | None:
        """A started spare for ``spec`` (waiting for the oldest being started), or None."""
        with self._lock:
            queue = self._spares.get(spec)
            thread = queue.pop(0) if queue else None
        if thread is None:
            return None
        thread.join()
        with self._lock:
            worker = self._ready.pop(thread, None)
        if worker is not None and not worker.alive():
            worker.kill()
            return None
        return worker

    def prepare(self, spec: str) -> None:
        """Start a spare for ``spec`` in the background unless ``depth`` exist."""
        with self._lock:
            queue = self._spares.setdefault(spec, [])
            if self._closed or len(queue) >= self._depth:
                return
            thread = threading.Thread(
                target=self._make, args=(spec,), name="sockspec-spare", daemon=True
            )
            # Started under the lock: another slot's take() may join it at once
            # (joining a thread not yet started raises RuntimeError).
            thread.start()
            queue.append(thread)

    def _make(self, spec: str) -> None:
        me = threading.current_thread()  # take() finds the worker by its thread
        try:
            worker = self._start(spec)
        except Exception:  # the synchronous start in take()'s caller reports it
            return
        with self._lock:
            if self._closed:
                worker.close()
                return
            self._ready[me] = worker

    def close(self) -> None:
        """Stop every spare (started or starting)."""
        with self._lock:
            self._closed = True
            threads = [t for q in self._spares.values() for t in q]
        for thread in threads:
            thread.join()
        with self._lock:
            ready, self._ready = list(self._ready.values()), {}
        for worker in ready:
            worker.kill()
