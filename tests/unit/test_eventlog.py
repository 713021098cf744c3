"""The event log collects events from threads and from forked children."""

from __future__ import annotations

import gc
import os
import threading

import pytest

from harness._runtime import eventlog as _eventlog
from harness._runtime.eventlog import EventLog


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


def test_detail_pairs_become_a_dict_and_children_keep_theirs() -> None:
    log = EventLog()
    try:
        log.emit("get_request", "return", 1, 7, None, "client_address", "127.0.0.1:5", "x", 2)
        pid = os.fork()
        if pid == 0:
            log.emit("handle", "call", 1, 7, None, "instance", 42)
            os._exit(0)
        os.waitpid(pid, 0)
        assert log.sync(5.0)
        first, child = log.events()
        assert first.detail == {"client_address": "127.0.0.1:5", "x": 2} and first.server == 7
        assert child.detail == {"instance": 42} and child.pid == pid
    finally:
        log.close()


def test_events_leave_nothing_for_the_garbage_collector_to_track() -> None:
    """Tracked rows made full collections frequent and slow (issue 8's overhead)."""
    log = EventLog()
    try:
        gc.collect()
        before = len(gc.get_objects())
        for n in range(20_000):
            log.emit("verify_request", "return", n, 1, None, "result", True)
            log.emit("handle", "call", n, 1, None, "instance", n)
        gc.collect()
        assert len(gc.get_objects()) - before < 100
        assert len(log.events("handle")) == 20_000
    finally:
        log.close()


def test_a_full_log_counts_what_it_drops(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_eventlog, "_MAX_FLAT", 3 * _eventlog._ROW_FIELDS)
    log = EventLog()
    try:
        for n in range(5):
            log.emit("handle", "call", n)
        assert [e.conn for e in log.events()] == [0, 1, 2]
        assert log.dropped == 2
    finally:
        log.close()


def test_a_trimmed_log_keeps_its_first_events_and_counts_the_rest_dropped() -> None:
    log = EventLog()
    try:
        for n in range(5):
            log.emit("handle", "call", n)
        assert len(log.events()) == 5  # the cache of built records is trimmed too
        log.trim(2)
        log.emit("handle", "call", 5)
        assert [e.conn for e in log.events()] == [0, 1]
        assert log.dropped == 4
    finally:
        log.close()


def test_connection_ids_are_unique_across_forked_children() -> None:
    """Two children of one log (a pre-fork pool's workers) never give out the same id."""
    log = EventLog()
    try:
        parent = [log.new_conn(), log.new_conn()]
        ids: list[int] = []
        for _ in range(2):
            rx, tx = os.pipe()
            pid = os.fork()
            if pid == 0:
                os.write(tx, f"{log.new_conn()} {log.new_conn()}".encode())
                os._exit(0)
            os.close(tx)
            with os.fdopen(rx) as pipe:
                ids += [int(n) for n in pipe.read().split()]
            os.waitpid(pid, 0)
    finally:
        log.close()
    assert parent == [1, 2]
    assert len(set(ids)) == 4 and not set(ids) & set(parent)
