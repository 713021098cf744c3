"""Unit tests for the ``servers`` reference implementation.

Rules followed throughout: no ``time.sleep`` for synchronisation (events,
joins and ``os.waitid(..., WNOWAIT)`` are used instead); every call that could
block has a bound (``TIMEOUT``), either directly or because the server's
``timeout`` / the handler's ``timeout`` is set; servers are always closed.
"""

from __future__ import annotations

import array
import contextlib
import io
import os
import selectors
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import servers

TIMEOUT = 10.0
HOST = "127.0.0.1"

HAVE_FORK = hasattr(os, "fork")
HAVE_UNIX = hasattr(socket, "AF_UNIX")
needs_fork = pytest.mark.skipif(not HAVE_FORK, reason="needs os.fork")
needs_unix = pytest.mark.skipif(not HAVE_UNIX, reason="needs AF_UNIX sockets")
needs_waitid = pytest.mark.skipif(not hasattr(os, "waitid"), reason="needs os.waitid")
# Forking from a multi-threaded test process makes 3.12+ warn; the children
# here only run the handler and os._exit(), which is safe.
fork_ok = pytest.mark.filterwarnings("ignore:This process .* is multi-threaded")


# ----------------------------------------------------------------------
# helpers


def bounded(fn: Callable[[], Any], timeout: float = TIMEOUT) -> None:
    """Run a potentially blocking ``fn`` in a helper thread; fail if it hangs."""
    errors: list[BaseException] = []

    def run() -> None:
        try:
            fn()
        except BaseException as exc:
            errors.append(exc)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(timeout)
    assert not worker.is_alive(), f"{fn!r} did not return within {timeout}s"
    if errors:
        raise errors[0]


@contextlib.contextmanager
def serving(server: servers.BaseServer, poll_interval: float = 0.01) -> Iterator[threading.Thread]:
    """Run ``serve_forever`` in a thread; always shut down, join and close."""
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": poll_interval}, daemon=True
    )
    thread.start()
    try:
        yield thread
    finally:
        bounded(server.shutdown)
        thread.join(TIMEOUT)
        assert not thread.is_alive()
        bounded(server.server_close)


def connect(address: Any, family: int = socket.AF_INET) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.settimeout(TIMEOUT)
    sock.connect(address)
    return sock


def recv_all(sock: socket.socket) -> bytes:
    """Read until EOF (bounded by the socket timeout)."""
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


class EchoHandler(servers.StreamRequestHandler):
    timeout = TIMEOUT

    def handle(self) -> None:
        self.wfile.write(self.rfile.readline())


class DgramEcho(servers.DatagramRequestHandler):
    def handle(self) -> None:
        self.wfile.write(self.rfile.read().upper())


@pytest.fixture
def tmpdir_short() -> Iterator[str]:
    # AF_UNIX paths are limited to ~107 bytes; pytest's tmp_path can be longer.
    with tempfile.TemporaryDirectory(prefix="ss") as path:
        yield path


def make_tcp(cls: type[servers.TCPServer] = servers.TCPServer, handler: Any = EchoHandler) -> Any:
    server = cls((HOST, 0), handler)
    server.timeout = TIMEOUT  # bound every handle_request() in these tests
    return server


# ----------------------------------------------------------------------
# module surface


def test_all_is_platform_conditional() -> None:
    base = {
        "BaseServer",
        "TCPServer",
        "UDPServer",
        "ThreadingUDPServer",
        "ThreadingTCPServer",
        "BaseRequestHandler",
        "StreamRequestHandler",
        "DatagramRequestHandler",
        "ThreadingMixIn",
    }
    if HAVE_FORK:
        base |= {"ForkingUDPServer", "ForkingTCPServer", "ForkingMixIn"}
    if HAVE_UNIX:
        base |= {
            "UnixStreamServer",
            "UnixDatagramServer",
            "ThreadingUnixStreamServer",
            "ThreadingUnixDatagramServer",
        }
        if HAVE_FORK:
            base |= {"ForkingUnixStreamServer", "ForkingUnixDatagramServer"}
    assert set(servers.__all__) == base
    assert len(servers.__all__) == len(base)
    for name in servers.__all__:
        assert isinstance(getattr(servers, name), type)
    # (isidentifier: pytest's assertion rewriting may add "@py_..." helpers,
    # since this project's distribution registers a pytest plugin.)
    public = {n for n in dir(servers) if n.isidentifier() and not n.startswith("_")}
    assert public == base


def test_class_hierarchy_matches_cpython() -> None:
    S = servers
    assert S.ThreadingTCPServer.__mro__ == (
        S.ThreadingTCPServer,
        S.ThreadingMixIn,
        S.TCPServer,
        S.BaseServer,
        object,
    )
    assert S.ThreadingMixIn.__bases__ == (object,)
    assert issubclass(S.UDPServer, S.TCPServer)
    if HAVE_UNIX:
        assert issubclass(S.UnixDatagramServer, S.UDPServer)
        assert not issubclass(S.UnixDatagramServer, S.UnixStreamServer)
        assert S.UnixStreamServer.address_family == socket.AF_UNIX
    if HAVE_FORK:
        assert S.ForkingUDPServer.__mro__[1:3] == (S.ForkingMixIn, S.UDPServer)
    assert not hasattr(S.BaseServer, "fileno")
    assert not hasattr(S.BaseServer, "get_request")


def test_default_attributes() -> None:
    S = servers
    assert S.BaseServer.timeout is None
    assert S.TCPServer.address_family == socket.AF_INET
    assert S.TCPServer.socket_type == socket.SOCK_STREAM
    assert S.TCPServer.request_queue_size == 5
    assert S.TCPServer.allow_reuse_address is False
    assert S.TCPServer.allow_reuse_port is False
    assert S.UDPServer.socket_type == socket.SOCK_DGRAM
    assert S.UDPServer.max_packet_size == 8192
    assert S.ThreadingMixIn.daemon_threads is False
    assert S.ThreadingMixIn.block_on_close is True
    assert S.StreamRequestHandler.rbufsize == -1
    assert S.StreamRequestHandler.wbufsize == 0
    assert S.StreamRequestHandler.timeout is None
    assert S.StreamRequestHandler.disable_nagle_algorithm is False
    if HAVE_FORK:
        assert S.ForkingMixIn.timeout == 300
        assert S.ForkingMixIn.max_children == 40
        assert S.ForkingMixIn.active_children is None
        assert S.ForkingMixIn.block_on_close is True
        assert S.ForkingTCPServer.timeout == 300


# ----------------------------------------------------------------------
# construction, binding, closing


def test_server_address_is_the_bound_address() -> None:
    with servers.TCPServer((HOST, 0), EchoHandler) as server:
        assert server.server_address == server.socket.getsockname()
        assert server.server_address[1] != 0
    assert server.socket.fileno() == -1


def test_failed_bind_closes_socket_and_reraises() -> None:
    closed: list[socket.socket] = []

    class Server(servers.TCPServer):
        def server_close(self) -> None:
            closed.append(self.socket)
            super().server_close()

    with pytest.raises(OverflowError):
        Server((HOST, -1), EchoHandler)
    assert len(closed) == 1 and closed[0].fileno() == -1

    with servers.TCPServer((HOST, 0), EchoHandler) as taken, pytest.raises(OSError):
        Server(taken.server_address, EchoHandler)
    assert len(closed) == 2 and closed[1].fileno() == -1


def test_failed_activate_closes_socket() -> None:
    class Server(servers.TCPServer):
        def server_activate(self) -> None:
            raise KeyboardInterrupt  # even non-Exception errors must not leak the socket

    with pytest.raises(KeyboardInterrupt):
        Server((HOST, 0), EchoHandler)


def test_bind_and_activate_false_defers_everything() -> None:
    server = servers.TCPServer((HOST, 0), EchoHandler, bind_and_activate=False)
    try:
        assert server.socket.getsockname()[1] == 0
        server.allow_reuse_address = True
        server.server_bind()
        server.server_activate()
        assert server.socket.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR)
        client = connect(server.server_address)
        client.close()
    finally:
        server.server_close()


@pytest.mark.skipif(not hasattr(socket, "SO_REUSEPORT"), reason="needs SO_REUSEPORT")
def test_allow_reuse_port_inet_only(tmpdir_short: str) -> None:
    class ReusePort(servers.TCPServer):
        allow_reuse_port = True

    with ReusePort((HOST, 0), EchoHandler) as a:
        assert a.socket.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT)
        with ReusePort(a.server_address, EchoHandler) as b:
            assert b.server_address == a.server_address
    with servers.TCPServer((HOST, 0), EchoHandler) as plain:
        assert not plain.socket.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT)
    if HAVE_UNIX:

        class UnixReusePort(servers.UnixStreamServer):
            allow_reuse_port = True

        # Must not try SO_REUSEPORT on AF_UNIX (newer kernels reject it).
        with UnixReusePort(os.path.join(tmpdir_short, "s"), EchoHandler):
            pass


def test_server_close_is_idempotent() -> None:
    server = make_tcp(servers.ThreadingTCPServer)
    server.server_close()
    server.server_close()
    assert server.socket.fileno() == -1


def test_ipv6_by_address_family() -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6 support")

    class V6Server(servers.TCPServer):
        address_family = socket.AF_INET6

    try:
        server = V6Server(("::1", 0), EchoHandler)
    except OSError as exc:
        pytest.skip(f"cannot bind ::1: {exc}")
    server.timeout = TIMEOUT
    with server, connect(server.server_address[:2], socket.AF_INET6) as client:
        client.sendall(b"six\n")
        server.handle_request()
        assert recv_all(client) == b"six\n"


# ----------------------------------------------------------------------
# handle_request and timeouts


class TimeoutRecorder(servers.TCPServer):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.timeouts = 0
        self.service_calls = 0

    def handle_timeout(self) -> None:
        self.timeouts += 1

    def service_actions(self) -> None:
        self.service_calls += 1


@pytest.mark.parametrize(
    ("server_timeout", "socket_timeout"),
    [(0.01, None), (None, 0.01), (TIMEOUT, 0.01), (0.01, TIMEOUT), (0, None)],
)
def test_handle_request_timeout_calls_handle_timeout(
    server_timeout: float | None, socket_timeout: float | None
) -> None:
    with TimeoutRecorder((HOST, 0), EchoHandler) as server:
        server.timeout = server_timeout
        server.socket.settimeout(socket_timeout)
        start = time.monotonic()
        server.handle_request()
        # The smaller limit wins: never anywhere near the larger one.
        assert time.monotonic() - start < TIMEOUT / 2
        assert server.timeouts == 1
        assert server.service_calls == 0


def test_handle_request_handles_exactly_one() -> None:
    with TimeoutRecorder((HOST, 0), EchoHandler) as server:
        server.timeout = TIMEOUT
        with connect(server.server_address) as a, connect(server.server_address) as b:
            a.sendall(b"first\n")
            b.sendall(b"second\n")
            server.handle_request()
            assert recv_all(a) == b"first\n"
            server.handle_request()
            assert recv_all(b) == b"second\n"
        assert server.timeouts == 0
        assert server.service_calls == 0


def test_get_request_oserror_is_dropped_silently() -> None:
    calls: list[str] = []

    class Flaky(servers.TCPServer):
        def get_request(self) -> Any:
            calls.append("get_request")
            raise ConnectionAbortedError

        def verify_request(self, request: Any, client_address: Any) -> bool:
            calls.append("verify")
            return True

        def handle_error(self, request: Any, client_address: Any) -> None:
            calls.append("error")

    with Flaky((HOST, 0), EchoHandler) as server, connect(server.server_address):
        server.timeout = TIMEOUT
        server.handle_request()
    assert calls == ["get_request"]


# ----------------------------------------------------------------------
# serve_forever / shutdown / service_actions / fileno


def test_shutdown_returns_and_service_actions_run() -> None:
    ran = threading.Event()

    class Server(servers.TCPServer):
        def service_actions(self) -> None:
            ran.set()

    server = Server((HOST, 0), EchoHandler)
    with serving(server):
        assert ran.wait(TIMEOUT)
        with connect(server.server_address) as client:
            client.sendall(b"ping\n")
            assert recv_all(client) == b"ping\n"


def test_shutdown_before_serve_forever_starts_still_stops_it() -> None:
    server = make_tcp()
    try:
        stopper = threading.Thread(target=server.shutdown, daemon=True)
        stopper.start()  # may run before, during or after serve_forever() starts
        loop = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
        loop.start()
        loop.join(TIMEOUT)
        stopper.join(TIMEOUT)
        assert not loop.is_alive() and not stopper.is_alive()
    finally:
        server.server_close()


def test_serve_forever_can_be_restarted() -> None:
    server = make_tcp()
    for _ in range(2):
        loop = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
        loop.start()
        with connect(server.server_address) as client:
            client.sendall(b"again\n")
            assert recv_all(client) == b"again\n"
        bounded(server.shutdown)
        loop.join(TIMEOUT)
        assert not loop.is_alive()
    server.server_close()


def test_exception_escaping_serve_forever_releases_shutdown() -> None:
    class Boom(servers.TCPServer):
        def service_actions(self) -> None:
            raise RuntimeError("boom")

    with Boom((HOST, 0), EchoHandler) as server:
        with pytest.raises(RuntimeError):
            server.serve_forever(0.01)
        bounded(server.shutdown)  # loop already finished: returns at once


def test_fileno_works_with_selectors() -> None:
    with make_tcp() as server:
        assert server.fileno() == server.socket.fileno()
        with selectors.DefaultSelector() as sel:
            sel.register(server, selectors.EVENT_READ)
            assert sel.select(0) == []
            with connect(server.server_address) as client:
                ready = sel.select(TIMEOUT)
                assert [key.fileobj for key, _ in ready] == [server]
                client.sendall(b"sel\n")
                server.handle_request()
                assert recv_all(client) == b"sel\n"


# ----------------------------------------------------------------------
# the per-request pipeline


class PipelineRecorder(servers.TCPServer):
    """Records the hook calls made for each request."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.timeout = TIMEOUT
        self.events: list[str] = []
        self.accept = True
        self.error_types: list[type[BaseException] | None] = []

    def verify_request(self, request: Any, client_address: Any) -> bool:
        self.events.append("verify")
        return self.accept

    def finish_request(self, request: Any, client_address: Any) -> None:
        self.events.append("finish_request")
        super().finish_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        self.events.append("shutdown_request")
        super().shutdown_request(request)

    def close_request(self, request: Any) -> None:
        self.events.append("close_request")
        super().close_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        self.events.append("handle_error")
        self.error_types.append(sys.exc_info()[0])


def test_verify_request_false_shuts_request_down() -> None:
    constructed: list[int] = []

    class Handler(servers.BaseRequestHandler):
        def handle(self) -> None:
            constructed.append(1)

    with PipelineRecorder((HOST, 0), Handler) as server:
        server.accept = False
        with connect(server.server_address) as client:
            server.handle_request()
            assert recv_all(client) == b""  # EOF: the connection was closed
    assert constructed == []
    assert server.events == ["verify", "shutdown_request", "close_request"]


def test_handler_exception_goes_to_handle_error_and_finish_runs() -> None:
    finished = []

    class Handler(servers.StreamRequestHandler):
        def handle(self) -> None:
            self.wfile.write(b"partial")
            raise ValueError("bad request")

        def finish(self) -> None:
            finished.append(True)
            super().finish()

    with PipelineRecorder((HOST, 0), Handler) as server, connect(server.server_address) as c:
        server.handle_request()
        assert recv_all(c) == b"partial"
    assert finished == [True]
    assert server.events == [
        "verify",
        "finish_request",
        "handle_error",
        "shutdown_request",
        "close_request",
    ]
    assert server.error_types == [ValueError]


@pytest.mark.parametrize("exc_type", [SystemExit, KeyboardInterrupt])
def test_exiting_exceptions_propagate_but_request_is_shut_down(
    exc_type: type[BaseException],
) -> None:
    class Handler(servers.BaseRequestHandler):
        def handle(self) -> None:
            raise exc_type

    with PipelineRecorder((HOST, 0), Handler) as server, connect(server.server_address) as c:
        with pytest.raises(exc_type):
            server.handle_request()
        assert recv_all(c) == b""
    assert server.events == ["verify", "finish_request", "shutdown_request", "close_request"]


def test_process_request_exception_reported_then_shut_down() -> None:
    class Server(PipelineRecorder):
        def process_request(self, request: Any, client_address: Any) -> None:
            raise OSError("cannot dispatch")

    with Server((HOST, 0), EchoHandler) as server, connect(server.server_address):
        server.handle_request()
    assert server.events == ["verify", "handle_error", "shutdown_request", "close_request"]


def test_default_handle_error_prints_traceback_to_current_stderr() -> None:
    class Handler(servers.BaseRequestHandler):
        def handle(self) -> None:
            raise ZeroDivisionError("oops")

    captured = io.StringIO()
    with make_tcp(handler=Handler) as server, connect(server.server_address) as client:
        with contextlib.redirect_stderr(captured):
            server.handle_request()
        peer = client.getsockname()
    text = captured.getvalue()
    assert "Traceback (most recent call last)" in text
    assert "ZeroDivisionError: oops" in text
    assert str(peer) in text


def test_tcp_shutdown_request_tolerates_unconnected_socket() -> None:
    with make_tcp() as server:
        lonely = socket.socket()
        server.shutdown_request(lonely)  # shutdown() raises ENOTCONN internally
        assert lonely.fileno() == -1


# ----------------------------------------------------------------------
# request handlers


def test_base_handler_lifecycle() -> None:
    calls: list[str] = []

    class Handler(servers.BaseRequestHandler):
        def setup(self) -> None:
            calls.append(f"setup:{self.request}:{self.client_address}")

        def handle(self) -> None:
            calls.append("handle")
            raise ValueError

        def finish(self) -> None:
            calls.append("finish")

    server = servers.BaseServer(("x", 0), Handler)
    with pytest.raises(ValueError):
        Handler("req", "addr", server)
    assert calls == ["setup:req:addr", "handle", "finish"]

    class SetupFails(Handler):
        def setup(self) -> None:
            raise RuntimeError

    calls.clear()
    with pytest.raises(RuntimeError):
        SetupFails("req", "addr", server)
    assert calls == []


def test_wfile_write_sends_everything_to_a_slow_reader() -> None:
    size = 8 * 1024 * 1024
    result: dict[str, Any] = {}

    class Handler(servers.StreamRequestHandler):
        def handle(self) -> None:
            # Small send buffer: sendall() has to loop many times.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
            result["written"] = self.wfile.write(b"\xab" * size)
            result["wfile"] = self.wfile

    received = bytearray()

    def reader(sock: socket.socket) -> None:
        while chunk := sock.recv(1024):  # deliberately small reads
            received.extend(chunk)

    with make_tcp(handler=Handler) as server:
        client = socket.socket()
        client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        client.settimeout(TIMEOUT)
        client.connect(server.server_address)
        with client:
            thread = threading.Thread(target=reader, args=(client,), daemon=True)
            thread.start()
            server.handle_request()
            thread.join(TIMEOUT)
            assert not thread.is_alive()
    assert result["written"] == size
    assert len(received) == size and received == b"\xab" * size
    assert isinstance(result["wfile"], io.BufferedIOBase)
    assert result["wfile"].closed


def test_socket_writer_contract() -> None:
    seen: dict[str, Any] = {}

    class Handler(servers.StreamRequestHandler):
        def handle(self) -> None:
            seen["same_fd"] = self.wfile.fileno() == self.connection.fileno()
            seen["writable"] = self.wfile.writable()
            seen["readable"] = self.wfile.readable()
            seen["nbytes"] = self.wfile.write(array.array("i", [1, 2, 3]))
            seen["mv"] = self.wfile.write(memoryview(b"abc"))

    with make_tcp(handler=Handler) as server, connect(server.server_address) as client:
        server.handle_request()
        data = recv_all(client)
    assert seen == {
        "same_fd": True,
        "writable": True,
        "readable": False,
        "nbytes": 3 * array.array("i").itemsize,
        "mv": 3,
    }
    assert data.endswith(b"abc") and len(data) == 3 * array.array("i").itemsize + 3
    # The socket itself is closed by the server, not by wfile.close().


def test_buffered_wfile_is_flushed_by_finish() -> None:
    kinds = []

    class Handler(EchoHandler):
        wbufsize = 65536

        def handle(self) -> None:
            kinds.append(type(self.wfile))
            self.wfile.write(b"buffered")  # stays in the buffer until finish()

    with make_tcp(handler=Handler) as server, connect(server.server_address) as client:
        server.handle_request()
        assert recv_all(client) == b"buffered"
    assert kinds == [io.BufferedWriter]


def test_stream_handler_timeout_and_nodelay() -> None:
    seen: dict[str, Any] = {}

    class Handler(servers.StreamRequestHandler):
        timeout = 0.05
        disable_nagle_algorithm = True

        def handle(self) -> None:
            seen["timeout"] = self.connection.gettimeout()
            seen["nodelay"] = self.connection.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
            try:
                self.rfile.readline()  # the client never sends anything
            except TimeoutError:
                seen["timed_out"] = True

    with make_tcp(handler=Handler) as server, connect(server.server_address) as client:
        server.handle_request()
        assert recv_all(client) == b""
    assert seen == {"timeout": 0.05, "nodelay": 1, "timed_out": True}


def test_udp_server_and_datagram_handler_echo() -> None:
    with servers.UDPServer((HOST, 0), DgramEcho) as server:
        server.timeout = TIMEOUT
        # No listen() for datagram sockets, and the request keeps the socket open.
        assert server.socket.type == socket.SOCK_DGRAM
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
            client.settimeout(TIMEOUT)
            client.sendto(b"hello", server.server_address)
            server.handle_request()
            reply, addr = client.recvfrom(100)
            assert (reply, addr) == (b"HELLO", server.server_address)
            client.sendto(b"again", server.server_address)
            server.handle_request()
            assert client.recvfrom(100)[0] == b"AGAIN"
        assert server.socket.fileno() != -1


def test_udp_get_request_shape_and_noop_close() -> None:
    server = servers.UDPServer((HOST, 0), DgramEcho)
    with server, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
        client.bind((HOST, 0))
        client.sendto(b"x" * 10, server.server_address)
        (data, sock), addr = server.get_request()
        assert data == b"x" * 10 and sock is server.socket
        assert addr == client.getsockname()
        server.shutdown_request((data, sock))
        assert server.socket.fileno() != -1


def test_datagram_handler_replies_even_when_nothing_written() -> None:
    class Silent(servers.DatagramRequestHandler):
        def handle(self) -> None:
            assert self.packet == b"q" and self.socket is self.server.socket

    with servers.UDPServer((HOST, 0), Silent) as server:
        server.timeout = TIMEOUT
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
            client.settimeout(TIMEOUT)
            client.sendto(b"q", server.server_address)
            server.handle_request()
            assert client.recvfrom(100)[0] == b""


# ----------------------------------------------------------------------
# AF_UNIX


@needs_unix
def test_unix_stream_server(tmpdir_short: str) -> None:
    path = os.path.join(tmpdir_short, "stream")
    for cls in (servers.UnixStreamServer, servers.ThreadingUnixStreamServer):
        with cls(path, EchoHandler) as server:
            server.timeout = TIMEOUT
            assert server.server_address == path
            with connect(path, socket.AF_UNIX) as client:
                client.sendall(b"unix\n")
                server.handle_request()
                assert recv_all(client) == b"unix\n"
        # The server leaves its socket file behind, as CPython's does.
        assert os.path.exists(path)
        os.unlink(path)


@needs_unix
def test_unix_datagram_server(tmpdir_short: str) -> None:
    path = os.path.join(tmpdir_short, "dgram")
    client_path = os.path.join(tmpdir_short, "client")
    with servers.UnixDatagramServer(path, DgramEcho) as server:
        server.timeout = TIMEOUT
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as client:
            client.bind(client_path)  # unbound senders cannot receive replies
            client.settimeout(TIMEOUT)
            client.sendto(b"unix", path)
            server.handle_request()
            assert client.recvfrom(100) == (b"UNIX", path)


# ----------------------------------------------------------------------
# ThreadingMixIn


def test_threading_server_does_not_retain_finished_threads() -> None:
    handler_threads: list[threading.Thread] = []

    class Handler(EchoHandler):
        def handle(self) -> None:
            handler_threads.append(threading.current_thread())
            super().handle()

    with make_tcp(servers.ThreadingTCPServer, Handler) as server:
        for i in range(20):
            with connect(server.server_address) as client:
                client.sendall(b"%d\n" % i)
                server.handle_request()
                assert recv_all(client) == b"%d\n" % i
            handler_threads[-1].join(TIMEOUT)
            # At most the thread dispatched last is still registered.
            assert len(server._threads) <= 1
        assert len({t.ident for t in handler_threads}) >= 1
        assert all(t is not threading.main_thread() for t in handler_threads)


def test_threading_server_close_joins_non_daemon_threads() -> None:
    release = threading.Event()
    entered = threading.Event()
    order: list[str] = []

    class Handler(servers.BaseRequestHandler):
        def handle(self) -> None:
            entered.set()
            release.wait(TIMEOUT)
            order.append("handler done")

    class Server(servers.ThreadingTCPServer):
        def server_close(self) -> None:
            super().server_close()
            order.append("server_close returned")

    server = make_tcp(Server, Handler)
    with connect(server.server_address):
        server.handle_request()
        assert entered.wait(TIMEOUT)
        closer = threading.Thread(target=server.server_close, daemon=True)
        closer.start()
        closer.join(0.05)
        assert closer.is_alive(), "server_close() returned while a handler was running"
        release.set()
        closer.join(TIMEOUT)
        assert not closer.is_alive()
    assert order == ["handler done", "server_close returned"]
    assert len(server._threads) == 0


@pytest.mark.parametrize("variant", ["daemon_threads", "no_block_on_close"])
def test_threading_server_close_does_not_wait(variant: str) -> None:
    release = threading.Event()
    entered = threading.Event()

    class Handler(servers.BaseRequestHandler):
        def handle(self) -> None:
            entered.set()
            release.wait(TIMEOUT)

    server = make_tcp(servers.ThreadingTCPServer, Handler)
    if variant == "daemon_threads":
        server.daemon_threads = True
    else:
        server.block_on_close = False
    try:
        with connect(server.server_address):
            server.handle_request()
            assert entered.wait(TIMEOUT)
            assert len(server._threads) == 0
            bounded(server.server_close)  # returns although the handler still runs
    finally:
        release.set()


def test_threading_errors_handled_in_thread_and_exits_propagate(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    hook_calls: list[type[BaseException]] = []
    monkeypatch.setattr(threading, "excepthook", lambda args: hook_calls.append(args.exc_type))
    done = threading.Event()

    class Handler(servers.BaseRequestHandler):
        def handle(self) -> None:
            raise self.server.exc  # type: ignore[attr-defined]

    class Server(servers.ThreadingTCPServer):
        exc: type[BaseException] = ValueError
        errors: list[tuple[threading.Thread, type[BaseException] | None]]

        def handle_error(self, request: Any, client_address: Any) -> None:
            self.errors.append((threading.current_thread(), sys.exc_info()[0]))

        def shutdown_request(self, request: Any) -> None:
            super().shutdown_request(request)
            done.set()

    for exc, handled in ((ValueError, True), (SystemExit, False)):
        done.clear()
        hook_calls.clear()
        server = make_tcp(Server, Handler)
        server.exc = exc
        server.errors = []
        with connect(server.server_address) as client:
            server.handle_request()
            assert done.wait(TIMEOUT)
            assert recv_all(client) == b""
        server.server_close()  # joins the handler thread
        errors = server.errors
        if handled:
            assert len(errors) == 1 and errors[0][1] is ValueError
            assert errors[0][0] is not threading.current_thread()
            assert hook_calls == []
        else:
            assert errors == []
            assert hook_calls == [SystemExit]


def test_threading_udp() -> None:
    with servers.ThreadingUDPServer((HOST, 0), DgramEcho) as server:
        server.timeout = TIMEOUT
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
            client.settimeout(TIMEOUT)
            client.sendto(b"thr", server.server_address)
            server.handle_request()
            assert client.recvfrom(100)[0] == b"THR"


# ----------------------------------------------------------------------
# ForkingMixIn


def wait_exited_unreaped(pid: int) -> None:
    """Block until child ``pid`` has exited, leaving it for the server to reap."""
    os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)


def no_zombie_children() -> bool:
    import psutil

    return all(child.status() != psutil.STATUS_ZOMBIE for child in psutil.Process().children())


@pytest.fixture
def waitpid_log(monkeypatch: pytest.MonkeyPatch) -> dict[int, int]:
    """Record the exit code of every child the code under test reaps."""
    real = os.waitpid
    codes: dict[int, int] = {}

    def spy(pid: int, options: int) -> tuple[int, int]:
        reaped, status = real(pid, options)
        if reaped:
            codes[reaped] = os.waitstatus_to_exitcode(status)
        return reaped, status

    monkeypatch.setattr(os, "waitpid", spy)
    return codes


@needs_fork
@fork_ok
def test_forking_server_reaps_children_and_leaves_no_zombies(
    waitpid_log: dict[int, int],
) -> None:
    server = make_tcp(servers.ForkingTCPServer)
    try:
        assert server.active_children is None
        pids: set[int] = set()
        for i in range(3):
            with connect(server.server_address) as client:
                client.sendall(b"fork %d\n" % i)
                server.handle_request()
                assert recv_all(client) == b"fork %d\n" % i
            assert server.active_children is not None
            pids |= server.active_children
    finally:
        server.server_close()  # block_on_close: waits for every child
    assert len(pids) == 3 and os.getpid() not in pids
    assert server.active_children == set()
    assert {pid: waitpid_log.get(pid) for pid in pids} == dict.fromkeys(pids, 0)
    for pid in pids:
        with pytest.raises(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
    assert no_zombie_children()


@needs_waitid
@needs_fork
@fork_ok
@pytest.mark.parametrize("reaper", ["service_actions", "handle_timeout", "collect_children"])
def test_forking_reaping_points(reaper: str) -> None:
    with make_tcp(servers.ForkingTCPServer) as server:
        with connect(server.server_address) as client:
            client.sendall(b"z\n")
            server.handle_request()
            assert recv_all(client) == b"z\n"
        assert server.active_children is not None
        (pid,) = server.active_children
        wait_exited_unreaped(pid)
        getattr(server, reaper)()
        assert server.active_children == set()
    assert no_zombie_children()


@needs_waitid
@needs_fork
@fork_ok
def test_forking_max_children_throttle() -> None:
    with make_tcp(servers.ForkingTCPServer) as server:
        server.max_children = 1
        with connect(server.server_address) as client:
            client.sendall(b"t\n")
            server.handle_request()
            assert recv_all(client) == b"t\n"
        assert server.active_children is not None
        (pid,) = server.active_children
        wait_exited_unreaped(pid)
        server.collect_children()  # at the limit: waits for any child
        assert server.active_children == set()


@needs_fork
@fork_ok
@pytest.mark.parametrize(("exc", "status"), [(ValueError, 1), (SystemExit, 1), (None, 0)])
def test_forked_child_exit_status_and_error_handling(
    exc: type[BaseException] | None, status: int, waitpid_log: dict[int, int], tmp_path: Any
) -> None:
    log = tmp_path / "log"

    class Handler(servers.BaseRequestHandler):
        def handle(self) -> None:
            with open(log, "a") as fh:
                fh.write(f"handler {os.getpid()}\n")
            if exc is not None:
                raise exc("in child")

    class Server(servers.ForkingTCPServer):
        def handle_error(self, request: Any, client_address: Any) -> None:
            with open(log, "a") as fh:
                fh.write(f"error {sys.exc_info()[0].__name__}\n")  # type: ignore[union-attr]

    server = make_tcp(Server, Handler)
    with connect(server.server_address) as client:
        server.handle_request()  # the parent never sees the child's exception
        assert recv_all(client) == b""
    assert server.active_children is not None
    (pid,) = server.active_children
    server.server_close()
    assert waitpid_log[pid] == status
    lines = log.read_text().splitlines()
    assert lines[0] == f"handler {pid}"
    assert lines[1:] == (["error ValueError"] if exc is ValueError else [])


@needs_fork
@fork_ok
def test_forking_udp_and_unix(tmpdir_short: str) -> None:
    with servers.ForkingUDPServer((HOST, 0), DgramEcho) as server:
        server.timeout = TIMEOUT
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as client:
            client.settimeout(TIMEOUT)
            client.sendto(b"fu", server.server_address)
            server.handle_request()
            assert client.recvfrom(100)[0] == b"FU"
    assert server.active_children == set()
    if HAVE_UNIX:
        path = os.path.join(tmpdir_short, "fs")
        with servers.ForkingUnixStreamServer(path, EchoHandler) as userver:
            userver.timeout = TIMEOUT
            with connect(path, socket.AF_UNIX) as client:
                client.sendall(b"fus\n")
                userver.handle_request()
                assert recv_all(client) == b"fus\n"
        assert userver.active_children == set()
    assert no_zombie_children()


@needs_fork
@fork_ok
def test_forking_serve_forever_end_to_end() -> None:
    server = make_tcp(servers.ForkingTCPServer)
    with serving(server):
        for i in range(3):
            with connect(server.server_address) as client:
                client.sendall(b"sf%d\n" % i)
                assert recv_all(client) == b"sf%d\n" % i
    assert server.active_children == set()
    assert no_zombie_children()
