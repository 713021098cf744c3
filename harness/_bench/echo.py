"""Echo throughput and latency: closed-loop clients against a server child.

A *row* is one transport × kind × mode:

``persistent``
    each client opens one connection and runs request/reply round trips on
    it for the whole window (the handler echoes until EOF);
``per-request``
    each request is a new connection: connect, send, half-close, read to
    EOF, close (with SO_LINGER 0 on TCP so that tens of thousands of
    connections leave no TIME_WAIT behind to exhaust the ephemeral ports);
``datagram``
    each request is one datagram and its reply, from one socket per client.

Clients are ``concurrency`` threads of this process, released together,
each running back-to-back requests until the window closes (a synchronous
server with persistent connections gets one client: it serves one
connection at a time).  A measurement reports requests/s and the latency
percentiles of every request in the window.

``compare`` runs a row for two *sides* (two server configurations), each in
its own process, started together and measured in alternating order,
repetition after repetition (see ``_bench_stats.interleaved``).
"""

from __future__ import annotations

import contextlib
import os
import socket
import struct
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from harness._bench.server import BenchServer, BenchServerConfig
from harness._bench.stats import interleaved, median, paired_ratio, per_rep
from harness._model.errors import Unsupported
from harness._model.records import Endpoint
from harness._model.variants import KINDS, TRANSPORTS, resolve_server_class
from harness._runtime.loading import load_implementation
from harness._runtime.swarm import percentile

PAYLOAD = 64
CLIENT_TIMEOUT = 5.0
DEFAULT_CONCURRENCY = 4
#: Listen backlog of the servers under test: above the clients in flight, so
#: that no SYN is dropped (a dropped SYN costs a 1 s retransmit).
QUEUE_SIZE = 128
#: Per-window figures: requests/s, latency percentiles (s), server CPU s per request.
FIGURES = ("throughput", "p50", "p99", "cpu_per_request")
_LINGER_ZERO = struct.pack("ii", 1, 0)

Printer = Callable[[str], None]


@dataclass(frozen=True)
class Row:
    """One transport × kind × mode."""

    transport: str
    kind: str
    mode: str

    @property
    def label(self) -> str:
        """``tcp/threading/per-request``."""
        return f"{self.transport}/{self.kind}/{self.mode}"

    @property
    def concurrency(self) -> int:
        """Clients in flight: one for a synchronous server holding a connection."""
        return 1 if (self.kind == "sync" and self.mode == "persistent") else DEFAULT_CONCURRENCY


def all_rows(transports: Sequence[str] = tuple(TRANSPORTS)) -> list[Row]:
    """Every row: stream transports in both connection modes, datagram ones once."""
    rows = []
    for transport in transports:
        modes = ("persistent", "per-request") if TRANSPORTS[transport].is_stream else ("datagram",)
        rows += [Row(transport, kind, mode) for kind in KINDS for mode in modes]
    return rows


QUICK_ROWS = (
    Row("tcp", "threading", "persistent"),
    Row("tcp", "threading", "per-request"),
    Row("unix_stream", "sync", "per-request"),
    Row("udp", "sync", "datagram"),
)


# --- Measuring one window ---------------------------------------------------------------


@dataclass
class _Tally:
    latencies: list[float] = field(default_factory=list)
    errors: Counter[str] = field(default_factory=Counter)


def measure(
    endpoint: Endpoint, row: Row, duration: float, bind_dir: str, payload: bytes = b""
) -> dict[str, Any]:
    """Run ``row.concurrency`` clients for ``duration`` seconds; throughput and latency."""
    payload = payload or bytes(range(PAYLOAD))
    loop = {"persistent": _persistent, "per-request": _per_request, "datagram": _datagram}
    work = loop[row.mode]
    tallies = [_Tally() for _ in range(row.concurrency)]
    start = threading.Barrier(row.concurrency + 1)
    box: dict[str, float] = {}

    def client(n: int) -> None:
        start.wait()
        work(endpoint, payload, box["deadline"], tallies[n], bind_dir, n)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(row.concurrency)]
    for thread in threads:
        thread.start()
    box["deadline"] = (t0 := time.perf_counter()) + duration
    start.wait()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - t0
    latencies = [x for t in tallies for x in t.latencies]
    errors = sum((t.errors for t in tallies), Counter[str]())
    return {
        "requests": len(latencies),
        "elapsed": elapsed,
        "throughput": len(latencies) / elapsed if elapsed > 0 else None,
        "p50": percentile(latencies, 50),
        "p99": percentile(latencies, 99),
        "errors": sum(errors.values()),
        "error_types": dict(errors),
    }


def _recv_exact(sock: socket.socket, n: int) -> None:
    while n > 0:
        chunk = sock.recv(n)
        if not chunk:
            raise ConnectionError("server closed mid-reply")
        n -= len(chunk)


def _drain(sock: socket.socket) -> None:
    while sock.recv(65536):
        pass


def _connect(endpoint: Endpoint) -> socket.socket:
    sock = socket.socket(endpoint.family, socket.SOCK_STREAM)
    sock.settimeout(CLIENT_TIMEOUT)
    try:
        sock.connect(endpoint.address)
        if endpoint.family != getattr(socket, "AF_UNIX", -1):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except BaseException:
        sock.close()
        raise
    return sock


def _persistent(
    endpoint: Endpoint, payload: bytes, deadline: float, tally: _Tally, bind_dir: str, n: int
) -> None:
    sock: socket.socket | None = None
    clock = time.perf_counter
    while (t0 := clock()) < deadline:
        try:
            if sock is None:
                sock = _connect(endpoint)
                t0 = clock()
            sock.sendall(payload)
            _recv_exact(sock, len(payload))
            tally.latencies.append(clock() - t0)
        except OSError as exc:
            tally.errors[type(exc).__name__] += 1
            if sock is not None:
                sock.close()
            sock = None
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_WR)
            _drain(sock)
        sock.close()


def _per_request(
    endpoint: Endpoint, payload: bytes, deadline: float, tally: _Tally, bind_dir: str, n: int
) -> None:
    clock = time.perf_counter
    tcp = endpoint.family != getattr(socket, "AF_UNIX", -1)
    while (t0 := clock()) < deadline:
        try:
            sock = _connect(endpoint)
        except OSError as exc:
            tally.errors[type(exc).__name__] += 1
            continue
        try:
            sock.sendall(payload)
            sock.shutdown(socket.SHUT_WR)
            _drain(sock)
            tally.latencies.append(clock() - t0)
            if tcp:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_ZERO)
        except OSError as exc:
            tally.errors[type(exc).__name__] += 1
        finally:
            sock.close()


def _datagram(
    endpoint: Endpoint, payload: bytes, deadline: float, tally: _Tally, bind_dir: str, n: int
) -> None:
    clock = time.perf_counter
    sock = socket.socket(endpoint.family, socket.SOCK_DGRAM)
    path = ""
    try:
        if endpoint.family == getattr(socket, "AF_UNIX", -1):
            path = os.path.join(bind_dir, f"c{os.getpid()}-{threading.get_ident()}-{n}")
            sock.bind(path)
        sock.settimeout(1.0)
        sock.connect(endpoint.address)
        while (t0 := clock()) < deadline:
            try:
                sock.send(payload)
                sock.recv(65536)
                tally.latencies.append(clock() - t0)
            except OSError as exc:
                tally.errors[type(exc).__name__] += 1
    finally:
        sock.close()
        if path:
            with contextlib.suppress(OSError):
                os.unlink(path)


# --- Comparing two sides -------------------------------------------------------------------


@dataclass(frozen=True)
class Side:
    """One side of a comparison: a label and the server it runs."""

    label: str
    impl: str
    instrumented: bool = False


def unsupported(sides: Sequence[Side], row: Row) -> str:
    """Why a side cannot serve ``row`` here (e.g. stdlib 3.11 has no forking Unix servers)."""
    for side in sides:
        try:
            resolve_server_class(load_implementation(side.impl), row.transport, row.kind)
        except Unsupported as exc:
            return f"{side.label}: {exc.reason}"
    return ""


def compare(
    row: Row,
    sides: Sequence[Side],
    reps: int,
    duration: float,
    ratio_keys: Sequence[tuple[str, bool]],
    goal: float,
) -> dict[str, Any]:
    """Measure ``row`` on both sides, interleaved; per-side medians and paired ratios.

    ``ratio_keys`` are (figure, higher_is_better): each ratio is oriented so
    that it is ``side[1]`` over ``side[0]`` in goodness (throughput b/a,
    latency a/b), hence above 1 when the second side does better.
    """
    out: dict[str, Any] = {"row": row.label, **row.__dict__, "concurrency": row.concurrency}
    why = unsupported(sides, row)
    if why:
        return {**out, "unsupported": why}
    runs: dict[str, list[dict[str, Any]]] = {s.label: [] for s in sides}
    with tempfile.TemporaryDirectory(prefix="sockspec-bench-") as tmp:
        servers = _start(sides, row, tmp)
        try:
            for server in servers.values():
                measure(server.endpoint, row, min(0.2, duration), tmp)  # warm-up
            for _rep, side in interleaved(list(sides), reps):
                runs[side.label].append(_window(servers[side.label], row, duration, tmp))
        finally:
            for server in servers.values():
                server.stop()
    a, b = (runs[s.label] for s in sides)
    for side in sides:
        out[side.label] = _side_summary(runs[side.label])
    out["ratios"] = {
        key: (
            paired_ratio(per_rep(b, key), per_rep(a, key), goal)
            if higher
            else paired_ratio(per_rep(a, key), per_rep(b, key), goal)
        ).to_json()
        for key, higher in ratio_keys
    }
    return out


def _window(server: BenchServer, row: Row, duration: float, tmp: str) -> dict[str, Any]:
    """One measurement window, with the server's CPU seconds per request."""
    cpu = server.cpu_seconds()
    result = measure(server.endpoint, row, duration, tmp)
    used = server.cpu_seconds() - cpu
    # CPU time advances in clock ticks (10 ms): a window that read none measured nothing.
    result["cpu_per_request"] = (
        used / result["requests"] if result["requests"] and used > 0 else None
    )
    return result


def _start(sides: Sequence[Side], row: Row, tmp: str) -> dict[str, BenchServer]:
    servers: dict[str, BenchServer] = {}
    try:
        for side in sides:
            servers[side.label] = BenchServer(server_config(side, row, tmp))
    except BaseException:
        for server in servers.values():
            server.kill()
        raise
    return servers


def server_config(side: Side, row: Row, tmp: str) -> BenchServerConfig:
    """The benchmark server of ``side`` for ``row``, its Unix sockets under ``tmp``."""
    return BenchServerConfig(
        side.impl,
        row.transport,
        row.kind,
        tmp,
        instrumented=side.instrumented,
        attrs={"request_queue_size": QUEUE_SIZE},
    )


def _side_summary(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Medians over the repetitions of one side, plus its error total."""
    summary: dict[str, Any] = {
        key: median([r[key] for r in runs if r.get(key) is not None]) for key in FIGURES
    }
    summary["requests"] = sum(r["requests"] for r in runs)
    summary["errors"] = sum(r["errors"] for r in runs)
    types: Counter[str] = Counter()
    for r in runs:
        types.update(r["error_types"])
    summary["error_types"] = dict(types)
    summary["reps"] = [{k: r.get(k) for k in (*FIGURES, "requests", "errors")} for r in runs]
    return summary
