"""Resource accounting: which descriptors a case left behind."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time

import psutil

from harness._runtime.resources import (
    ResourceSnapshot,
    diff,
    has_children,
    settle,
    take_snapshot,
)

EPOLL = "anon_inode:[eventpoll]"


def _fds(fds: dict[int, str]) -> ResourceSnapshot:
    return ResourceSnapshot(fds=fds, threads={}, children={})


def test_a_descriptor_that_moved_to_another_number_is_no_leak() -> None:
    # gevent's libev replaces its epoll descriptor when a forked child keeps one open
    # that was registered in it: same object kind, another number.
    before = _fds({3: "socket:[11]", 5: EPOLL})
    after = _fds({3: "socket:[11]", 7: EPOLL})
    assert diff(before, after).fds == {}


def test_one_more_of_a_kind_beside_a_moved_one_is_a_leak() -> None:
    assert diff(_fds({5: EPOLL}), _fds({7: EPOLL, 8: EPOLL})).fds == {8: EPOLL}


def test_a_new_socket_at_a_reused_number_is_a_leak() -> None:
    before = _fds({4: "socket:[11]"})
    assert diff(before, _fds({4: "socket:[12]"})).fds == {4: "socket:[12]"}
    assert diff(before, _fds({4: "socket:[11]", 6: "socket:[13]"})).fds == {6: "socket:[13]"}


def test_ignored_descriptors_are_never_leaks() -> None:
    assert diff(_fds({}), _fds({9: "socket:[14]"}), ignore_fds=[9]).fds == {}


def test_settling_ends_at_once_when_only_pinned_descriptors_are_left() -> None:
    before = take_snapshot()
    with socket.socket() as kept:  # a listening socket server_close() left open
        started = time.monotonic()
        leaks = settle(before, 30.0, pinned=lambda: {kept.fileno()})
        assert time.monotonic() - started < 10.0  # not the 30 s grace
        assert kept.fileno() in leaks.fds  # still reported
        leaks = settle(before, 0.3, pinned=set)  # not pinned: the whole grace is waited
        assert kept.fileno() in leaks.fds


def test_descriptors_alone_and_unchanged_are_leaked_after_the_quiet_time() -> None:
    before = take_snapshot()
    with socket.socket() as kept:  # a connection the server keeps (no thread to close it)
        started = time.monotonic()
        leaks = settle(before, 30.0, quiet=0.3)
        waited = time.monotonic() - started
        assert 0.3 <= waited < 10.0  # the quiet time, not the 30 s grace
        assert kept.fileno() in leaks.fds


def test_a_descriptor_a_thread_will_close_is_waited_for() -> None:
    before = take_snapshot()
    sock = socket.socket()
    closed = threading.Event()

    def close_later() -> None:
        closed.wait(0.6)  # longer than the quiet time: the thread is what is waited on
        sock.close()

    closer = threading.Thread(target=close_later)
    closer.start()
    try:
        leaks = settle(before, 30.0, quiet=0.1)
    finally:
        closed.set()
        closer.join(10.0)
    assert not leaks.fds and not leaks.threads


def test_the_quick_child_question_agrees_with_the_process_table_and_reaps_nothing() -> None:
    """``has_children`` (one waitid) spares the scan of every process's /proc entry: it
    must say yes for a running child and for a zombie, and leave the zombie unreaped."""
    had = bool(psutil.Process().children())
    assert has_children() is had
    child = subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE
    )
    try:
        assert has_children()
        assert child.pid in take_snapshot().children
        assert child.stdin is not None
        child.stdin.close()  # it exits; nobody reaps it until child.wait()
        deadline = time.monotonic() + 30
        while psutil.Process(child.pid).status() != psutil.STATUS_ZOMBIE:
            assert time.monotonic() < deadline, "the child did not exit"
            time.sleep(0.01)
        assert has_children()
        assert psutil.Process(child.pid).status() == psutil.STATUS_ZOMBIE  # still unreaped
        assert take_snapshot().children.get(child.pid) == psutil.STATUS_ZOMBIE
    finally:
        child.kill()
        child.wait(timeout=30)
    assert has_children() is bool(psutil.Process().children())
