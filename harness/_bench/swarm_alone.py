"""Benchmark the swarm runner: N concurrent echo clients over TCP and Unix sockets.

Usage::

    python -m harness bench swarm [--clients 1000] [--transports tcp,unix]

The echo server is deliberately simple -- plain sockets, one thread per
connection -- and runs in a child process: it then neither competes with the
swarm for the GIL nor shares its descriptor limit (10,000 clients need 10,000
descriptors on each side, more than one process may hold on many machines).
Every client sends its own numbered payload, half-closes and reads until EOF,
and a client only counts as ok if it got back exactly its own bytes.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence

from harness._model.records import Endpoint
from harness._runtime.limits import raise_open_files_limit
from harness._runtime.swarm import (
    DEFAULT_MAX_CONNECTING,
    echo_script,
    run_swarm,
    swarm_stats,
)

SOCKET_TIMEOUT = 60.0


# --- The server (child process) ---------------------------------------------------


def _echo(conn: socket.socket) -> None:
    """Echo until the client half-closes, then close."""
    with conn:
        conn.settimeout(SOCKET_TIMEOUT)
        try:
            while data := conn.recv(65536):
                conn.sendall(data)
        except OSError:
            pass  # a client that resets is its own error, seen on its side


def serve(transport: str, backlog: int, path: str) -> None:
    """Listen, print the address as one JSON line, echo until stdin closes."""
    raise_open_files_limit(1 << 20)
    # Thousands of handler threads: the default 8 MiB stack reservation is waste.
    threading.stack_size(256 * 1024)
    if transport == "unix":
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(path)
        address: object = path
    else:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", 0))
        address = listener.getsockname()
    listener.listen(backlog)

    def accept_loop() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return  # listener closed: shutting down
            threading.Thread(target=_echo, args=(conn,), daemon=True).start()

    threading.Thread(target=accept_loop, daemon=True).start()
    print(json.dumps({"address": address}), flush=True)
    sys.stdin.read()  # the parent closes our stdin to stop us
    listener.close()


# --- The swarm (parent process) -----------------------------------------------------


def _endpoint(transport: str, address: str | list[object]) -> Endpoint:
    if transport == "unix":
        return Endpoint("unix_stream", socket.AF_UNIX, socket.SOCK_STREAM, address)
    # JSON turned the (host, port) tuple into a list.
    return Endpoint("tcp", socket.AF_INET, socket.SOCK_STREAM, tuple(address))


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value * 1000:.2f} ms"


def bench(
    transport: str, clients: int, payload: int, timeout: float, backlog: int, max_connecting: int
) -> None:
    """Run one swarm of ``clients`` echo clients against a fresh server; print figures."""
    with tempfile.TemporaryDirectory(prefix="sockspec-bench-") as tmp:
        path = os.path.join(tmp, "echo.sock")
        argv = [
            sys.executable,
            "-m",
            "harness._bench.swarm_alone",
            "--serve",
            transport,
            "--backlog",
            str(backlog),
        ]
        argv += ["--path", path]
        server = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            line = server.stdout.readline() if server.stdout is not None else ""
            if not line:
                raise RuntimeError(f"echo server for {transport} did not start")
            address = json.loads(line)["address"]
            endpoint = _endpoint(transport, address)
            payloads = [(b"%08d:" % i).ljust(payload, b"x") for i in range(clients)]
            scripts = [echo_script(p, stream=True) for p in payloads]
            t0 = time.monotonic()
            results = run_swarm(
                endpoint, scripts, timeout=timeout, max_connecting=max_connecting or None
            )
            elapsed = time.monotonic() - t0
        finally:
            if server.stdin is not None:
                server.stdin.close()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()

    stats = swarm_stats(results)
    wrong = sum(1 for r, p in zip(results, payloads, strict=True) if r.ok and r.received != p)
    errors = ", ".join(f"{name} x{count}" for name, count in stats.error_types) or "none"
    print(
        f"{transport:5} clients={clients:<6} total={elapsed:6.2f} s  ok={stats.ok:<6} "
        f"errors={stats.errors} ({errors})  wrong_bytes={wrong}\n"
        f"      connect p50={_ms(stats.connect_p50)} p99={_ms(stats.connect_p99)} "
        f"max={_ms(stats.connect_max)}  duration p50={_ms(stats.duration_p50)} "
        f"p99={_ms(stats.duration_p99)} max={_ms(stats.duration_max)}",
        flush=True,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Parse arguments and run the benchmark (or, with --serve, be the server)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=1000, help="concurrent clients (1000)")
    parser.add_argument("--transports", default="tcp,unix", help="comma list of tcp,unix")
    parser.add_argument("--payload", type=int, default=64, help="bytes per client (64)")
    parser.add_argument("--timeout", type=float, default=120.0, help="swarm deadline, s")
    parser.add_argument("--backlog", type=int, default=4096, help="server listen() backlog")
    parser.add_argument(
        "--max-connecting",
        type=int,
        default=DEFAULT_MAX_CONNECTING,
        help=f"connect() calls in flight, 0 = unlimited ({DEFAULT_MAX_CONNECTING})",
    )
    parser.add_argument("--serve", choices=("tcp", "unix"), help=argparse.SUPPRESS)
    parser.add_argument("--path", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.serve:
        serve(args.serve, args.backlog, args.path or "")
        return 0
    print(
        f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, payload {args.payload} B, "
        f"backlog {args.backlog}, max_connecting {args.max_connecting or 'unlimited'}"
    )
    for transport in args.transports.split(","):
        bench(
            transport,
            args.clients,
            args.payload,
            args.timeout,
            args.backlog,
            args.max_connecting,
        )
    # ru_maxrss is KiB on Linux (bytes on macOS); it covers the swarm side only.
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(f"swarm process peak RSS: {peak / 1024:.0f} MiB (Linux units)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
