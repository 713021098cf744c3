"""Tests for harness._runtime.swarm (and harness._runtime.limits): many concurrent scripted clients.

The servers are written here with plain sockets and one selector thread each,
so the swarm is tested against nothing but the kernel. Synchronisation is by
Events and a wake-up socket, never sleeps; every wait has a timeout.
"""

from __future__ import annotations

import asyncio
import os
import resource
import selectors
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest

from harness._model.records import ClientResult, Endpoint
from harness._runtime.limits import count_open_fds, open_files_limit, raise_open_files_limit
from harness._runtime.swarm import (
    Close,
    ExpectEOF,
    Pause,
    Recv,
    RecvAll,
    RecvDatagram,
    RecvLine,
    Reset,
    Script,
    Send,
    ShutdownWrite,
    echo_script,
    run_swarm,
    swarm_stats,
)

T = 5.0
BIG = 1000  # the brief's scale for stream swarms
BACKLOG = 4096  # capped by somaxconn; keeps SYN drops out of the picture


class Server:
    """A one-thread selector server: ``echo``, ``silent`` (accept, never read) or ``barrier``.

    In ``barrier`` mode nothing is echoed until ``expected`` connections are open
    at once, so a swarm that does not really run its clients concurrently
    deadlocks (and times out) instead of passing.
    """

    def __init__(
        self, sock: socket.socket, mode: str = "echo", expected: int = 0, backlog: int = BACKLOG
    ) -> None:
        self.sock = sock
        self.mode = mode
        self.expected = expected
        self.stream = sock.type == socket.SOCK_STREAM
        self.peak = 0  # most connections open at once
        self.errors: list[BaseException] = []
        self._conns: dict[socket.socket, tuple[bytearray, list[bool]]] = {}
        self._released = mode != "barrier"
        self._sel = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        sock.setblocking(False)
        if self.stream:
            sock.listen(backlog)
        self._sel.register(sock, selectors.EVENT_READ, "listener")
        self._sel.register(self._wake_r, selectors.EVENT_READ, "wake")
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    @property
    def endpoint(self) -> Endpoint:
        transport = {
            (socket.AF_INET, True): "tcp",
            (socket.AF_INET, False): "udp",
            (socket.AF_UNIX, True): "unix_stream",
            (socket.AF_UNIX, False): "unix_dgram",
        }[(self.sock.family, self.stream)]
        address = self.sock.getsockname()
        return Endpoint(transport, self.sock.family, self.sock.type, address)

    def _run(self) -> None:
        try:
            while True:
                for key, events in self._sel.select():
                    if key.data == "wake":
                        return
                    if key.data == "listener":
                        self._on_listener()
                    else:
                        self._on_conn(key.fileobj, events)  # type: ignore[arg-type]
        except BaseException as exc:  # surfaced by close()
            self.errors.append(exc)

    def _on_listener(self) -> None:
        if not self.stream:
            try:
                data, peer = self.sock.recvfrom(65536)
            except BlockingIOError:
                return
            if self.mode == "echo":
                self.sock.sendto(data, peer)
            return
        while True:
            try:
                conn, _ = self.sock.accept()
            except BlockingIOError:
                return
            conn.setblocking(False)
            self._conns[conn] = (bytearray(), [False])
            self.peak = max(self.peak, len(self._conns))
            if self.mode != "silent":
                self._sel.register(conn, selectors.EVENT_READ, "conn")
            if not self._released and len(self._conns) >= self.expected:
                self._released = True
                for c in list(self._conns):
                    self._flush(c)

    def _on_conn(self, conn: socket.socket, events: int) -> None:
        out, eof = self._conns[conn]
        if events & selectors.EVENT_READ:
            try:
                data = conn.recv(65536)
            except ConnectionError:
                self._drop(conn)
                return
            if data:
                out += data
            else:
                eof[0] = True
        if self._released:
            self._flush(conn)

    def _flush(self, conn: socket.socket) -> None:
        out, eof = self._conns[conn]
        try:
            sent = conn.send(out) if out else 0
        except BlockingIOError:
            sent = 0
        except ConnectionError:
            self._drop(conn)
            return
        del out[:sent]
        if eof[0] and not out:
            self._drop(conn)
            return
        want = selectors.EVENT_READ | (selectors.EVENT_WRITE if out else 0)
        self._sel.modify(conn, want, "conn")

    def _drop(self, conn: socket.socket) -> None:
        if self._sel.get_map().get(conn.fileno()) is not None:
            self._sel.unregister(conn)
        del self._conns[conn]
        conn.close()

    def close(self) -> None:
        self._wake_w.send(b"x")
        self._thread.join(T)
        assert not self._thread.is_alive(), "server thread did not stop"
        for conn in list(self._conns):
            conn.close()
        self._sel.close()
        for s in (self._wake_r, self._wake_w, self.sock):
            s.close()
        assert not self.errors, self.errors


@pytest.fixture
def unix_dir() -> Iterator[str]:
    # Short paths: sun_path holds ~104 bytes and pytest's tmp_path can be longer.
    with tempfile.TemporaryDirectory(prefix="ssw-") as d:
        yield d


def tcp_server(mode: str = "echo", expected: int = 0) -> Server:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    return Server(sock, mode, expected)


def unix_server(directory: str, kind: int, mode: str = "echo") -> Server:
    sock = socket.socket(socket.AF_UNIX, kind)
    sock.bind(os.path.join(directory, "srv"))
    return Server(sock, mode)


def payloads(n: int) -> list[bytes]:
    """Distinct payloads of varying length, so a mix-up between clients shows."""
    return [b"client-%06d:" % i + b"x" * (i % 97) for i in range(n)]


def fds() -> int:
    count = count_open_fds()
    if count is None:
        pytest.skip("cannot count open descriptors on this platform")
    return count


def assert_echoed(results: list[ClientResult], sent: list[bytes]) -> None:
    assert [r.index for r in results] == list(range(len(sent)))
    bad = [r for r in results if not r.ok or r.received != sent[r.index]]
    assert not bad, f"{len(bad)} bad, first: {bad[0]}"


# --- Large echo swarms ---------------------------------------------------------------------


def test_tcp_swarm_each_client_gets_its_own_bytes() -> None:
    server = tcp_server()
    try:
        sent = payloads(BIG)
        results = run_swarm(server.endpoint, [echo_script(p, True) for p in sent], timeout=60)
    finally:
        server.close()
    assert_echoed(results, sent)
    assert all(r.connected is not None and r.started <= r.connected <= r.finished for r in results)
    assert len({r.local_address for r in results}) == BIG  # one connection each
    assert all(r.ops_done == 3 for r in results)


def test_unix_stream_swarm(unix_dir: str) -> None:
    server = unix_server(unix_dir, socket.SOCK_STREAM)
    try:
        sent = payloads(BIG)
        results = run_swarm(server.endpoint, [echo_script(p, True) for p in sent], timeout=60)
    finally:
        server.close()
    assert_echoed(results, sent)


def test_unix_stream_swarm_against_tiny_backlog(unix_dir: str) -> None:
    # Unix connect() fails with EAGAIN on a full backlog; the swarm must retry.
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(os.path.join(unix_dir, "srv"))
    server = Server(sock, backlog=1)
    try:
        sent = payloads(300)
        results = run_swarm(server.endpoint, [echo_script(p, True) for p in sent], timeout=30)
    finally:
        server.close()
    assert_echoed(results, sent)


def test_udp_swarm() -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    server = Server(sock)
    try:
        sent = payloads(200)
        results = run_swarm(server.endpoint, [echo_script(p, False) for p in sent], timeout=30)
    finally:
        server.close()
    assert_echoed(results, sent)
    assert all(r.connected is None and r.connect_time is None for r in results)


def test_unix_dgram_swarm_cleans_bind_dir(unix_dir: str) -> None:
    server = unix_server(unix_dir, socket.SOCK_DGRAM)
    with tempfile.TemporaryDirectory(prefix="ssb-") as bind_dir:
        try:
            sent = payloads(200)
            scripts = [echo_script(p, False) for p in sent]
            results = run_swarm(server.endpoint, scripts, timeout=30, bind_dir=bind_dir)
        finally:
            server.close()
        assert_echoed(results, sent)
        assert all(str(r.local_address).startswith(bind_dir) for r in results)
        assert os.listdir(bind_dir) == []


def test_swarm_clients_really_run_concurrently() -> None:
    n = 300
    server = tcp_server("barrier", expected=n)  # answers nobody until all n are open
    try:
        sent = payloads(n)
        results = run_swarm(server.endpoint, [echo_script(p, True) for p in sent], timeout=30)
    finally:
        server.close()
    assert_echoed(results, sent)
    assert server.peak == n


# --- Deadline and leaks ---------------------------------------------------------------------------


def test_silent_server_times_out_within_deadline_without_leaking() -> None:
    before = fds()
    server = tcp_server("silent")
    deadline = 0.5
    start = time.monotonic()
    try:
        results = run_swarm(server.endpoint, [echo_script(b"hello?", True)] * 50, timeout=deadline)
    finally:
        elapsed = time.monotonic() - start
        server.close()
    assert elapsed < deadline + 2.0
    assert all(not r.ok and r.error == "timeout" for r in results)
    assert all(r.connected is not None for r in results)  # the kernel accepted them
    assert all(r.ops_done == 2 for r in results)  # stuck in RecvAll
    assert all(r.finished - r.started < deadline + 1.0 for r in results)
    assert fds() == before


def test_silent_udp_server_times_out(unix_dir: str) -> None:
    before = fds()
    server = unix_server(unix_dir, socket.SOCK_DGRAM, mode="silent")
    try:
        results = run_swarm(server.endpoint, [echo_script(b"?", False)] * 20, timeout=0.3)
    finally:
        server.close()
    assert all(r.error == "timeout" and r.ops_done == 1 for r in results)
    assert fds() == before


def test_successful_swarm_leaks_no_fd() -> None:
    before = fds()
    server = tcp_server()
    try:
        results = run_swarm(server.endpoint, [echo_script(b"x", True)] * 200, timeout=30)
    finally:
        server.close()
    assert all(r.ok for r in results)
    assert fds() == before


def test_connection_refused_is_reported_per_client() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))  # bound but not listening: refused
        endpoint = Endpoint("tcp", socket.AF_INET, socket.SOCK_STREAM, s.getsockname())
        results = run_swarm(endpoint, [echo_script(b"x", True)] * 10, timeout=T)
    assert all(r.error_type == "ConnectionRefusedError" and r.ops_done == 0 for r in results)


@pytest.mark.skipif(sys.platform != "linux", reason="relies on Linux SYN-drop on full backlog")
def test_connect_timeout_is_separate_from_deadline() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)  # never accepted: further SYNs are dropped
        endpoint = Endpoint("tcp", socket.AF_INET, socket.SOCK_STREAM, listener.getsockname())
        scripts = [(Send(b"x"),)] * 8
        results = run_swarm(endpoint, scripts, timeout=T, connect_timeout=0.2)
    timed_out = [r for r in results if r.error_type == "ClientTimeout"]
    assert timed_out, results
    assert all(r.finished - r.started < 2.0 for r in timed_out)


# --- Script semantics ----------------------------------------------------------------------


def run_one(server: Server, script: Script, timeout: float = T) -> ClientResult:
    return run_swarm(server.endpoint, [script], timeout=timeout)[0]


def test_stream_ops() -> None:
    server = tcp_server()
    try:
        script: Script = (
            Send(b"ab\ncd"),
            RecvLine(),
            Pause(0.0),
            Send(b"ef"),
            Recv(4),
            ShutdownWrite(),
            ExpectEOF(),
            Close(),
        )
        result = run_one(server, script)
    finally:
        server.close()
    assert result.ok, result
    assert result.received == b"ab\ncdef"
    assert result.ops_done == len(script)


def test_recv_past_eof_is_an_error_with_partial_data() -> None:
    server = tcp_server()
    try:
        result = run_one(server, (Send(b"abc"), ShutdownWrite(), Recv(10)))
    finally:
        server.close()
    assert not result.ok and result.error_type == "ScriptError"
    assert result.received == b"abc" and result.ops_done == 2


def test_expect_eof_fails_on_data() -> None:
    server = tcp_server()
    try:
        result = run_one(server, (Send(b"surprise"), ExpectEOF()))
    finally:
        server.close()
    assert not result.ok and result.error_type == "ScriptError"
    assert result.received.startswith(b"s")


def test_reset_sends_rst_to_the_server() -> None:
    seen: list[BaseException | bytes] = []
    got_data = threading.Event()
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        listener.settimeout(T)

        def serve() -> None:
            conn, _ = listener.accept()
            with conn:
                conn.settimeout(T)
                try:
                    while data := conn.recv(100):
                        seen.append(data)
                        got_data.set()
                    seen.append(b"")
                except OSError as exc:
                    seen.append(exc)

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        endpoint = Endpoint("tcp", socket.AF_INET, socket.SOCK_STREAM, listener.getsockname())
        result = run_swarm(endpoint, [(Send(b"hi"), Pause(0.0), Reset())], timeout=T)
        thread.join(T)
    assert result[0].ok, result
    assert isinstance(seen[-1], ConnectionResetError), seen


def test_deadline_interrupts_pause() -> None:
    server = tcp_server()
    start = time.monotonic()
    try:
        result = run_one(server, (Send(b"x"), Pause(30.0)), timeout=0.2)
    finally:
        server.close()
    assert time.monotonic() - start < 2.0
    assert result.error == "timeout" and result.ops_done == 1


def test_datagram_recv_n_and_close() -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    server = Server(sock)
    try:
        result = run_one(
            server, (Send(b"0123456789"), Recv(4), Send(b"z"), RecvDatagram(), Close())
        )
    finally:
        server.close()
    assert result.ok, result
    assert result.received == b"0123z"  # Recv(4) truncates its datagram, as recv(4) does


# --- Validation and calling contexts ---------------------------------------------------------


@pytest.mark.parametrize("op", [RecvLine(), RecvAll(), ShutdownWrite(), Reset(), ExpectEOF()])
def test_stream_only_ops_rejected_for_datagrams(op: object) -> None:
    endpoint = Endpoint("udp", socket.AF_INET, socket.SOCK_DGRAM, ("127.0.0.1", 9))
    before = fds()
    with pytest.raises(ValueError, match="datagram"):
        run_swarm(endpoint, [(Send(b"x"),), (Send(b"x"), op)], timeout=T)  # type: ignore[list-item]
    assert fds() == before


def test_datagram_only_op_rejected_for_streams() -> None:
    endpoint = Endpoint("tcp", socket.AF_INET, socket.SOCK_STREAM, ("127.0.0.1", 9))
    with pytest.raises(ValueError, match="stream"):
        run_swarm(endpoint, [(RecvDatagram(),)], timeout=T)


def test_op_arguments_validated() -> None:
    with pytest.raises(ValueError):
        Recv(-1)
    with pytest.raises(ValueError):
        Pause(-0.5)
    with pytest.raises(ValueError):
        Pause(float("nan"))


def test_empty_swarm() -> None:
    endpoint = Endpoint("tcp", socket.AF_INET, socket.SOCK_STREAM, ("127.0.0.1", 9))
    assert run_swarm(endpoint, [], timeout=T) == []


def test_echo_script_shapes() -> None:
    assert echo_script(b"p", True) == (Send(b"p"), ShutdownWrite(), RecvAll())
    assert echo_script(b"p", False) == (Send(b"p"), RecvDatagram())


def test_run_swarm_from_a_thread_and_from_async_code() -> None:
    server = tcp_server()
    scripts = [echo_script(b"t%d" % i, True) for i in range(20)]
    try:
        with ThreadPoolExecutor(2) as pool:
            futures = [
                pool.submit(run_swarm, server.endpoint, scripts, timeout=T) for _ in range(2)
            ]
            from_threads = [f.result(timeout=30) for f in futures]

        async def inside_a_loop() -> list[ClientResult]:
            return run_swarm(server.endpoint, scripts, timeout=T)

        from_async = asyncio.run(inside_a_loop())
    finally:
        server.close()
    for results in [*from_threads, from_async]:
        assert_echoed(results, [b"t%d" % i for i in range(20)])


# --- Summary --------------------------------------------------------------------------------


def test_summarise() -> None:
    results = [
        ClientResult(i, ok=True, started=0.0, connected=i / 100, finished=1.0 + i / 100)
        for i in range(1, 101)
    ] + [
        ClientResult(200, ok=False, error="timeout", error_type="TimeoutError", finished=5.0),
        ClientResult(201, ok=False, error="x", error_type="ConnectionResetError", finished=2.0),
        ClientResult(202, ok=False, error="y", error_type="TimeoutError", finished=3.0),
    ]
    stats = swarm_stats(results)
    assert (stats.clients, stats.ok, stats.errors) == (103, 100, 3)
    assert stats.error_types == (("ConnectionResetError", 1), ("TimeoutError", 2))
    assert stats.connect_p50 == pytest.approx(0.50)
    assert stats.connect_p99 == pytest.approx(0.99)
    assert stats.connect_max == pytest.approx(1.00)
    assert stats.duration_p50 == pytest.approx(1.52)  # nearest rank: 52nd of 103
    assert stats.duration_max == pytest.approx(5.0)
    assert stats.wall == pytest.approx(5.0)
    assert stats.to_json()["error_types"] == {"ConnectionResetError": 1, "TimeoutError": 2}


def test_summarise_empty() -> None:
    stats = swarm_stats([])
    assert stats.clients == 0 and stats.connect_p50 is None and stats.duration_p99 is None


# --- Open-files limit -------------------------------------------------------------------------


def test_raise_open_files_limit_never_lowers_and_respects_hard() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        assert raise_open_files_limit(1) == open_files_limit() >= soft
        got = raise_open_files_limit(1 << 40)
        if hard != resource.RLIM_INFINITY:
            assert got <= hard
        assert got >= soft
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_raise_open_files_limit_raises_soft_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    low = min(soft, 256)
    if hard != resource.RLIM_INFINITY and hard <= low:
        pytest.skip("hard limit too low to test raising")
    resource.setrlimit(resource.RLIMIT_NOFILE, (low, hard))
    try:
        assert raise_open_files_limit(low + 100) == low + 100
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
