"""Instrumentation: every hook is recorded with its connection, thread and process."""

from __future__ import annotations

import os
import socket
import socketserver
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from harness import echo_script, load_implementation
from harness._execution.adhoc import AdhocSession
from harness._runtime.eventlog import EventLog
from harness._runtime.instrument import instrument_server


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
    addresses = {e.detail["client_address"] for e in accepted}
    assert addresses == {f"127.0.0.1:{r.local_address[1]}" for r in results}


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


class _Fake:
    """Just the hooks the connection table sees."""

    def __init__(self, requests: list[Any]) -> None:
        self.requests = requests

    def get_request(self) -> tuple[Any, str]:
        return self.requests.pop(0), "client"

    def close_request(self, request: Any) -> None:
        if isinstance(request, socket.socket):
            request.close()


def test_closed_requests_are_let_go_but_a_second_close_is_still_attributed() -> None:
    log = EventLog()
    try:
        open_sock, closed_sock = socket.socketpair()
        leaky = type("Leaky", (_Fake,), {"close_request": lambda self, request: None})
        server = instrument_server(leaky, log)([open_sock, ("datagram", None)])
        for _ in range(2):
            request, _address = server.get_request()
            server.close_request(request)
            server.close_request(request)  # twice: the second call must name the same conn
        closes = [e.conn for e in log.events("close_request") if e.phase == "call"]
        assert closes == [1, 1, 2, 2]
        assert server.__dict__["_sockspec_conns"] == {}  # nothing held once closed...
        # ...and the no-op close is recorded as a fact, not by keeping the socket.
        returns = [e.detail["fd_open"] for e in log.events("close_request") if e.phase == "return"]
        assert returns == [True, True, False, False]
        open_sock.close()
        closed_sock.close()
    finally:
        log.close()


class _EchoOnce(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        self.request.sendall(self.request.recv(64))


class _ForgetsClose(socketserver.TCPServer):
    """Relies on reference counting: shutdown_request never calls close_request."""

    def shutdown_request(self, request: Any) -> None:
        request.shutdown(socket.SHUT_RD)


def _eof_after_reply(server_cls: type) -> tuple[bytes, bytes]:
    """Serve one request; what the client read, and what it read next (b"" is EOF)."""
    with server_cls(("127.0.0.1", 0), _EchoOnce) as server:
        thread = threading.Thread(target=server.handle_request, daemon=True)
        thread.start()
        with socket.create_connection(server.server_address, timeout=5.0) as client:
            client.sendall(b"ping")
            reply = client.recv(64)
            client.settimeout(2.0)  # EOF comes when the server's last reference goes
            try:
                after = client.recv(64)
            except TimeoutError:
                after = b"(no EOF within 2s)"
        thread.join(5.0)
        assert not thread.is_alive()
    return reply, after


# The implementation under test does leave its sockets to the collector.
@pytest.mark.filterwarnings("ignore::ResourceWarning")
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_refcount_closing_behaves_the_same_with_and_without_instrumentation() -> None:
    """Observing must not keep a forgotten request alive: the client sees EOF either way."""
    plain = _eof_after_reply(_ForgetsClose)
    log = EventLog()
    try:
        instrumented = _eof_after_reply(instrument_server(_ForgetsClose, log))
        released = [e for e in log.events("request_released") if e.phase == "point"]
    finally:
        log.close()
    assert plain == instrumented == (b"ping", b"")
    assert [e.conn for e in released] == [1]  # the fact is kept: closed by the collector
