"""A server under benchmark, in its own process.

The benchmark never serves from its own process: a server sharing the
client's interpreter would share its GIL, so every client cost would be
charged to the server too (compressing every ratio toward 1), and CPU time
could not be told apart.  ``BenchServer`` starts ``python -m
harness._bench.server CONFIG``; the child builds the variant exactly as
``Context.server`` does (the implementation's class, subclassed with the
requested class attributes, instrumented or not; the harness's echo
behaviour on the implementation's handler class), serves it in a thread,
prints one JSON line with its address, then answers commands read from
stdin, one per line:

``stats``
    one JSON line: ``peak`` (most handlers live at once), ``live``,
    ``handled``, ``established`` (connections counted at the barrier),
    ``released`` (monotonic time the barrier opened), ``events`` (lifecycle
    events logged, instrumented servers only).

End of input stops the server (``shutdown()``, ``server_close()``) and
the child prints its final ``stats`` line and exits.

The ``barrier`` handler is the load test's: each handler, once its client
connected, waits until ``clients`` handlers are live at the same time (or
``barrier_timeout`` passed), then sends the go signal -- ``b"G"`` plus the
monotonic time as a big-endian double -- and echoes until EOF.
"""

from __future__ import annotations

import contextlib
import cProfile
import json
import os
import pstats
import selectors
import socket
import struct
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from harness._model.records import Endpoint
from harness._model.variants import (
    TRANSPORTS,
    bind_address,
    resolve_handler_base,
    resolve_server_class,
)
from harness._runtime.eventlog import EventLog
from harness._runtime.handlers import Behaviour, HandlerSpec, build_handler, echo
from harness._runtime.instrument import instrument_handler, instrument_server
from harness._runtime.limits import raise_open_files_limit
from harness._runtime.loading import load_implementation

#: The go signal of the barrier handler: b"G" + struct GO_TIME.
GO = b"G"
GO_TIME = struct.Struct("!d")
GO_SIZE = len(GO) + GO_TIME.size

STARTUP_TIMEOUT = 30.0


@dataclass(frozen=True)
class BenchServerConfig:
    """What the child process serves (crosses the process boundary as JSON)."""

    impl: str
    transport: str
    kind: str
    tmpdir: str
    instrumented: bool = False
    handler: str = "echo"  # or "barrier"
    clients: int = 0  # barrier size
    barrier_timeout: float = 60.0
    attrs: dict[str, Any] = field(default_factory=dict)
    poll_interval: float = 0.5
    stack_size: int = 0  # handler thread stack, bytes (0: the default)
    profile: str = ""  # write merged cProfile stats of the server's threads here

    def to_argv(self) -> list[str]:
        """The child's command line."""
        config = json.dumps(self.__dict__)
        return [sys.executable, "-m", "harness._bench.server", config]


class _Barrier:
    """Counts live handlers; opens once ``target`` are live together."""

    def __init__(self, target: int, timeout: float, endpoint: Endpoint | None = None) -> None:
        self.target = target
        self.timeout = timeout
        self.endpoint = endpoint
        self.lock = threading.Lock()
        self.gate = threading.Event()
        self.live = self.peak = self.handled = 0
        self.established: int | None = None
        self.released: float | None = None

    def enter(self) -> None:
        """A handler started; the one completing the set counts connections and opens."""
        with self.lock:
            self.live += 1
            self.peak = max(self.peak, self.live)
            complete = self.target > 0 and self.live >= self.target and not self.gate.is_set()
        if complete:
            self.established = count_established(self.endpoint, self.target)
            self.released = time.monotonic()
            self.gate.set()

    def leave(self) -> None:
        """A handler finished."""
        with self.lock:
            self.live -= 1
            self.handled += 1

    def stats(self) -> dict[str, Any]:
        """The figures ``stats`` reports."""
        with self.lock:
            return {
                "peak": self.peak,
                "live": self.live,
                "handled": self.handled,
                "established": self.established,
                "released": self.released,
            }


def count_established(endpoint: Endpoint | None, expected: int, attempts: int = 3) -> int | None:
    """Connections of this process to ``endpoint`` that the kernel lists as established.

    TCP: sockets whose local address is the listening one, state ESTABLISHED.
    Unix streams have no state; the accepted sockets carry the server's path.
    The kernel's tables are read in chunks while other processes open and
    close sockets, so one reading may miss an entry: the count is read again
    (up to ``attempts`` times) until it is the ``expected`` number.
    """
    count = None
    for _ in range(attempts):
        count = _count_once(endpoint)
        if count is None or count == expected:
            break
    return count


def _count_once(endpoint: Endpoint | None) -> int | None:
    if endpoint is None:
        return None
    unix = endpoint.family == getattr(socket, "AF_UNIX", -2)
    try:
        conns = psutil.Process().net_connections(kind="unix" if unix else "tcp")
    except psutil.Error:
        return None
    if unix:
        return sum(1 for c in conns if c.laddr == endpoint.address) - 1  # minus the listener
    port = endpoint.address[1]
    return sum(
        1 for c in conns if c.status == psutil.CONN_ESTABLISHED and c.laddr and c.laddr[1] == port
    )


def _counting(barrier: _Barrier, behaviour: Behaviour) -> Behaviour:
    def handle(h: Any) -> None:
        barrier.enter()
        try:
            behaviour(h)
        finally:
            barrier.leave()

    return handle


def _barrier_echo(barrier: _Barrier) -> Behaviour:
    def handle(h: Any) -> None:
        barrier.gate.wait(barrier.timeout)
        h.request.sendall(GO + GO_TIME.pack(time.monotonic()))
        echo(h)

    return handle


# --- The child -----------------------------------------------------------------------


class _Profiles:
    """cProfile (per-thread CPU time) in every thread started after ``start()``."""

    def __init__(self) -> None:
        self.profiles: list[cProfile.Profile] = []
        self.lock = threading.Lock()

    def start(self) -> None:
        threading.setprofile(self._hook)

    def _hook(self, frame: Any, event: str, arg: Any) -> None:
        # Runs once, on the thread's first event: cProfile's enable() replaces the hook.
        # Timed by the thread's CPU clock: a thread blocked in poll() or acquire()
        # costs nothing, so the profile shows where CPU goes, not where threads wait.
        profile = cProfile.Profile(time.thread_time)
        with self.lock:
            self.profiles.append(profile)
        profile.enable()

    def dump(self, path: str) -> None:
        threading.setprofile(None)
        with self.lock:
            profiles = list(self.profiles)
        if not profiles:
            return
        stats = pstats.Stats(profiles[0])
        for profile in profiles[1:]:
            stats.add(profile)
        stats.dump_stats(path)


def serve(config: BenchServerConfig) -> None:
    """Serve ``config`` until stdin closes (the child's whole life)."""
    raise_open_files_limit(1 << 20)
    if config.stack_size:
        threading.stack_size(config.stack_size)
    profiles = _Profiles() if config.profile else None
    impl = load_implementation(config.impl)
    log = EventLog() if config.instrumented else None
    barrier = _Barrier(config.clients, config.barrier_timeout)
    behaviour = _barrier_echo(barrier) if config.handler == "barrier" else echo
    spec = HandlerSpec(handle=_counting(barrier, behaviour))
    base = resolve_server_class(impl, config.transport, config.kind)
    server_cls = type(base.__name__, (base,), dict(config.attrs))
    handler_cls = build_handler(resolve_handler_base(impl, config.transport), spec)
    if log is not None:
        server_cls = instrument_server(server_cls, log)
        handler_cls = instrument_handler(handler_cls, log)
    server = server_cls(bind_address(config.transport, config.tmpdir, os.getpid()), handler_cls)
    barrier.endpoint = endpoint_of(config.transport, server.server_address)
    if profiles is not None:
        profiles.start()
    thread = threading.Thread(target=server.serve_forever, args=(config.poll_interval,))
    thread.start()

    def stats() -> str:
        figures = barrier.stats()
        figures["events"] = len(log.events()) if log is not None else None
        return json.dumps(figures)

    print(json.dumps({"address": barrier.endpoint.address, "pid": os.getpid()}), flush=True)
    for line in sys.stdin:
        if line.strip() == "stats":
            print(stats(), flush=True)
    server.shutdown()
    thread.join()
    server.server_close()
    if profiles is not None:
        profiles.dump(config.profile)
    if log is not None:
        log.close()
    if isinstance(barrier.endpoint.address, str):
        os.unlink(barrier.endpoint.address)  # socketserver leaves its socket file behind
    print(stats(), flush=True)


def endpoint_of(transport: str, address: Any) -> Endpoint:
    """The endpoint of a server bound to ``address`` (as bound, or as sent over JSON)."""
    t = TRANSPORTS[transport]
    if isinstance(address, (list, tuple)):
        address = (address[0], address[1])
    elif isinstance(address, bytes):
        address = address.decode()
    return Endpoint(transport, t.family, t.socktype, address)


# --- The parent's handle -------------------------------------------------------------


class BenchServer:
    """A running server child: its endpoint, its CPU time, its stats; a context manager."""

    def __init__(self, config: BenchServerConfig) -> None:
        self.config = config
        self._buffer = b""
        self.proc = subprocess.Popen(
            config.to_argv(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=child_env(),
        )
        try:
            hello = json.loads(self._readline(STARTUP_TIMEOUT))
        except BaseException:
            self.kill()
            raise
        if "error" in hello:
            self.kill()
            raise RuntimeError(f"benchmark server {self._name()}: {hello['error']}")
        self.endpoint = endpoint_of(config.transport, hello["address"])
        self.pid: int = hello["pid"]
        self._ps = psutil.Process(self.proc.pid)
        self.final: dict[str, Any] | None = None

    def __enter__(self) -> BenchServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def cpu_seconds(self) -> float:
        """User + system CPU of the server process and its children so far.

        Children count whether reaped (their time is then in ``children_*``)
        or not yet (read from their own record, zombies included), so a
        forking server's work is not missed while its children await reaping.
        """
        t = self._ps.cpu_times()
        total: float = t.user + t.system + t.children_user + t.children_system
        with contextlib.suppress(psutil.Error):
            for child in self._ps.children():
                with contextlib.suppress(psutil.Error):
                    c = child.cpu_times()
                    total += c.user + c.system
        return total

    def stats(self, timeout: float = 30.0) -> dict[str, Any]:
        """The child's current ``stats`` (see the module docstring)."""
        self._send(b"stats\n")
        result: dict[str, Any] = json.loads(self._readline(timeout))
        return result

    def stop(self, timeout: float = 60.0) -> dict[str, Any] | None:
        """Stop the server (closing its stdin) and return its final stats (None if killed)."""
        if self.proc.poll() is None and self.proc.stdin is not None and not self.proc.stdin.closed:
            self.proc.stdin.close()
            try:
                self.final = json.loads(self._readline(timeout))
                self.proc.wait(timeout)
            except (RuntimeError, ValueError, subprocess.TimeoutExpired):
                self.kill()
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        return self.final

    def kill(self) -> None:
        """Kill the child (a last resort) and reap it."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()

    def _send(self, data: bytes) -> None:
        stdin = self.proc.stdin
        if stdin is None or stdin.closed:
            raise RuntimeError(f"benchmark server {self._name()} is stopped")
        stdin.write(data)
        stdin.flush()

    def _readline(self, timeout: float) -> str:
        """One line of the child's output, waiting at most ``timeout`` seconds."""
        stdout = self.proc.stdout
        if stdout is None:
            raise RuntimeError(f"benchmark server {self._name()} has no output pipe")
        deadline = time.monotonic() + timeout
        fd = stdout.fileno()
        with selectors.DefaultSelector() as sel:
            sel.register(fd, selectors.EVENT_READ)
            while b"\n" not in self._buffer:
                left = deadline - time.monotonic()
                if left <= 0 or not sel.select(left):
                    raise RuntimeError(
                        f"benchmark server {self._name()} did not answer within {timeout:g} s"
                    )
                chunk = os.read(fd, 65536)
                if not chunk:
                    raise RuntimeError(
                        f"benchmark server {self._name()} exited (status {self.proc.poll()})"
                    )
                self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line.decode()

    def _name(self) -> str:
        c = self.config
        return f"{c.impl}/{c.transport}/{c.kind}"


def child_env() -> dict[str, str]:
    """The environment of a child Python: this one, with the harness's root (which
    holds harness/, servers/ and scenarios/) first on PYTHONPATH."""
    root = str(Path(__file__).resolve().parents[2])
    extra = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": root if not extra else os.pathsep.join([root, extra])}


def main(argv: list[str]) -> int:
    """The child's entry point: serve the JSON config in ``argv[0]``."""
    try:
        serve(BenchServerConfig(**json.loads(argv[0])))
    except Exception as exc:
        # The parent reads this instead of the hello line and reports it.
        print(json.dumps({"error": f"{type(exc).__name__}: {exc}"}), flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
