"""Instrumentation: every hook is recorded with its connection, thread and process."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from harness import echo_script, load_implementation
from harness._adhoc import AdhocSession


@pytest.fixture
def session() -> Iterator[AdhocSession]:
    s = AdhocSession(load_implementation("reference"))
    yield s
    s.close()


def test_threading_events_carry_thread_and_daemon_flag(session: AdhocSession) -> None:
    server = session.server("tcp", "threading", daemon_threads=True)
    ctx = session._owner(server)
    results = session.swarm(server, [echo_script(b"x", True)] * 3)
    assert all(r.ok for r in results)
    assert ctx.wait_events("close_request", 3, phase="return")
    handles = [e for e in ctx.events("handle") if e.phase == "call"]
    assert len(handles) == 3
    assert all(e.daemon for e in handles)
    assert len({e.thread_name for e in handles}) == 3
    assert {e.conn for e in handles} == {1, 2, 3}
    accepted = [e for e in ctx.events("get_request") if e.phase == "return"]
    ports = {tuple(e.detail["client_address"])[1] for e in accepted}
    assert ports == {r.local_address[1] for r in results}


def test_forked_children_report_their_events(session: AdhocSession) -> None:
    server = session.server("tcp", "forking")
    ctx = session._owner(server)
    results = session.swarm(server, [echo_script(b"y", True)] * 3)
    assert all(r.ok for r in results)
    assert ctx.wait_events("finish", 3, phase="return")
    finishes = [e for e in ctx.events("finish") if e.phase == "return"]
    assert all(e.pid != os.getpid() for e in finishes)
    assert len({e.pid for e in finishes}) == 3
    assert session.findings(server) == []


def test_handler_exception_is_captured_not_just_printed(session: AdhocSession) -> None:
    from harness import raising

    server = session.server("tcp", "sync", handler=raising("boom"))
    ctx = session._owner(server)
    session.swarm(server, [echo_script(b"", True)])
    assert ctx.wait_events("handle_error", 1)
    (call,) = [e for e in ctx.events("handle_error") if e.phase == "call"]
    assert "InjectedError: boom" in call.detail["error"]
    (raised,) = [e for e in ctx.events("handle") if e.phase == "raise"]
    assert raised.exc_type == "InjectedError" and raised.conn == call.conn
