"""Swarm runner: many concurrent clients, released together, each following a script.

Scripts are plain data (tuples of frozen op records) drawn before any I/O, so a
swarm is reproducible from whatever seed produced its scripts, and the runner
can reject a script that makes no sense for the transport before opening a
single socket.

The runner is one asyncio event loop private to the call (``_aioloop``: a
worker thread if the calling thread already runs a loop), so it can be used
from tests, threads, green threads and the CLI alike. Each client costs one
task, one socket and, for streams, one asyncio transport: that keeps 10,000
clients within reach on a small machine. Nothing can hang: connects have their
own timeout, the whole swarm has a deadline after which unfinished clients are
recorded as ``"timeout"`` and aborted, and every socket is closed before
returning.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import math
import os
import shutil
import socket
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from harness._model.phases import CLIENT_EOF, CLIENT_REPLY
from harness._model.records import ClientResult, Endpoint
from harness._runtime.aioloop import run_private
from harness._runtime.clients import (
    UNIX_RETRY_FIRST,
    UNIX_RETRY_MAX,
    ClientTimeout,
    enable_reset_on_close,
    make_bind_path,
    normalise_address,
)
from harness._runtime.forksafe import forget, track
from harness._runtime.limits import count_open_fds, raise_open_files_limit

if TYPE_CHECKING:
    from typing import TypeAlias

    from harness._runtime.clientwait import ClientWatch

__all__ = [
    "Close",
    "ExpectEOF",
    "Op",
    "Pause",
    "Recv",
    "RecvAll",
    "RecvDatagram",
    "RecvLine",
    "Reset",
    "Script",
    "ScriptError",
    "Send",
    "ShutdownWrite",
    "SwarmStats",
    "echo_script",
    "run_swarm",
    "swarm_stats",
]


# --- Script ops --------------------------------------------------------------


@dataclass(frozen=True)
class Send:
    """Send ``data`` (all of it on a stream; as one datagram on a datagram transport)."""

    data: bytes


@dataclass(frozen=True)
class Recv:
    """Stream: receive exactly ``n`` bytes (EOF first is an error).

    Datagram: receive one datagram into an ``n``-byte buffer (the kernel
    truncates longer ones, as ``recv(n)`` does).
    """

    n: int

    def __post_init__(self) -> None:
        if self.n < 0:
            raise ValueError(f"Recv(n) needs n >= 0, got {self.n}")


@dataclass(frozen=True)
class RecvLine:
    """Stream only: receive up to and including ``b'\\n'`` (EOF first is an error)."""


@dataclass(frozen=True)
class RecvAll:
    """Stream only: receive until the peer closes its side."""


@dataclass(frozen=True)
class RecvDatagram:
    """Datagram only: receive one datagram of any size."""


@dataclass(frozen=True)
class ShutdownWrite:
    """Stream only: half-close (send FIN); reading remains possible."""


@dataclass(frozen=True)
class Reset:
    """Stream only: abort with SO_LINGER 0 so TCP sends RST; later ops fail."""


@dataclass(frozen=True)
class Pause:
    """Do nothing for ``seconds`` (the swarm deadline still applies)."""

    seconds: float

    def __post_init__(self) -> None:
        if not self.seconds >= 0:  # also rejects NaN
            raise ValueError(f"Pause(seconds) needs seconds >= 0, got {self.seconds}")


@dataclass(frozen=True)
class Close:
    """Close the socket gracefully; later ops fail."""


@dataclass(frozen=True)
class ExpectEOF:
    """Stream only: the next read must be EOF; data instead is an error (and is recorded)."""


# The aliases are strings so that workers on Python < 3.10 can import this module.
#: One step of a client script.
Op: TypeAlias = (
    "Send | Recv | RecvLine | RecvAll | RecvDatagram | ShutdownWrite | Reset | Pause | Close"
    " | ExpectEOF"
)
#: A client's whole behaviour, fixed before the swarm starts.
Script: TypeAlias = "tuple[Op, ...]"

_STREAM_OPS = (Send, Recv, RecvLine, RecvAll, ShutdownWrite, Reset, Pause, Close, ExpectEOF)
_DATAGRAM_OPS = (Send, Recv, RecvDatagram, Pause, Close)


def echo_script(payload: bytes, stream: bool) -> Script:
    """Send ``payload`` and read back the reply: the script for an echo server."""
    if stream:
        return (Send(payload), ShutdownWrite(), RecvAll())
    return (Send(payload), RecvDatagram())


# --- Tunables ------------------------------------------------------------------

#: RecvAll stops with an error beyond this many bytes per op, so a server
#: that streams forever cannot exhaust memory before the deadline ends the swarm.
RECV_ALL_LIMIT = 64 * 1024 * 1024

#: Longest line RecvLine accepts (it is also the StreamReader buffer limit).
LINE_LIMIT = 1024 * 1024

#: Default cap on stream connect() calls in flight at once.
#:
#: Over loopback a connect() normally completes inside the system call, so a
#: slot is held for microseconds and the cap costs nothing. A connect stays in
#: flight only when the listener's accept queue (min(backlog, somaxconn)) was
#: full: Linux then drops the SYN and the client retransmits after 1 s, 3 s...
#: Released all at once, 10,000 clients outrun a server accepting from a
#: 4096-deep queue and about half of them sit out that 1 s retransmit
#: (measured: connect p50 1.04 s uncapped, 0.02 ms capped, the same ~2.4 s
#: overall). The cap stops the swarm from piling more SYNs onto a full queue
#: and confines the stall to at most this many clients, so connect times keep
#: describing the server rather than the retransmit timer.
#:
#: It is no cure for a tiny backlog: against socketserver's default
#: ``request_queue_size = 5`` a burst of even a few dozen TCP clients meets
#: dropped SYNs and syncookie resets whatever the cap -- raise the server's
#: ``request_queue_size`` for swarm scenarios. ``max_connecting=None`` disables.
DEFAULT_MAX_CONNECTING = 64

# Spare descriptors on top of the swarm's own (stdio, selector, server sockets...).
_FD_HEADROOM = 64

# --- Per-client state ------------------------------------------------------------


class _Client:
    """Mutable state of one client while the swarm runs (becomes a ClientResult)."""

    __slots__ = (
        "bind_path",
        "connected",
        "error",
        "error_type",
        "fd",
        "finished",
        "heard",
        "index",
        "local",
        "ok",
        "ops_done",
        "received",
        "sock",
        "started",
        "writer",
    )

    def __init__(self, index: int) -> None:
        self.index = index
        self.fd = -1
        self.ok = False
        self.received = bytearray()
        self.error: str | None = None
        self.error_type: str | None = None
        self.local: Any = None
        self.started = 0.0
        self.connected: float | None = None
        self.finished = 0.0
        self.ops_done = 0
        #: Bytes that arrived from the server, read by the script or not yet.
        self.heard = 0
        self.sock: socket.socket | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.bind_path: str | None = None

    def fail(self, exc: BaseException) -> None:
        """Record ``exc`` as this client's error."""
        self.error = str(exc) or type(exc).__name__
        self.error_type = type(exc).__name__

    def result(self) -> ClientResult:
        """Freeze into the public record."""
        return ClientResult(
            index=self.index,
            ok=self.ok,
            received=bytes(self.received),
            error=self.error,
            error_type=self.error_type,
            local_address=self.local,
            started=self.started,
            connected=self.connected,
            finished=self.finished,
            ops_done=self.ops_done,
        )


class ScriptError(Exception):
    """A script expectation failed: EOF before a Recv was satisfied, data before ExpectEOF..."""


# --- Connecting ------------------------------------------------------------------


async def _connect_stream(sock: socket.socket, address: Any, timeout: float) -> None:
    """Non-blocking connect of ``sock`` within ``timeout`` seconds, raising ClientTimeout.

    Not ``loop.sock_connect``: on a Unix listener with a full backlog it takes
    EAGAIN for "in progress" and reports success on an unconnected socket.
    """
    loop = asyncio.get_running_loop()
    deadline = time.monotonic() + timeout
    delay = UNIX_RETRY_FIRST
    while True:
        try:
            sock.connect(address)
            return
        except BlockingIOError as exc:
            if exc.errno != errno.EINPROGRESS:
                # EAGAIN: Unix listener backlog full; nothing to wait on but time
                # (see UNIX_RETRY_FIRST).
                left = deadline - time.monotonic()
                if left <= 0:
                    raise ClientTimeout(f"connect to {address!r}", timeout) from None
                await asyncio.sleep(min(delay, left))
                delay = min(delay * 2, UNIX_RETRY_MAX)
                continue
        break
    # EINPROGRESS (TCP). Over loopback the handshake has usually completed
    # inside connect() already, so check before paying for a selector round trip.
    if _is_connected(sock):
        return
    # Otherwise the socket becomes writable when the handshake ends.
    fut: asyncio.Future[None] = loop.create_future()

    def wake() -> None:
        if not fut.done():
            fut.set_result(None)

    fd = sock.fileno()
    loop.add_writer(fd, wake)
    timer = loop.call_at(loop.time() + max(deadline - time.monotonic(), 0.0), wake)
    try:
        await fut
    finally:
        timer.cancel()
        loop.remove_writer(fd)
    err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
    if err:
        raise OSError(err, f"connect to {address!r}: {os.strerror(err)}")
    if not _is_connected(sock):
        # Neither failed nor connected: it was the timer that woke us.
        raise ClientTimeout(f"connect to {address!r}", timeout)


def _is_connected(sock: socket.socket) -> bool:
    """True once a connect() in progress has completed successfully."""
    try:
        sock.getpeername()
    except OSError:
        return False
    return True


# --- Running scripts -------------------------------------------------------------


async def _run_stream(
    c: _Client,
    endpoint: Endpoint,
    script: Script,
    connect_timeout: float,
    gate: asyncio.Semaphore | None,
) -> None:
    sock = c.sock = socket.socket(endpoint.family, socket.SOCK_STREAM)
    c.fd = track(sock)
    sock.setblocking(False)
    if gate is None:
        await _connect_stream(sock, endpoint.address, connect_timeout)
    else:
        async with gate:
            # Time spent queueing for a slot is the harness's, not the server's.
            c.started = time.monotonic()
            await _connect_stream(sock, endpoint.address, connect_timeout)
    c.connected = time.monotonic()
    c.local = normalise_address(sock.getsockname())

    # Handing over the connected socket skips asyncio's resolve-and-connect path
    # (asyncio.open_connection's steps, with a reader that counts what arrives).
    loop = asyncio.get_running_loop()
    reader = _CountingReader(c, limit=LINE_LIMIT)
    protocol = asyncio.StreamReaderProtocol(reader)
    transport, _ = await loop.create_connection(lambda: protocol, sock=sock)
    writer = asyncio.StreamWriter(transport, protocol, reader, loop)
    # Held by the client state, not just this frame: a StreamWriter collected
    # before its transport is closed warns "unclosed" (and closes it itself).
    c.writer = writer

    for op in script:
        if isinstance(op, Send):
            writer.write(op.data)
            await writer.drain()
        elif isinstance(op, Recv):
            try:
                c.received += await reader.readexactly(op.n)
            except asyncio.IncompleteReadError as exc:
                c.received += exc.partial
                raise ScriptError(
                    f"Recv({op.n}): peer closed after {len(exc.partial)} bytes"
                ) from None
        elif isinstance(op, RecvLine):
            try:
                c.received += await reader.readuntil(b"\n")
            except asyncio.IncompleteReadError as exc:
                c.received += exc.partial
                raise ScriptError(f"RecvLine: peer closed after {len(exc.partial)} bytes") from None
        elif isinstance(op, RecvAll):
            await _read_to_eof(c, reader)
        elif isinstance(op, ExpectEOF):
            extra = await reader.read(65536)
            if extra:
                c.received += extra
                raise ScriptError(f"ExpectEOF: got {len(extra)} bytes instead of EOF")
        elif isinstance(op, ShutdownWrite):
            writer.write_eof()
        elif isinstance(op, Reset):
            enable_reset_on_close(sock)
            transport.abort()
        elif isinstance(op, Pause):
            await asyncio.sleep(op.seconds)
        elif isinstance(op, Close):
            writer.close()
            await writer.wait_closed()
        c.ops_done += 1


class _CountingReader(asyncio.StreamReader):
    """A stream reader that counts, in its client's ``heard``, every byte that arrives:
    a long reply still arriving is progress even before the script's read completes."""

    def __init__(self, client: _Client, limit: int) -> None:
        super().__init__(limit=limit)
        self._client = client

    def feed_data(self, data: Any) -> None:  # bytes (typeshed: any iterable of ints)
        """Count ``data``, then buffer it as any stream reader does."""
        self._client.heard += len(data)
        super().feed_data(data)


async def _read_to_eof(c: _Client, reader: asyncio.StreamReader) -> None:
    """Append everything up to EOF to ``c.received``."""
    total = 0
    while True:
        chunk = await reader.read(65536)
        if not chunk:
            return
        c.received += chunk
        total += len(chunk)
        if total > RECV_ALL_LIMIT:
            raise ScriptError(f"RecvAll: more than {RECV_ALL_LIMIT} bytes before EOF")


async def _run_datagram(c: _Client, endpoint: Endpoint, script: Script, bind_dir: str) -> None:
    loop = asyncio.get_running_loop()
    sock = c.sock = socket.socket(endpoint.family, socket.SOCK_DGRAM)
    c.fd = track(sock)
    sock.setblocking(False)
    if endpoint.family == socket.AF_UNIX:
        # A Unix datagram server can only answer a bound socket.
        c.bind_path = make_bind_path(bind_dir)
        sock.bind(c.bind_path)
    # connect() on a datagram socket never blocks; it filters replies to the
    # server's and turns ICMP port-unreachable into ConnectionRefusedError.
    sock.connect(endpoint.address)
    c.local = normalise_address(sock.getsockname())

    for op in script:
        if isinstance(op, Send) and not op.data:
            # An empty datagram still is one, but 3.7's sock_sendall sends nothing for b"".
            sock.send(b"")
        elif isinstance(op, Send):
            await loop.sock_sendall(sock, op.data)
        elif isinstance(op, Recv):
            c.received += await loop.sock_recv(sock, op.n)
        elif isinstance(op, RecvDatagram):
            c.received += await loop.sock_recv(sock, 65536)
        elif isinstance(op, Pause):
            await asyncio.sleep(op.seconds)
        elif isinstance(op, Close):
            sock.close()
        c.ops_done += 1


def _waiting_phase(clients: Sequence[_Client], scripts: Sequence[Script], stream: bool) -> str:
    """The client phase of the unfinished clients: ``client EOF`` when every one of
    them waits for EOF, ``client reply`` when every one waits for data, "" when
    any still connects, sends or pauses (the server is not what it waits for)."""
    phases = set()
    for c in clients:
        if c.finished:
            continue
        script = scripts[c.index]
        op = script[c.ops_done] if c.ops_done < len(script) else None
        if isinstance(op, (RecvAll, ExpectEOF)):
            phases.add(CLIENT_EOF)
        elif isinstance(op, (Recv, RecvLine, RecvDatagram)) and (c.connected or not stream):
            phases.add(CLIENT_REPLY)
        else:
            return ""
    if not phases:
        return ""
    return CLIENT_EOF if phases == {CLIENT_EOF} else CLIENT_REPLY


#: The last look of a wait the watch ended (seconds): replies or EOFs that arrived
#: in the instant it decided are read (a few turns of the event loop).
_LAST_LOOK = 0.01


async def _wait_clients(
    tasks: Sequence[asyncio.Future[None]],
    clients: Sequence[_Client],
    scripts: Sequence[Script],
    timeout: float,
    watch: ClientWatch | None,
    stream: bool,
) -> set[asyncio.Future[None]]:
    """Wait for the clients up to ``timeout``; the tasks still pending then.

    With a ``watch`` (a case's swarm) the wait goes in steps and ends early, as
    the same timeout, once every unfinished client waits for the server and the
    watch says it is stuck the way it was in earlier cases (``clientwait``).
    """
    if watch is None or not watch.active:
        _done, unfinished = await asyncio.wait(tasks, timeout=timeout)
        return unfinished
    started = time.monotonic()
    pending: set[asyncio.Future[None]] = set(tasks)
    loop = asyncio.get_running_loop()
    ended: asyncio.Future[None] = loop.create_future()

    def wake() -> None:  # from the executor's thread
        with contextlib.suppress(RuntimeError):  # the swarm ended meanwhile: loop closed
            loop.call_soon_threadsafe(_settle, ended)

    undo = watch.wake_on_end(wake)
    heard, quiet_since = _heard(clients), started
    try:
        while pending and not ended.done():
            waited = time.monotonic() - started
            if waited >= timeout:
                phase = _waiting_phase(clients, scripts, stream)
                if phase:
                    watch.expired(phase)
                break
            _done, pending = await asyncio.wait(
                pending | {ended},
                timeout=min(watch.step, timeout - waited),
                return_when=asyncio.FIRST_COMPLETED,
            )
            pending.discard(ended)
            phase = _waiting_phase(clients, scripts, stream) if pending else ""
            now = time.monotonic()
            waited = now - started
            now_heard = _heard(clients)
            if now_heard != heard:
                heard, quiet_since = now_heard, now
            what = f"{len(pending)} clients of a swarm"
            # An unbound Unix client's address ('') tells no clients apart: its socket does.
            peers = [c.local or c.sock for c in clients if not c.finished] if stream else []
            if phase and watch.ends(phase, waited, timeout, what, now - quiet_since, peers):
                # One last look: what arrived while the watch decided still counts.
                _done, pending = await asyncio.wait(pending, timeout=_LAST_LOOK)
                break
    finally:
        undo()
        _settle(ended)
    return pending


def _heard(clients: Sequence[_Client]) -> tuple[int, int]:
    """What the clients got so far (bytes arrived, steps done): a change is progress."""
    return sum(c.heard + len(c.received) for c in clients), sum(c.ops_done for c in clients)


def _settle(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _close_client(c: _Client, graceful: bool) -> None:
    """Release ``c``'s socket; ``graceful`` lets a stream flush what it still has to send."""
    if c.writer is not None:
        if graceful:
            c.writer.transport.close()
        else:
            c.writer.transport.abort()
    elif c.sock is not None:
        c.sock.close()
    if c.bind_path is not None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(c.bind_path)
        c.bind_path = None


# --- The swarm ---------------------------------------------------------------------


async def _swarm(
    endpoint: Endpoint,
    scripts: Sequence[Script],
    timeout: float,
    connect_timeout: float,
    bind_dir: str,
    max_connecting: int | None,
    watch: ClientWatch | None = None,
) -> list[ClientResult]:
    n = len(scripts)
    clients = [_Client(i) for i in range(n)]
    start = asyncio.Event()
    gate = asyncio.Semaphore(max_connecting) if max_connecting else None
    waiting = 0

    async def client(c: _Client, script: Script) -> None:
        nonlocal waiting
        # The barrier: the last client to arrive releases everyone at once.
        waiting += 1
        if waiting == n:
            start.set()
        await start.wait()
        c.started = time.monotonic()
        graceful = False
        try:
            if endpoint.socktype == socket.SOCK_STREAM:
                await _run_stream(c, endpoint, script, connect_timeout, gate)
            elif gate is None:
                await _run_datagram(c, endpoint, script, bind_dir)
            else:
                # UDP has no flow control: bound the datagrams in flight so that
                # drops in the server's receive buffer are not blamed on it.
                async with gate:
                    c.started = time.monotonic()
                    await _run_datagram(c, endpoint, script, bind_dir)
            c.ok = graceful = True
        except asyncio.CancelledError:
            # The deadline passed; the runner records the timeout.
            raise
        except Exception as exc:
            c.fail(exc)
        finally:
            c.finished = time.monotonic()
            _close_client(c, graceful)

    tasks = [asyncio.ensure_future(client(c, scripts[c.index])) for c in clients]
    await start.wait()
    stream = endpoint.socktype == socket.SOCK_STREAM
    pending = await _wait_clients(tasks, clients, scripts, timeout, watch, stream)
    for task in pending:
        task.cancel()
    if pending:
        # Cancellation is prompt (every await is cancellable); the bound is only
        # a guarantee, the socket sweep below closes whatever remains.
        await asyncio.wait(pending, timeout=1.0)
    now = time.monotonic()
    for c in clients:
        if not c.ok and c.error is None:
            c.error, c.error_type = "timeout", "TimeoutError"
            c.finished = c.finished or now
    # A graceful close still flushing to a peer that does not read would keep
    # its socket open after the loop is gone: abort those, let connection_lost
    # run, then close the raw sockets as a last resort against leaks.
    for c in clients:
        if c.writer is not None and c.writer.transport.get_write_buffer_size():
            c.writer.transport.abort()
    for _ in range(2):
        await asyncio.sleep(0)
    for c in clients:
        if c.sock is not None:
            c.sock.close()
    forget(c.fd for c in clients)
    return [c.result() for c in clients]


def _validate(endpoint: Endpoint, scripts: Sequence[Script]) -> None:
    """Reject ops the transport cannot do, before any socket is opened."""
    stream = endpoint.socktype == socket.SOCK_STREAM
    allowed = _STREAM_OPS if stream else _DATAGRAM_OPS
    kind = "stream" if stream else "datagram"
    for i, script in enumerate(scripts):
        for op in script:
            if not isinstance(op, allowed):
                raise ValueError(f"script {i}: {op!r} is not valid on a {kind} transport")


def run_swarm(
    endpoint: Endpoint,
    scripts: Sequence[Script],
    *,
    timeout: float,
    connect_timeout: float | None = None,
    bind_dir: str | None = None,
    max_connecting: int | None = DEFAULT_MAX_CONNECTING,
    watch: ClientWatch | None = None,
) -> list[ClientResult]:
    """Run one client per script against ``endpoint``, all released together.

    Every client is created and waits at a barrier; when the last arrives all
    start. ``timeout`` is the deadline for the whole swarm from that moment:
    clients still running then get ``error="timeout"`` and are aborted.
    ``connect_timeout`` (default ``timeout``) bounds each stream connect.
    ``bind_dir`` holds the bind paths of Unix datagram clients (a temporary
    directory if None); the paths are removed afterwards. ``max_connecting``
    caps connect() calls in flight (see ``DEFAULT_MAX_CONNECTING``).
    ``watch`` (a case's ``ClientWatch``) may end the wait early when the server is
    stuck the way it was in earlier cases; the clients still waiting get ``timeout``.

    Timings are ``time.monotonic()`` values. A client's ``started`` is when it
    began its own work -- for a stream client, when it got its connect() slot,
    so ``connect_time`` is the connect itself, not the wait for a slot.
    ``connected`` stays None for datagram clients.

    Returns one ``ClientResult`` per script, in script order. Raises ValueError
    for an op the transport does not support, before opening any socket.
    """
    _validate(endpoint, scripts)
    if not scripts:
        return []
    in_use = count_open_fds() or 0
    # N client sockets plus as many again for a server living in this process.
    raise_open_files_limit(in_use + 2 * len(scripts) + _FD_HEADROOM)

    owned_dir: str | None = None
    if bind_dir is None and endpoint.family == socket.AF_UNIX:
        bind_dir = owned_dir = tempfile.mkdtemp(prefix="sockspec-swarm-")
    try:
        return run_private(
            lambda: _swarm(
                endpoint,
                scripts,
                timeout,
                timeout if connect_timeout is None else connect_timeout,
                bind_dir or "",
                max_connecting,
                watch,
            )
        )
    finally:
        if owned_dir is not None:
            shutil.rmtree(owned_dir, ignore_errors=True)


# --- Summary -----------------------------------------------------------------------


@dataclass(frozen=True)
class SwarmStats:
    """Counts and timing percentiles (seconds) over one swarm's results.

    ``connect_*`` cover stream clients that connected; ``wall`` runs from the
    first client's start to the last one's finish.
    """

    clients: int
    ok: int
    errors: int
    error_types: tuple[tuple[str, int], ...]
    connect_p50: float | None
    connect_p99: float | None
    connect_max: float | None
    duration_p50: float | None
    duration_p99: float | None
    duration_max: float | None
    wall: float

    def to_json(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return {
            "clients": self.clients,
            "ok": self.ok,
            "errors": self.errors,
            "error_types": dict(self.error_types),
            "connect_p50": self.connect_p50,
            "connect_p99": self.connect_p99,
            "connect_max": self.connect_max,
            "duration_p50": self.duration_p50,
            "duration_p99": self.duration_p99,
            "duration_max": self.duration_max,
            "wall": self.wall,
        }


def percentile(values: Sequence[float], p: float) -> float | None:
    """Nearest-rank percentile: an observed value, never an interpolation."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(math.ceil(p / 100 * len(ordered)), 1)
    return ordered[rank - 1]


def swarm_stats(results: Sequence[ClientResult]) -> SwarmStats:
    """Summarise a swarm: ok/error counts, error types, connect and duration percentiles."""
    connects = [r.connect_time for r in results if r.connect_time is not None]
    durations = [r.duration for r in results]
    errors = Counter(r.error_type or "error" for r in results if not r.ok)
    wall = max((r.finished for r in results), default=0.0) - min(
        (r.started for r in results), default=0.0
    )
    return SwarmStats(
        clients=len(results),
        ok=sum(r.ok for r in results),
        errors=len(results) - sum(r.ok for r in results),
        error_types=tuple(sorted(errors.items())),
        connect_p50=percentile(connects, 50),
        connect_p99=percentile(connects, 99),
        connect_max=percentile(connects, 100),
        duration_p50=percentile(durations, 50),
        duration_p99=percentile(durations, 99),
        duration_max=percentile(durations, 100),
        wall=wall,
    )
