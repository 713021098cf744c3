"""The event log collects events from threads and from forked children."""

from __future__ import annotations

import os
import threading

from harness._eventlog import EventLog


def test_events_from_threads_and_forked_children_all_arrive() -> None:
    log = EventLog()
    try:
        threads = [threading.Thread(target=log.emit, args=("handle", "call", n)) for n in range(10)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(5)
        pids = []
        for n in range(5):
            pid = os.fork()
            if pid == 0:
                log.emit("handle", "call", 100 + n)
                os._exit(0)  # nothing may be lost although the child skips all cleanup
            pids.append(pid)
        for pid in pids:
            os.waitpid(pid, 0)
        assert log.sync(5.0)
        conns = sorted(e.conn for e in log.events("handle") if e.conn is not None)
        assert conns == [*range(10), *range(100, 105)]
        child_events = [e for e in log.events() if e.pid != os.getpid()]
        assert {e.pid for e in child_events} == set(pids)
    finally:
        log.close()


def test_exception_is_recorded_with_its_type() -> None:
    log = EventLog()
    try:
        log.emit("handle", "raise", 1, exc=ValueError("bad"))
        (event,) = log.events()
        assert event.exc_type == "ValueError" and "bad" in (event.exc or "")
        assert event.label() == "handle raised ValueError"
    finally:
        log.close()
