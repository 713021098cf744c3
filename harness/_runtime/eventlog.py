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
import operator
import os
import pickle
import socket
import threading
import traceback
from collections.abc import Iterable, Sequence
from time import monotonic as _monotonic
from typing import Any

from harness._model.phases import IDLE_POLLS
from harness._model.records import LifecycleEvent

#: Harness threads carry this prefix so that leak checks can tell them apart.
HARNESS_THREAD_PREFIX = "sockspec-"

_SYNC = b"\x00sync"
_STOP = b"\x00stop"


class EventLog:
    """Collects ``LifecycleEvent`` records from every thread and process of a case."""

    def __init__(self) -> None:
        self._owner = os.getpid()
        self._lock = threading.Lock()
        self._events: list[LifecycleEvent] = []  # built from _flat on demand
        # Every row's fields, back to back (_ROW_FIELDS per row): extend() adds
        # a row atomically under the GIL, and the row tuple dies at once, so
        # the garbage collector has no new object per event to track.
        self._flat: list[Any] = []
        #: Events not kept because the log was full (``MAX_EVENTS``).
        self.dropped = 0
        self._max_flat = _MAX_FLAT  # lowered by trim()
        self._conns = itertools.count(1)
        # progress(): rows scanned so far, and how many of them were idle polls.
        self._progress_lock = threading.Lock()
        self._scanned = 0
        self._polls = 0
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
        """A connection id unique within this log, across all servers and processes of a case.

        The owner counts from 1.  A forked child (a pre-fork pool's worker
        calls ``get_request`` itself) would restart from its copy of the
        counter, so its ids are pid-qualified instead: ``pid * CHILD_CONN_STRIDE
        + n``, which no other process can give out.  ``next()`` on the counter
        is atomic under the GIL: no lock, which a fork could copy while held.
        """
        pid = _process.pid
        if pid == self._owner:
            return next(self._conns)
        return pid * CHILD_CONN_STRIDE + next(_process.conns)

    def emit(
        self,
        name: str,
        phase: str,
        conn: int | None = None,
        server: int = 0,
        exc: BaseException | None = None,
        *detail: Any,
    ) -> None:
        """Record that hook ``name`` reached ``phase`` (call/return/raise/point).

        ``detail`` is keys and values in turn (``"instance", 42``), atomic
        values only; it becomes the event's ``detail`` dict.

        This is on every hook's path (hooks call it positionally), so the
        owner process only adds the row's fields to a flat list and the rest
        waits until someone reads the log: the sequence number is the row's
        position, the thread's identity is computed once per thread, the pid
        once per process.  Nothing an event leaves behind is tracked by the
        garbage collector (hooks put no containers in ``detail``): millions of
        tracked rows made collections frequent and slow, which cost more than
        the hooks themselves.
        """
        pid = _process.pid
        try:
            identity = _local.identity
        except AttributeError:
            identity = _thread_identity()
        row: tuple[Any, ...]
        if exc is None:
            row = (name, phase, conn, _monotonic(), pid, identity, server, None, None, detail)
        else:
            row = (name, phase, conn, _monotonic(), pid, identity, server, type(exc).__name__,
                   _exc_text(exc), detail)  # fmt: skip
        if pid == self._owner:
            if len(self._flat) < self._max_flat:
                self._flat.extend(row)
            else:
                self.dropped += 1
        else:
            self._send(pickle.dumps(row))

    def _send(self, payload: bytes) -> None:
        try:
            self._tx.send(payload)
        except OSError:
            # Too big for one datagram (a huge traceback): keep the event, drop detail.
            self._tx.send(payload[:60000] if len(payload) <= 60000 else _truncated(payload))

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
            if isinstance(row, tuple) and len(row) == _ROW_FIELDS:
                if len(self._flat) < self._max_flat:
                    self._flat.extend(row)
                else:
                    self.dropped += 1  # its position, the order of arrival, is its seq

    def progress(self) -> int:
        """How many events other than idle polls have arrived so far (kept or
        dropped): a cheap measure of whether the server is doing anything at all.

        A loop idle in ``select()`` still runs ``service_actions()`` on every poll;
        those events are left out, or a threading server whose handlers are all
        stuck would look busy for ever.  Counted incrementally (new rows only).
        """
        with self._progress_lock:
            flat, width = self._flat, _ROW_FIELDS
            end = len(flat) // width
            polls = self._polls
            for seq in range(self._scanned, end):
                if flat[seq * width] in IDLE_POLLS:
                    polls += 1
            self._scanned, self._polls = end, polls
            return end - polls + self.dropped

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
            built, flat, width = len(self._events), self._flat, _ROW_FIELDS
            self._events.extend(
                _event(seq, flat[seq * width : (seq + 1) * width])
                for seq in range(built, len(flat) // width)
            )
            if len(self._events) > built:
                # Kept sorted between calls: the new tail merges in one pass.
                self._events.sort(key=_ORDER)
            events = self._events
        if name is None and conn is None:
            return list(events)
        return [
            e
            for e in events
            if (name is None or e.name == name) and (conn is None or e.conn == conn)
        ]

    def trim(self, keep: int) -> None:
        """Keep only the first ``keep`` events that arrived, now and from now on (the
        rest count as ``dropped``).

        For a log that overflowed: its story is incomplete and no check reads it,
        only the bounded evidence does, and building a million event records for
        that took seconds -- past a loaded machine's deadlines.
        """
        with self._lock, self._progress_lock:
            rows = len(self._flat) // _ROW_FIELDS
            if rows <= keep:
                return
            self._max_flat = keep * _ROW_FIELDS
            del self._flat[self._max_flat :]
            self.dropped += rows - keep
            self._events = [e for e in self._events if e.seq < keep]
            self._scanned = min(self._scanned, keep)

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
            ident = (event.thread_id, event.thread_name, event.daemon)
            values = (event.name, event.phase, event.conn, event.t, event.pid, ident)
            detail = tuple(item for pair in event.detail.items() for item in pair)
            self._flat.extend((*values, event.server, event.exc_type, event.exc, detail))

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


#: Connection ids of a forked child are ``pid * CHILD_CONN_STRIDE + n``.
CHILD_CONN_STRIDE = 1_000_000

#: Events one log keeps: a server looping without end must not exhaust memory
#: or make the checks run past every deadline (10,000 clients use about 200,000).
MAX_EVENTS = 1_000_000

_ORDER = operator.attrgetter("t", "seq")

#: A row: name, phase, conn, t, pid, (thread id, name, daemon), server, exc type, exc, detail.
_ROW_FIELDS = 10
_MAX_FLAT = MAX_EVENTS * _ROW_FIELDS


def _event(seq: int, row: Sequence[Any]) -> LifecycleEvent:
    name, phase, conn, t, pid, (ident, thread_name, daemon), server, exc_type, exc, detail = row
    return LifecycleEvent(
        seq,
        name,
        phase,
        conn,
        t,
        pid,
        ident,
        thread_name,
        daemon,
        server,
        exc_type,
        exc,
        _detail(detail),
    )


def _detail(flat: tuple[Any, ...]) -> dict[str, Any]:
    return {flat[i]: flat[i + 1] for i in range(0, len(flat) - 1, 2)}


class _Process:
    """This process's pid, kept current across forks (os.getpid() is a system call)."""

    pid = os.getpid()
    #: This process's own connection counter (see ``EventLog.new_conn``), new in each child.
    conns = itertools.count(1)

    @classmethod
    def forked(cls) -> None:
        cls.pid = os.getpid()
        cls.conns = itertools.count(1)


_process = _Process
os.register_at_fork(after_in_child=_Process.forked)

_local = threading.local()


def _thread_identity() -> tuple[int, str, bool]:
    """(ident, name, daemon) of the calling thread, kept for its later events.

    A forked child's thread keeps its parent thread's identity, as
    ``threading`` itself does; a name changed after a thread's first event is
    not seen.
    """
    thread = threading.current_thread()
    _local.identity = identity = (thread.ident or 0, thread.name, thread.daemon)
    return identity


def _exc_text(exc: BaseException) -> str:
    return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))[-4000:]


def _truncated(payload: bytes) -> bytes:
    row = list(pickle.loads(payload))
    row[8], row[9] = (row[8] or "")[-1000:], None  # exc text, detail
    return pickle.dumps(tuple(row))
