"""The event log: lifecycle events from server threads and forked children.

Events from the owning process are appended under a lock.  Events from forked
children travel over an AF_UNIX datagram socketpair opened *before* any fork:
each event is one datagram, written before the hook returns, so it is already
queued in the kernel when a child ends with ``os._exit``.  A reader thread
moves datagrams into the log; ``sync()`` sends a marker through the same queue
and waits for it, which proves every earlier datagram has been read.
"""

from __future__ import annotations

import itertools
import os
import pickle
import socket
import threading
import time
import traceback
from collections.abc import Iterable
from dataclasses import fields
from typing import Any

from ._records import LifecycleEvent

#: Harness threads carry this prefix so that leak checks can tell them apart.
HARNESS_THREAD_PREFIX = "sockspec-"

_SYNC = b"\x00sync"
_STOP = b"\x00stop"


class EventLog:
    """Collects ``LifecycleEvent`` records from every thread and process of a case."""

    def __init__(self) -> None:
        self._owner = os.getpid()
        self._lock = threading.Lock()
        self._events: list[LifecycleEvent] = []  # built from _rows on demand
        self._rows: list[tuple[Any, ...]] = []
        self._seq = itertools.count()
        self._conns = itertools.count(1)
        self._rx, self._tx = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        # Large buffers: a burst of children must not block on a full queue.
        for sock in (self._rx, self._tx):
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
            except OSError:
                pass
        self._synced = threading.Condition(self._lock)
        self._sync_count = 0
        self._closed = False
        self._reader = threading.Thread(
            target=self._read_loop, name=f"{HARNESS_THREAD_PREFIX}eventlog", daemon=True
        )
        self._reader.start()

    @property
    def owner_pid(self) -> int:
        """The pid of the process that reads the log."""
        return self._owner

    def fds(self) -> tuple[int, int]:
        """The descriptors the log holds (excluded from leak accounting)."""
        return self._rx.fileno(), self._tx.fileno()

    def new_conn(self) -> int:
        """A connection id unique within this log (across all servers of a case)."""
        with self._lock:
            return next(self._conns)

    def emit(
        self,
        name: str,
        phase: str,
        conn: int | None = None,
        *,
        server: int = 0,
        exc: BaseException | None = None,
        detail: dict[str, Any] | None = None,
    ) -> None:
        """Record that hook ``name`` reached ``phase`` (call/return/raise/point).

        This is on every hook's path, so the owner process only appends a plain
        tuple (list.append and next() are atomic under the GIL); records are
        built when someone reads the log.
        """
        thread = threading.current_thread()
        row = (
            next(self._seq),
            name,
            phase,
            conn,
            time.monotonic(),
            os.getpid(),
            thread.ident or 0,
            thread.name,
            thread.daemon,
            server,
            None if exc is None else type(exc).__name__,
            None if exc is None else _exc_text(exc),
            detail or {},
        )
        if row[5] == self._owner:
            self._rows.append(row)
        else:
            self._send(pickle.dumps(row))

    def _send(self, payload: bytes) -> None:
        try:
            self._tx.send(payload)
        except OSError:
            # Too big for one datagram (a huge traceback): keep the event, drop detail.
            self._tx.send(payload[:60000] if len(payload) <= 60000 else _truncated(payload))

    def _append(self, event: LifecycleEvent) -> None:
        self._rows.append((next(self._seq), *astuple_shallow(event)[1:]))

    def _read_loop(self) -> None:
        while True:
            try:
                data = self._rx.recv(1 << 17)
            except OSError:
                return
            if data == _STOP:
                return
            if data == _SYNC:
                with self._lock:
                    self._sync_count += 1
                    self._synced.notify_all()
                continue
            try:
                row = pickle.loads(data)
            except Exception:
                continue
            if isinstance(row, tuple) and len(row) == _FIELDS:
                # Children number from their copy of the counter: renumber on arrival.
                self._rows.append((next(self._seq), *row[1:]))

    def sync(self, timeout: float = 5.0) -> bool:
        """Wait until every event sent by any process so far is in the log."""
        if self._closed or os.getpid() != self._owner:
            return False
        with self._lock:
            target = self._sync_count + 1
        self._tx.send(_SYNC)
        with self._lock:
            return self._synced.wait_for(lambda: self._sync_count >= target, timeout)

    def events(self, name: str | None = None, conn: int | None = None) -> list[LifecycleEvent]:
        """A snapshot of the events so far in time order, optionally filtered."""
        with self._lock:
            built = len(self._events)
            self._events.extend(LifecycleEvent(*row) for row in self._rows[built:])
            events = sorted(self._events, key=lambda e: (e.t, e.seq))
        return [
            e
            for e in events
            if (name is None or e.name == name) and (conn is None or e.conn == conn)
        ]

    def conns(self) -> list[int]:
        """Connection ids seen so far, in order of first appearance."""
        seen: dict[int, None] = {}
        for event in self.events():
            if event.conn is not None:
                seen.setdefault(event.conn, None)
        return list(seen)

    def extend(self, events: Iterable[LifecycleEvent]) -> None:
        """Add events recorded elsewhere (e.g. replayed from a file)."""
        for event in events:
            self._append(event)

    def close(self) -> None:
        """Stop the reader and close the sockets (idempotent; owner only)."""
        if self._closed or os.getpid() != self._owner:
            return
        self._closed = True
        try:
            self._tx.send(_STOP)
        except OSError:
            pass
        self._reader.join(timeout=5.0)
        self._rx.close()
        self._tx.close()


_FIELDS = len(fields(LifecycleEvent))


def astuple_shallow(event: LifecycleEvent) -> tuple[Any, ...]:
    """The event's field values in order (no deep copy, unlike dataclasses.astuple)."""
    return tuple(getattr(event, f.name) for f in fields(LifecycleEvent))


def _exc_text(exc: BaseException) -> str:
    return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))[-4000:]


def _truncated(payload: bytes) -> bytes:
    row = list(pickle.loads(payload))
    row[11], row[12] = (row[11] or "")[-1000:], {}  # exc text, detail
    return pickle.dumps(tuple(row))
