"""Tests for harness._runtime.clients: blocking drivers whose every operation has a timeout.

The peers are plain sockets owned by the test (accepted directly, or served by a
small thread); synchronisation is by Events and socket reads, never sleeps, and
every blocking call in the tests has a timeout too.
"""

from __future__ import annotations

import os
import pickle
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from harness._model.records import Endpoint
from harness._runtime.clients import (
    ClientTimeout,
    DatagramClient,
    ResponseTooLarge,
    StreamClient,
    UnexpectedEOF,
)

T = 5.0  # generous timeout for steps that must succeed
SHORT = 0.05  # timeout for steps that must time out
TOLERANCE = 2.0  # a SHORT timeout must fire well within this


def _has_ipv6() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


def _endpoint(listener: socket.socket, transport: str) -> Endpoint:
    address = listener.getsockname()
    if isinstance(address, tuple):
        address = (address[0], address[1])
    return Endpoint(transport, listener.family, listener.type, address)


@pytest.fixture
def tcp_listener() -> Iterator[socket.socket]:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        listener.settimeout(T)
        yield listener


@pytest.fixture
def unix_dir() -> Iterator[str]:
    # tmp_path can exceed the ~104-byte sun_path limit; /tmp-based names do not.
    with tempfile.TemporaryDirectory(prefix="sst-") as d:
        yield d


@pytest.fixture
def pair(tcp_listener: socket.socket) -> Iterator[tuple[StreamClient, socket.socket]]:
    """A connected client and the server's end of it."""
    client = StreamClient.connect(_endpoint(tcp_listener, "tcp"), timeout=T)
    conn, _ = tcp_listener.accept()
    conn.settimeout(T)
    with client, conn:
        yield client, conn


def _elapsed(fn: Callable[[], object]) -> float:
    """Seconds ``fn`` took to raise ClientTimeout."""
    start = time.monotonic()
    with pytest.raises(ClientTimeout):
        fn()
    return time.monotonic() - start


# --- ClientTimeout ------------------------------------------------------------------


def test_client_timeout_is_a_timeout_error_naming_op_and_limit() -> None:
    exc = ClientTimeout("recv(10)", 0.05)
    assert isinstance(exc, TimeoutError)
    assert str(exc) == "recv(10) timed out after 0.05 s"
    assert (exc.op, exc.timeout) == ("recv(10)", 0.05)


def test_client_exceptions_survive_pickling() -> None:
    for exc in (
        ClientTimeout("recv", 1.0),
        UnexpectedEOF("recv_exact(3)", b"ab", "3 bytes"),
        ResponseTooLarge("recv_line()", 10),
    ):
        again = pickle.loads(pickle.dumps(exc))
        assert type(again) is type(exc) and str(again) == str(exc)


# --- StreamClient: data ---------------------------------------------------------------


def test_send_and_recv_exact(pair: tuple[StreamClient, socket.socket]) -> None:
    client, conn = pair
    client.send(b"hello")
    assert conn.recv(5) == b"hello"
    conn.sendall(b"abcdefgh")
    assert client.recv_exact(3) == b"abc"
    assert client.recv_exact(5) == b"defgh"


def test_recv_returns_buffered_data_first(pair: tuple[StreamClient, socket.socket]) -> None:
    client, conn = pair
    conn.sendall(b"line\nrest")
    assert client.recv_line() == b"line\n"
    # "rest" may be in the client's buffer already; recv must hand it over.
    got = b""
    while len(got) < 4:
        got += client.recv(2)
    assert got == b"rest"


def test_recv_line_and_partial_line_at_eof(pair: tuple[StreamClient, socket.socket]) -> None:
    client, conn = pair
    conn.sendall(b"ab\ncd\nef")
    conn.shutdown(socket.SHUT_WR)
    assert client.recv_line() == b"ab\n"
    assert client.recv_line() == b"cd\n"
    assert client.recv_line() == b"ef"  # no newline: the peer closed
    assert client.recv_line() == b""


def test_recv_line_limit(pair: tuple[StreamClient, socket.socket]) -> None:
    client, conn = pair
    conn.sendall(b"x" * 100)
    with pytest.raises(ResponseTooLarge):
        client.recv_line(limit=10)


def test_recv_until_eof(pair: tuple[StreamClient, socket.socket]) -> None:
    client, conn = pair
    data = os.urandom(300_000)
    conn.sendall(data)
    conn.shutdown(socket.SHUT_WR)
    assert client.recv_until_eof() == data


def test_recv_until_eof_limit(pair: tuple[StreamClient, socket.socket]) -> None:
    client, conn = pair
    conn.sendall(b"y" * 1000)
    conn.shutdown(socket.SHUT_WR)
    with pytest.raises(ResponseTooLarge):
        client.recv_until_eof(limit=100)


def test_recv_exact_eof_reports_partial(pair: tuple[StreamClient, socket.socket]) -> None:
    client, conn = pair
    conn.sendall(b"ab")
    conn.shutdown(socket.SHUT_WR)
    with pytest.raises(UnexpectedEOF) as info:
        client.recv_exact(5)
    assert info.value.partial == b"ab"


def test_shutdown_write_half_closes(pair: tuple[StreamClient, socket.socket]) -> None:
    client, conn = pair
    client.send(b"req")
    client.shutdown_write()
    assert conn.recv(10) == b"req"
    assert conn.recv(10) == b""  # server sees EOF...
    conn.sendall(b"reply")  # ...and can still answer
    conn.close()
    assert client.recv_until_eof() == b"reply"


def test_local_address_matches_server_view(
    tcp_listener: socket.socket,
) -> None:
    with StreamClient.connect(_endpoint(tcp_listener, "tcp"), timeout=T) as client:
        conn, peer = tcp_listener.accept()
        with conn:
            assert client.local_address == peer


def test_context_manager_closes() -> None:
    a, b = socket.socketpair()
    with b:
        client = StreamClient(a, T)
        with client:
            assert client.fileno() >= 0
        assert client.closed and client.fileno() == -1
        client.close()  # idempotent


def test_connect_rejects_datagram_endpoint() -> None:
    endpoint = Endpoint("udp", socket.AF_INET, socket.SOCK_DGRAM, ("127.0.0.1", 9))
    with pytest.raises(ValueError):
        StreamClient.connect(endpoint, timeout=T)


def test_connect_refused() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        address = s.getsockname()  # bound, never listening: refused
        endpoint = Endpoint("tcp", socket.AF_INET, socket.SOCK_STREAM, address)
        with pytest.raises(ConnectionRefusedError):
            StreamClient.connect(endpoint, timeout=T)


# --- StreamClient: timeouts ---------------------------------------------------------------


def test_recv_timeout(pair: tuple[StreamClient, socket.socket]) -> None:
    client, _conn = pair
    start = time.monotonic()
    with pytest.raises(ClientTimeout) as info:
        client.recv(timeout=SHORT)
    assert time.monotonic() - start < TOLERANCE
    assert info.value.op == "recv(65536)" and info.value.timeout == SHORT
    assert "0.05" in str(info.value)


def test_default_timeout_comes_from_connect(tcp_listener: socket.socket) -> None:
    with StreamClient.connect(_endpoint(tcp_listener, "tcp"), timeout=SHORT) as client:
        assert _elapsed(client.recv) < TOLERANCE


def test_multi_step_reads_time_out_as_a_whole(pair: tuple[StreamClient, socket.socket]) -> None:
    client, conn = pair
    conn.sendall(b"ab")  # some progress must not restart the clock
    assert _elapsed(lambda: client.recv_exact(5, timeout=SHORT)) < TOLERANCE
    assert _elapsed(lambda: client.recv_line(timeout=SHORT)) < TOLERANCE
    assert _elapsed(lambda: client.recv_until_eof(timeout=SHORT)) < TOLERANCE


def test_send_timeout_when_peer_never_reads(pair: tuple[StreamClient, socket.socket]) -> None:
    client, _conn = pair
    # Far more than loopback socket buffers hold, so sendall must block.
    elapsed = _elapsed(lambda: client.send(b"z" * (64 * 1024 * 1024), timeout=SHORT))
    assert elapsed < TOLERANCE


@pytest.mark.skipif(sys.platform != "linux", reason="relies on Linux SYN-drop on full backlog")
def test_connect_timeout_on_full_backlog() -> None:
    # A listener never accepting, with a zero backlog, drops SYNs once its accept
    # queue is full, so some connect() must wait for a retransmit that is 1 s away.
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        endpoint = _endpoint(listener, "tcp")
        fillers: list[StreamClient] = []
        try:
            for _ in range(16):
                start = time.monotonic()
                try:
                    fillers.append(StreamClient.connect(endpoint, timeout=0.2))
                except ClientTimeout as exc:
                    assert time.monotonic() - start < TOLERANCE
                    assert exc.op.startswith("connect")
                    break
            else:
                pytest.fail("no connect() timed out against a full backlog")
        finally:
            for c in fillers:
                c.close()


# --- StreamClient: EOF probe and reset -------------------------------------------------------


def test_is_eof(pair: tuple[StreamClient, socket.socket]) -> None:
    client, conn = pair
    assert client.is_eof(timeout=SHORT) is False  # open and quiet
    conn.sendall(b"data")
    assert client.is_eof(timeout=T) is False  # data pending is not EOF...
    assert client.recv_exact(4) == b"data"  # ...and was not consumed
    conn.close()
    assert client.is_eof(timeout=T) is True


def test_is_eof_after_peer_reset(pair: tuple[StreamClient, socket.socket]) -> None:
    client, conn = pair
    server = StreamClient(conn, T)
    server.reset()
    assert client.is_eof(timeout=T) is True


def test_reset_sends_rst(pair: tuple[StreamClient, socket.socket]) -> None:
    client, conn = pair
    client.reset()
    assert client.closed
    with pytest.raises(ConnectionResetError):
        conn.recv(10)


def test_reset_with_unsent_data_still_resets(pair: tuple[StreamClient, socket.socket]) -> None:
    client, conn = pair
    client.send(b"unread by the server")
    client.reset()
    with pytest.raises(ConnectionResetError):
        # The RST may arrive before or after the data is read; either way it is seen.
        while conn.recv(65536):
            pass


# --- StreamClient over IPv6 and Unix --------------------------------------------------------


@pytest.mark.skipif(not _has_ipv6(), reason="no ::1")
def test_tcp6_round_trip() -> None:
    with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as listener:
        listener.bind(("::1", 0))
        listener.listen(1)
        listener.settimeout(T)
        with StreamClient.connect(_endpoint(listener, "tcp6"), timeout=T) as client:
            conn, peer = listener.accept()
            with conn:
                assert client.local_address == (peer[0], peer[1])
                client.send(b"six")
                assert conn.recv(3) == b"six"


def test_unix_stream_round_trip(unix_dir: str) -> None:
    path = os.path.join(unix_dir, "s")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
        listener.bind(path)
        listener.listen(1)
        listener.settimeout(T)
        endpoint = Endpoint("unix_stream", socket.AF_UNIX, socket.SOCK_STREAM, path)
        with StreamClient.connect(endpoint, timeout=T) as client:
            conn, _ = listener.accept()
            with conn:
                client.send(b"ping\n")
                assert conn.recv(5) == b"ping\n"
                conn.sendall(b"pong\n")
                assert client.recv_line() == b"pong\n"
                assert _elapsed(lambda: client.recv(timeout=SHORT)) < TOLERANCE


def _full_unix_listener(path: str) -> tuple[socket.socket, socket.socket]:
    """A Unix listener whose backlog is full (proved by an EAGAIN), and the filler."""
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(0)
    fillers = []
    for _ in range(8):
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        probe.setblocking(False)
        try:
            probe.connect(path)
        except BlockingIOError:
            probe.close()
            break
        fillers.append(probe)
    else:
        pytest.fail("the Unix backlog never filled")
    filler = fillers.pop()
    for f in fillers:
        f.close()
    return listener, filler


def test_unix_connect_retries_full_backlog_until_timeout(unix_dir: str) -> None:
    path = os.path.join(unix_dir, "full")
    listener, filler = _full_unix_listener(path)
    with listener, filler:
        endpoint = Endpoint("unix_stream", socket.AF_UNIX, socket.SOCK_STREAM, path)
        # Without retrying, connect() would fail at once with BlockingIOError.
        assert _elapsed(lambda: StreamClient.connect(endpoint, timeout=0.2)) >= 0.2


def test_unix_connect_waits_for_room_in_backlog(unix_dir: str) -> None:
    path = os.path.join(unix_dir, "full")
    listener, filler = _full_unix_listener(path)
    listener.settimeout(T)
    accepted: list[socket.socket] = []
    thread = threading.Thread(target=lambda: accepted.append(listener.accept()[0]), daemon=True)
    with listener, filler:
        endpoint = Endpoint("unix_stream", socket.AF_UNIX, socket.SOCK_STREAM, path)
        thread.start()  # makes room, whether before or during the client's retries
        with StreamClient.connect(endpoint, timeout=T) as client:
            client.send(b"in")
        thread.join(T)
        for conn in accepted:
            conn.close()


# --- DatagramClient -----------------------------------------------------------------------------


class DatagramEcho:
    """A thread echoing datagrams back to their sender until stopped."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.stop = threading.Event()
        sock.settimeout(0.05)  # lets the loop notice ``stop``; not a sync mechanism
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.is_set():
            try:
                data, peer = self.sock.recvfrom(65536)
            except TimeoutError:
                continue
            except OSError:
                return
            self.sock.sendto(data.upper(), peer)

    def close(self) -> None:
        self.stop.set()
        self.thread.join(T)
        self.sock.close()


def test_udp_send_recv_exchange() -> None:
    server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    server.bind(("127.0.0.1", 0))
    echo = DatagramEcho(server)
    try:
        endpoint = _endpoint(server, "udp")
        with DatagramClient.open(endpoint, timeout=T) as client:
            assert client.bind_path is None
            assert client.local_address[0] == "127.0.0.1"
            assert client.exchange(b"one") == b"ONE"
            client.send(b"two")
            assert client.recv() == b"TWO"
    finally:
        echo.close()


def test_udp_recv_timeout() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        silent.bind(("127.0.0.1", 0))
        with DatagramClient.open(_endpoint(silent, "udp"), timeout=SHORT) as client:
            client.send(b"anyone?")
            assert _elapsed(client.recv) < TOLERANCE
            assert _elapsed(lambda: client.exchange(b"again")) < TOLERANCE


def test_unix_dgram_binds_in_bind_dir_and_removes_on_close(unix_dir: str) -> None:
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(os.path.join(unix_dir, "srv"))
    echo = DatagramEcho(server)
    try:
        endpoint = _endpoint(server, "unix_dgram")
        client = DatagramClient.open(endpoint, timeout=T, bind_dir=unix_dir)
        with client:
            path = client.bind_path
            assert path is not None and os.path.dirname(path) == unix_dir
            assert os.path.exists(path) and client.local_address == path
            assert client.exchange(b"hi") == b"HI"  # the reply reached the bound path
        assert not os.path.exists(path)
        client.close()  # idempotent
    finally:
        echo.close()


def test_unix_dgram_without_bind_dir_uses_private_dir(unix_dir: str) -> None:
    server = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    server.bind(os.path.join(unix_dir, "srv"))
    echo = DatagramEcho(server)
    try:
        with DatagramClient.open(_endpoint(server, "unix_dgram"), timeout=T) as client:
            path = client.bind_path
            assert path is not None
            assert client.exchange(b"x") == b"X"
        assert not os.path.exists(path)
        assert not os.path.exists(os.path.dirname(path))
    finally:
        echo.close()


def test_unix_dgram_open_failure_leaves_no_file(unix_dir: str) -> None:
    endpoint = Endpoint(
        "unix_dgram", socket.AF_UNIX, socket.SOCK_DGRAM, os.path.join(unix_dir, "missing")
    )
    with pytest.raises(OSError):
        DatagramClient.open(endpoint, timeout=T, bind_dir=unix_dir)
    assert os.listdir(unix_dir) == []


def test_datagram_open_rejects_stream_endpoint(tmp_path: Path) -> None:
    endpoint = Endpoint("tcp", socket.AF_INET, socket.SOCK_STREAM, ("127.0.0.1", 9))
    with pytest.raises(ValueError):
        DatagramClient.open(endpoint, timeout=T, bind_dir=str(tmp_path))
