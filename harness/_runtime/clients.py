"""Blocking client drivers in which every operation has a timeout.

A harness that tests servers must survive servers that hang, so no call in this
module can block forever: each method takes an optional per-call ``timeout``
(defaulting to the one the client was built with) and raises ``ClientTimeout``,
which names the operation and the limit, when it expires. Multi-step reads
(``recv_exact``, ``recv_line``, ``recv_until_eof``) apply the timeout to the whole
operation, not to each underlying ``recv``, so a server trickling one byte at a
time cannot stretch them out either.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import socket
import struct
import tempfile
import time
from types import TracebackType
from typing import TYPE_CHECKING, Any

from harness._model.compat import SOCKET_TIMEOUT
from harness._model.phases import CLIENT_EOF, CLIENT_REPLY
from harness._model.records import Endpoint
from harness._runtime.forksafe import forget, track

if TYPE_CHECKING:
    from harness._runtime.clientwait import ClientWatch

__all__ = [
    "ClientTimeout",
    "DatagramClient",
    "ResponseTooLarge",
    "StreamClient",
    "UnexpectedEOF",
    "enable_reset_on_close",
    "make_bind_path",
    "normalise_address",
]

#: ``recv_until_eof`` and ``recv_line`` stop with ``ResponseTooLarge`` beyond this,
#: so a server that streams forever cannot exhaust the harness's memory.
DEFAULT_READ_LIMIT = 16 * 1024 * 1024

# struct linger { int l_onoff; int l_linger; } -- on with a zero linger time makes
# close() discard unsent data and send RST instead of FIN (TCP only; harmless elsewhere).
_LINGER_RESET = struct.pack("ii", 1, 0)

#: Back-off (first and longest wait, seconds) between connect() attempts to a Unix
#: listener whose backlog is full. Unix-domain connect() with a timeout set
#: fails at once with EAGAIN there instead of waiting, and no readiness event
#: announces room, so the only way to wait is to retry.
UNIX_RETRY_FIRST = 0.0005
UNIX_RETRY_MAX = 0.02

# Unique suffixes for Unix datagram bind paths within one process.
_bind_counter = itertools.count()


class ClientTimeout(TimeoutError):
    """A client operation did not complete within its timeout."""

    def __init__(self, op: str, timeout: float) -> None:
        super().__init__(f"{op} timed out after {timeout:g} s")
        self.op = op
        self.timeout = timeout

    def __reduce__(self) -> tuple[Any, ...]:
        # Rebuild from the constructor's arguments, not the message, so the
        # exception survives pickling (e.g. across pytest-xdist workers).
        return (type(self), (self.op, self.timeout))


class UnexpectedEOF(EOFError):
    """The peer closed the connection before an operation got all it needed."""

    def __init__(self, op: str, partial: bytes, expected: str) -> None:
        super().__init__(f"{op}: peer closed after {len(partial)} bytes, expected {expected}")
        self.op = op
        self.partial = partial
        self.expected = expected

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.op, self.partial, self.expected))


class ResponseTooLarge(Exception):
    """A read exceeded its size limit before reaching its terminator (EOF or newline)."""

    def __init__(self, op: str, limit: int) -> None:
        super().__init__(f"{op}: more than {limit} bytes")
        self.op = op
        self.limit = limit

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.op, self.limit))


def normalise_address(address: Any) -> Any:
    """Reduce an IPv6 4-tuple to ``(host, port)`` as ``Endpoint`` documents; others unchanged."""
    if isinstance(address, tuple) and len(address) == 4:
        return (address[0], address[1])
    return address


def enable_reset_on_close(sock: Any) -> None:
    """Arrange for closing ``sock`` to send RST (SO_LINGER on, zero seconds).

    Accepts a ``socket.socket`` or asyncio's ``TransportSocket``. Unix-domain
    sockets accept the option but have no RST: their peer sees ECONNRESET only if
    unread data was pending at close, otherwise a plain EOF.
    """
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RESET)


#: The last look of a wait the watch ended (seconds): a reply or EOF that arrived in
#: the instant it decided is not lost.
_LAST_LOOK = 0.001


def _stop_reads(sock: socket.socket) -> None:
    """Wake a read of ``sock`` blocked in another thread: it returns at once with
    nothing, and so does every later one.  ``SHUT_RD`` puts nothing on the wire (the
    close that follows sends the FIN), and on an unconnected datagram socket it
    still wakes the reader although it reports ``ENOTCONN``."""
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RD)


def _nothing(result: Any) -> bool:
    """Whether a read's ``result`` (bytes, or ``(bytes, address)``) holds no data."""
    data = result[0] if isinstance(result, tuple) else result
    return isinstance(data, (bytes, bytearray)) and not data


class _Deadline:
    """The time left for one operation, and the ``ClientTimeout`` to raise when it is gone."""

    __slots__ = ("end", "op", "timeout")

    def __init__(self, op: str, timeout: float) -> None:
        self.op = op
        self.timeout = timeout
        self.end = time.monotonic() + timeout

    def remaining(self) -> float:
        """Seconds left; raises ``ClientTimeout`` once none are."""
        left = self.end - time.monotonic()
        if left <= 0:
            raise self.expired()
        return left

    def expired(self) -> ClientTimeout:
        """The exception describing this deadline passing."""
        return ClientTimeout(self.op, self.timeout)

    def wait(
        self,
        sock: socket.socket,
        call: Any,
        watch: ClientWatch | None,
        phase: str,
        peer: Any = None,
    ) -> Any:
        """``call()`` on ``sock`` within what is left; ``ClientTimeout`` when it passes.

        With a ``watch`` (a case's clients) the wait goes in steps, and ends as the
        same ``ClientTimeout`` once the watch says the server is stuck the way it
        was in earlier cases (``clientwait``); a full wait is reported to it.
        ``peer``: this client's local address (a stream client's; its socket for an
        unbound Unix client), by which the watch finds its request.
        """
        called = time.monotonic()  # this call has received nothing since
        while True:
            try:
                left = self.remaining()
            except ClientTimeout:
                if watch is not None:
                    watch.expired(phase)
                raise
            step = left if watch is None or not watch.active else min(left, watch.step)
            try:
                return self._read(sock, step, call, watch)
            except SOCKET_TIMEOUT:
                if watch is None or not watch.active:
                    raise self.expired() from None
                now = time.monotonic()
                waited = self.timeout - (self.end - now)
                peers = () if peer is None else (peer,)
                if watch.ends(phase, waited, self.timeout, self.op, now - called, peers):
                    # One last look: what arrived while the watch decided still counts.
                    try:
                        return self._read(sock, _LAST_LOOK, call, watch)
                    except SOCKET_TIMEOUT:
                        raise self.expired() from None

    def _read(
        self, sock: socket.socket, timeout: float, call: Any, watch: ClientWatch | None
    ) -> Any:
        """``call()`` on ``sock`` within ``timeout``; ``ClientTimeout`` when the case's
        end woke it (``stop_reads``: nothing read, or the socket closed under it) rather
        than the server giving it an EOF: the wait ends as the watch ends every wait of
        an ended case."""
        try:
            sock.settimeout(timeout)
            result = call()
        except SOCKET_TIMEOUT:
            raise
        except OSError:
            if watch is not None and watch.ended.is_set():
                raise self.expired() from None
            raise
        if watch is not None and watch.ended.is_set() and _nothing(result):
            raise self.expired()
        return result


class StreamClient:
    """A connected SOCK_STREAM client (TCP, TCP over IPv6 or Unix stream).

    Data read past what a method returns (for example after the newline in
    ``recv_line``) is kept and served first by the next read.
    """

    def __init__(self, sock: socket.socket, timeout: float) -> None:
        """Wrap an already connected socket; prefer ``StreamClient.connect``."""
        self._sock = sock
        self.timeout = timeout
        #: The case's client watch (``Context.connect`` sets it), or None.
        self.watch: ClientWatch | None = None
        self._buf = bytearray()
        self._closed = False
        # Cached because getsockname() fails once the socket is closed or reset.
        self._local = normalise_address(sock.getsockname())

    @classmethod
    def connect(cls, endpoint: Endpoint, timeout: float) -> StreamClient:
        """Connect to ``endpoint`` within ``timeout`` seconds; that timeout becomes the default."""
        if endpoint.socktype != socket.SOCK_STREAM:
            raise ValueError(f"StreamClient needs a stream endpoint, got {endpoint.transport}")
        sock = socket.socket(endpoint.family, socket.SOCK_STREAM)
        track(sock)
        deadline = _Deadline(f"connect to {endpoint.address!r}", timeout)
        delay = UNIX_RETRY_FIRST
        try:
            while True:
                sock.settimeout(deadline.remaining())
                try:
                    sock.connect(endpoint.address)
                    return cls(sock, timeout)
                except SOCKET_TIMEOUT:
                    raise deadline.expired() from None
                except BlockingIOError:
                    # EAGAIN from a Unix listener with a full backlog (see UNIX_RETRY_FIRST).
                    time.sleep(min(delay, deadline.remaining()))
                    delay = min(delay * 2, UNIX_RETRY_MAX)
        except BaseException:
            sock.close()
            raise

    @property
    def local_address(self) -> Any:
        """This end's address: ``(host, port)`` for inet, a path (often ``''``) for Unix."""
        return self._local

    @property
    def closed(self) -> bool:
        """True once ``close`` or ``reset`` was called."""
        return self._closed

    def fileno(self) -> int:
        """The socket's descriptor (-1 once closed)."""
        return self._sock.fileno()

    def _timeout(self, timeout: float | None) -> float:
        return self.timeout if timeout is None else timeout

    def _recv_some(self, n: int, deadline: _Deadline, phase: str = CLIENT_REPLY) -> bytes:
        """One ``recv`` bounded by what is left of ``deadline``."""
        # An unbound Unix client's address ('') tells no clients apart: its socket does.
        peer = self._local if self._local else self._sock
        result: bytes = deadline.wait(
            self._sock, lambda: self._sock.recv(n), self.watch, phase, peer
        )
        return result

    def _take(self, n: int) -> bytes:
        data = bytes(self._buf[:n])
        del self._buf[:n]
        return data

    def send(self, data: bytes, timeout: float | None = None) -> None:
        """Send all of ``data``; the timeout bounds the whole transfer (sendall semantics)."""
        limit = self._timeout(timeout)
        self._sock.settimeout(limit)
        try:
            self._sock.sendall(data)
        except SOCKET_TIMEOUT:
            raise ClientTimeout(f"send({len(data)} bytes)", limit) from None

    def recv(self, n: int = 65536, timeout: float | None = None) -> bytes:
        """Return up to ``n`` bytes as soon as any arrive; ``b''`` means the peer closed."""
        if self._buf:
            return self._take(n)
        return self._recv_some(n, _Deadline(f"recv({n})", self._timeout(timeout)))

    def recv_exact(self, n: int, timeout: float | None = None) -> bytes:
        """Return exactly ``n`` bytes; ``UnexpectedEOF`` if the peer closes first."""
        deadline = _Deadline(f"recv_exact({n})", self._timeout(timeout))
        while len(self._buf) < n:
            chunk = self._recv_some(max(n - len(self._buf), 4096), deadline)
            if not chunk:
                raise UnexpectedEOF(deadline.op, self._take(len(self._buf)), f"{n} bytes")
            self._buf += chunk
        return self._take(n)

    def recv_line(self, timeout: float | None = None, limit: int = DEFAULT_READ_LIMIT) -> bytes:
        """Return bytes up to and including the next ``b'\\n'``.

        Like ``file.readline``, a result without the newline means the peer closed
        first (``b''`` if nothing at all was left).
        """
        deadline = _Deadline("recv_line()", self._timeout(timeout))
        scanned = 0  # bytes of _buf already known to hold no newline
        while True:
            end = self._buf.find(b"\n", scanned)
            if end >= 0:
                return self._take(end + 1)
            scanned = len(self._buf)
            if scanned > limit:
                raise ResponseTooLarge(deadline.op, limit)
            chunk = self._recv_some(65536, deadline)
            if not chunk:
                return self._take(len(self._buf))
            self._buf += chunk

    def recv_until_eof(
        self, limit: int = DEFAULT_READ_LIMIT, timeout: float | None = None
    ) -> bytes:
        """Read until the peer closes its side; ``ResponseTooLarge`` beyond ``limit`` bytes."""
        deadline = _Deadline("recv_until_eof()", self._timeout(timeout))
        while True:
            if len(self._buf) > limit:
                raise ResponseTooLarge(deadline.op, limit)
            chunk = self._recv_some(65536, deadline, CLIENT_EOF)
            if not chunk:
                return self._take(len(self._buf))
            self._buf += chunk

    def is_eof(self, timeout: float | None = None) -> bool:
        """True if the peer has closed (EOF or reset) within ``timeout``; never consumes data.

        False when data is waiting or nothing happened before the timeout: this is a
        probe, so it reports rather than raising ``ClientTimeout``.
        """
        if self._buf:
            return False
        deadline = _Deadline("is_eof()", self._timeout(timeout))
        peer = self._local if self._local else self._sock
        try:
            # MSG_PEEK leaves any data in the kernel buffer for the next real read.
            # Watched like any wait for an EOF: one the server owes ends it early, as
            # its timeout would have (``clientwait``).
            peeked: bytes = deadline.wait(
                self._sock,
                lambda: self._sock.recv(1, socket.MSG_PEEK),
                self.watch,
                CLIENT_EOF,
                peer,
            )
        except ClientTimeout:
            return False
        except ConnectionResetError:
            return True
        return peeked == b""

    def shutdown_write(self) -> None:
        """Send FIN (half-close): the peer sees EOF but can still send to us."""
        self._sock.shutdown(socket.SHUT_WR)

    def reset(self) -> None:
        """Abort the connection so the kernel sends RST instead of FIN (TCP).

        On Unix stream sockets there is no RST: the peer gets ECONNRESET only if
        it had unread data from us, otherwise a plain EOF.
        """
        if not self._closed:
            enable_reset_on_close(self._sock)
            self.close()

    def stop_reads(self) -> None:
        """Wake this client's read blocked in another thread (``_stop_reads``)."""
        _stop_reads(self._sock)

    def close(self) -> None:
        """Close the socket (idempotent)."""
        self._closed = True
        forget([self._sock.fileno()])
        self._sock.close()

    def __enter__(self) -> StreamClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def make_bind_path(bind_dir: str) -> str:
    """A path unique within this host for a client's Unix datagram socket."""
    # pid + counter is unique across processes sharing bind_dir; kept short because
    # sun_path holds only ~104-108 bytes.
    path = os.path.join(bind_dir, f"c{os.getpid()}-{next(_bind_counter)}.sock")
    if len(os.fsencode(path)) >= 104:
        raise ValueError(f"Unix socket path too long ({len(path)} bytes): {path}")
    return path


class DatagramClient:
    """A connected SOCK_DGRAM client (UDP, UDP over IPv6 or Unix datagram).

    The socket is ``connect()``-ed to the endpoint, so it only receives replies
    from the server and an unreachable UDP port surfaces as ConnectionRefusedError.
    """

    def __init__(
        self,
        sock: socket.socket,
        timeout: float,
        bind_path: str | None = None,
        owned_dir: str | None = None,
    ) -> None:
        """Wrap an already connected socket; prefer ``DatagramClient.open``."""
        self._sock = sock
        self.timeout = timeout
        self._bind_path = bind_path
        self._owned_dir = owned_dir
        self._closed = False
        self._local = normalise_address(sock.getsockname())
        #: The case's client watch (``Context.datagram`` sets it), or None.
        self.watch: ClientWatch | None = None

    @classmethod
    def open(
        cls, endpoint: Endpoint, timeout: float, bind_dir: str | None = None
    ) -> DatagramClient:
        """Open a client for ``endpoint``; the timeout is the default for each call.

        A Unix datagram server can only reply to a bound socket, so for
        ``unix_dgram`` the client binds to a unique path inside ``bind_dir`` (a
        private temporary directory if None) and removes it on ``close``.
        """
        if endpoint.socktype != socket.SOCK_DGRAM:
            raise ValueError(f"DatagramClient needs a datagram endpoint, got {endpoint.transport}")
        sock = socket.socket(endpoint.family, socket.SOCK_DGRAM)
        track(sock)
        bind_path: str | None = None
        owned_dir: str | None = None
        try:
            if endpoint.family == socket.AF_UNIX:
                if bind_dir is None:
                    bind_dir = owned_dir = tempfile.mkdtemp(prefix="sockspec-")
                bind_path = make_bind_path(bind_dir)
                sock.bind(bind_path)
            sock.settimeout(timeout)
            sock.connect(endpoint.address)
            return cls(sock, timeout, bind_path, owned_dir)
        except BaseException:
            sock.close()
            _remove_bind_files(bind_path, owned_dir)
            raise

    @property
    def local_address(self) -> Any:
        """This end's address: ``(host, port)`` for inet, the bound path for Unix."""
        return self._local

    @property
    def bind_path(self) -> str | None:
        """The filesystem path this Unix datagram client is bound to (None for UDP)."""
        return self._bind_path

    def _timeout(self, timeout: float | None) -> float:
        return self.timeout if timeout is None else timeout

    def send(self, data: bytes, timeout: float | None = None) -> None:
        """Send ``data`` as one datagram."""
        limit = self._timeout(timeout)
        self._sock.settimeout(limit)
        try:
            self._sock.send(data)
        except SOCKET_TIMEOUT:
            raise ClientTimeout(f"send({len(data)} bytes)", limit) from None

    def recv(self, bufsize: int = 65536, timeout: float | None = None) -> bytes:
        """Receive one datagram (truncated to ``bufsize`` bytes, as the kernel does)."""
        deadline = _Deadline(f"recv({bufsize})", self._timeout(timeout))
        return self._wait_reply(deadline, bufsize)

    def _wait_reply(self, deadline: _Deadline, bufsize: int) -> bytes:
        result: bytes = deadline.wait(
            self._sock, lambda: self._sock.recv(bufsize), self.watch, CLIENT_REPLY
        )
        return result

    def exchange(self, data: bytes, timeout: float | None = None) -> bytes:
        """Send one datagram and return the next datagram received."""
        deadline = _Deadline(f"exchange({len(data)} bytes)", self._timeout(timeout))
        self.send(data, timeout=deadline.remaining())
        return self._wait_reply(deadline, 65536)

    def stop_reads(self) -> None:
        """Wake this client's read blocked in another thread (``_stop_reads``)."""
        _stop_reads(self._sock)

    def close(self) -> None:
        """Close the socket and remove its bind path (idempotent)."""
        if self._closed:
            return
        self._closed = True
        forget([self._sock.fileno()])
        self._sock.close()
        _remove_bind_files(self._bind_path, self._owned_dir)

    def __enter__(self) -> DatagramClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _remove_bind_files(bind_path: str | None, owned_dir: str | None) -> None:
    """Remove a Unix datagram bind path and the private directory holding it, if any."""
    if bind_path is not None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(bind_path)
    if owned_dir is not None:
        with contextlib.suppress(OSError):
            os.rmdir(owned_dir)
