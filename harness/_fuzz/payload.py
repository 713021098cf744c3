"""Payload fuzzing: one server per example, one generated input per step.

Stream inputs are random binary payloads or lines of random lengths, sent in
random chunks, from empty up to several MiB (sizes are drawn from buckets so
that most inputs are small and a few are huge); the client sends from a
thread of its own while it reads, so a reply larger than the socket buffers
cannot deadlock the exchange.  Datagram inputs run from 0 bytes to the
transport's limit (``DATAGRAM_LIMITS``) against a server whose
``max_packet_size`` is drawn too.  Every reply must be exactly the handler's
reply: the echo, or the datagram truncated to ``max_packet_size``.

``FuzzPlan.inputs`` turns the same machines into the 100,000-input soak of
``python -m harness bench soak``.
"""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass, replace
from typing import Any

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from harness._checks.timing import slack
from harness._fuzz.engine import FuzzRun
from harness._fuzz.model import DATAGRAM_LIMITS, Blob, HandlerModel, chunked, peek
from harness._model.records import Endpoint
from harness._runtime.clients import DEFAULT_READ_LIMIT, DatagramClient, StreamClient
from harness._runtime.clientwait import ClientWatch
from harness._runtime.eventlog import HARNESS_THREAD_PREFIX
from harness._runtime.serverhandle import ServerHandle

#: Stream size buckets: (smallest, largest, how many of 100 inputs fall in it).
STREAM_BUCKETS: tuple[tuple[int, int, int], ...] = (
    (0, 1024, 80),
    (1025, 1 << 16, 18),
    (1 << 16, 4 << 20, 2),
)


#: Payloads of lines shorter than SHORT_LINE stop at SHORT_LINES_CAP bytes.
SHORT_LINE = 4096
SHORT_LINES_CAP = 256 << 10


def bucket_size(roll: int, permille: int) -> int:
    """The size at ``permille`` of the way through the bucket ``roll`` (0-99) falls in."""
    for low, high, share in STREAM_BUCKETS:
        if roll < share:
            return low + (high - low) * permille // 1000
        roll -= share
    low, high, _ = STREAM_BUCKETS[-1]
    return high


@dataclass(frozen=True)
class PayloadConfig:
    """A payload-fuzzed server, drawn once per example."""

    handler: str  # echo | lines
    wbufsize: int = 0  # StreamRequestHandler.wbufsize (lines)
    max_packet: int = 8192  # datagram servers' max_packet_size

    def __str__(self) -> str:
        return (
            f"handler={self.handler}, wbufsize={self.wbufsize}, max_packet_size={self.max_packet}"
        )


def stream_exchange(
    endpoint: Endpoint, chunks: list[bytes], timeout: float, watch: ClientWatch | None = None
) -> bytes:
    """Send ``chunks`` (then FIN) from a helper thread while reading the reply to EOF.

    The reply is read by a ``StreamClient`` under the case's ``watch``, so a server
    that never ends the connection costs its known symptom, not every example's
    full timeout.  The sender writes through a duplicate of the socket: its own
    timeout object, never changed by the reader's stepped waits.
    """
    errors: list[BaseException] = []
    with StreamClient.connect(endpoint, timeout) as reader:
        reader.watch = watch
        with socket.fromfd(reader.fileno(), endpoint.family, socket.SOCK_STREAM) as writer:
            writer.settimeout(timeout)

            def send() -> None:
                try:
                    for chunk in chunks:
                        writer.sendall(chunk)
                    writer.shutdown(socket.SHUT_WR)
                except OSError as exc:
                    errors.append(exc)

            sender = threading.Thread(target=send, name=f"{HARNESS_THREAD_PREFIX}fuzz-send")
            sender.start()
            try:
                received = reader.recv_until_eof(limit=DEFAULT_READ_LIMIT + sum(map(len, chunks)))
            finally:
                sender.join(timeout)
    if errors:
        raise errors[0]
    return received


class _PayloadMachine(RuleBasedStateMachine):
    """One server per example; each step is one input."""

    def __init__(self, run: FuzzRun) -> None:
        super().__init__()
        self.ex = run.example()
        self.ctx = self.ex.ctx
        self.srv: ServerHandle | None = None
        self.limit = DATAGRAM_LIMITS.get(self.ctx.case.transport, 0)
        self._client: DatagramClient | None = None

    @property
    def server(self) -> ServerHandle:
        """The example's server."""
        if self.srv is None:
            raise RuntimeError("payload fuzz: no server yet")
        return self.srv

    def start_server(self, config: PayloadConfig, **attrs: Any) -> None:
        """Serve the configured handler (serve_forever in a harness thread)."""
        stream = self.ctx.transport.is_stream
        with self.ex.step(f"start({self.ctx.server_class().__name__}: {config})"):
            spec = HandlerModel(config.handler, timeout=30.0).spec(stream)
            if stream and config.wbufsize:
                spec = replace(spec, attrs={**spec.attrs, "wbufsize": config.wbufsize})
            self.srv = self.ctx.server(spec, poll_interval=0.002, **attrs)

    def judge(self, name: str, want: bytes, got: bytes | None) -> None:
        """The reply must be exactly ``want``."""
        self.ctx.expect(
            got == want,
            "replies.payload",
            f"{name}: the reply is not the handler's reply",
            expected=peek(want),
            observed=peek(got) + _first_difference(want, got),
        )

    @invariant()
    def holds(self) -> None:
        """Hook orders so far follow the lifecycle; the serving loop is alive."""
        self.ex.invariants()

    def teardown(self) -> None:
        """Close everything and run the end-of-example checks."""
        self.ex.finish()


def _first_difference(want: bytes, got: bytes | None) -> str:
    if got is None or got == want:
        return ""
    at = next((i for i, (a, b) in enumerate(zip(want, got)) if a != b), None)
    return f" (first difference at byte {at if at is not None else min(len(want), len(got))})"


class StreamPayloadMachine(_PayloadMachine):
    """Random binary payloads and lines, in random chunks, against an echo server."""

    @initialize(
        config=st.builds(
            PayloadConfig,
            handler=st.sampled_from(("echo", "lines")),
            wbufsize=st.sampled_from((0, 1, 8192)),
        )
    )
    def start(self, config: PayloadConfig) -> None:
        """Start the server."""
        self.start_server(config, request_queue_size=16)

    @rule(
        roll=st.integers(0, 99),
        permille=st.integers(0, 1000),
        seed=st.integers(0, 255),
        line=st.one_of(st.just(0), st.integers(1, 200), st.integers(1, 1 << 17)),
        cuts=st.lists(st.integers(0, 4 << 20), max_size=8),
    )
    def exchange(self, roll: int, permille: int, seed: int, line: int, cuts: list[int]) -> None:
        """One client sends one payload in chunks, half-closes and reads the echo."""
        size = bucket_size(roll, permille)
        if 0 < line < SHORT_LINE:  # one write per line: keep line-by-line runs short
            size = min(size, SHORT_LINES_CAP)
        blob = Blob(size, seed, line)
        data = blob.data()
        chunks = chunked(data, cuts)
        self.ex.inputs += 1
        with self.ex.step(f"send {blob} in {len(chunks)} chunk(s), read to EOF") as notes:
            timeout = self.ctx.timeout(5.0 + len(data) / 5e6 + slack(self.ctx))
            got = stream_exchange(self.server.endpoint, chunks, timeout, self.ctx.watch)
            notes.append(f"got {len(got):,} bytes")
            self.judge(f"input {self.ex.inputs}", data, got)


class DatagramPayloadMachine(_PayloadMachine):
    """Datagrams from empty to the transport's limit, against random max_packet_size."""

    @initialize(
        mps=st.one_of(st.sampled_from((1, 8192, 65507, 65536)), st.integers(1, 1 << 17)),
    )
    def start(self, mps: int) -> None:
        """Start the server and open the client."""
        config = PayloadConfig("echo", max_packet=mps)
        self.start_server(config, max_packet_size=mps)

    @property
    def client(self) -> DatagramClient:
        """The example's datagram client (one for every input: replies come in order)."""
        if self._client is None:
            self._client = self.ctx.datagram(self.server)
        return self._client

    @rule(
        size=st.one_of(st.integers(0, 1500), st.integers(0, 1 << 17), st.sampled_from((0, 1))),
        seed=st.integers(0, 255),
    )
    def exchange(self, size: int, seed: int) -> None:
        """Send one datagram and read the reply."""
        blob = Blob(min(size, self.limit), seed)
        data = blob.data()
        self.ex.inputs += 1
        with self.ex.step(f"send {blob}") as notes:
            self.client.send(data)
            try:
                got: bytes | None = self.client.recv(
                    self.limit + 1024, timeout=self.ctx.timeout(2.0 + slack(self.ctx))
                )
            except TimeoutError:
                got = None
            notes.append(f"got {peek(got)}")
            mps = int(self.server.server.max_packet_size)
            self.judge(f"input {self.ex.inputs}", data[:mps], got)
