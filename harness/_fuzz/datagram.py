"""The datagram half of the stateful fuzzer: datagrams of random sizes, one client each.

A datagram sent while the server serves is answered at once; one sent
otherwise waits in the server socket's queue (``pending``, first in first
out) until ``handle_request()`` or ``serve_forever()`` takes it, and is lost
when the server closes.  Each datagram has a client of its own, so a reply
is never mistaken for another's: it must be the handler model's reply to
exactly that datagram, truncated to the server's ``max_packet_size``.
Raising handlers owe no reply; their requests are followed to the end
through the event log instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st
from hypothesis.stateful import initialize, precondition, rule

from harness._fuzz.engine import FuzzRun
from harness._fuzz.example import wait_until
from harness._fuzz.model import DATAGRAM_LIMITS, Blob, peek
from harness._fuzz.server import ServerMachine, server_configs
from harness._fuzz.stream import await_all, conn_of, done
from harness._runtime.clients import DatagramClient
from harness._runtime.swarm import RecvDatagram, Script, Send

MAX_PENDING = 4

datagrams = st.builds(
    Blob,
    size=st.one_of(st.integers(0, 512), st.integers(0, 9000)),
    seed=st.integers(0, 255),
    line=st.integers(0, 80),
)


@dataclass(eq=False)
class Datagram:
    """One datagram of the model and the client that sent it."""

    name: str
    client: DatagramClient
    data: bytes


class DatagramMachine(ServerMachine):
    """Stateful fuzzing of a datagram server."""

    def __init__(self, run: FuzzRun) -> None:
        super().__init__(run)
        self.pending: list[Datagram] = []
        self.made = 0

    # -- model -------------------------------------------------------------------
    def pending_count(self) -> int:
        return len(self.pending)

    def on_serve(self, notes: list[str]) -> None:
        for datagram in self.pending:
            self._collect(datagram, notes)
        self.pending.clear()

    def on_close(self) -> None:
        for datagram in self.pending:
            datagram.client.close()
        self.pending.clear()

    def _reply(self, data: bytes) -> bytes | None:
        return self.config.handler.reply(data, False, int(self.server.server.max_packet_size))

    def _wait(self) -> float:
        return self.config.handler.delay * (MAX_PENDING + 1) + self.slack()

    def _collect(self, datagram: Datagram, notes: list[str]) -> None:
        """Judge what the server did with ``datagram``: its reply, or its request's end."""
        want = self._reply(datagram.data)
        if want is None:
            local = datagram.client.local_address
            ended = wait_until(self.ctx, lambda ev: done(ev, conn_of(ev, local)), self._wait())
            notes.append(f"{datagram.name} handled" if ended else f"{datagram.name} not handled")
            self.ctx.expect(
                ended,
                "serving.datagram_handled",
                f"{datagram.name}: the request never reached shutdown_request()",
                expected=f"handled within {self._wait():.2f}s",
                observed="not handled",
            )
        else:
            try:
                got = datagram.client.recv(1 << 18, timeout=self.ctx.timeout(self._wait()))
            except TimeoutError:
                got = None
            notes.append(f"{datagram.name} got {peek(got)}")
            self.ctx.expect(
                got == want,
                "replies.datagram",
                f"{datagram.name}: the reply is not the handler's reply to its datagram",
                expected=peek(want),
                observed=peek(got),
            )
        datagram.client.close()

    # -- rules ---------------------------------------------------------------------
    @initialize(config=server_configs(stream=False))
    def start(self, config: Any) -> None:
        """Create the server (not serving yet)."""
        self.begin(config)

    @rule(blob=datagrams)
    @precondition(lambda self: self.is_open() and len(self.pending) < MAX_PENDING)
    def send(self, blob: Blob) -> None:
        """A new client sends one datagram."""
        self.made += 1
        name = f"d{self.made}"
        data = blob.data()[: DATAGRAM_LIMITS[self.ctx.case.transport]]
        with self.ex.step(f"{name} = send({blob})") as notes:
            datagram = Datagram(name, self.ctx.datagram(self.server), data)
            datagram.client.send(data)
            if self.serving:
                self._collect(datagram, notes)
            else:
                self.pending.append(datagram)
                notes.append("queued")

    @rule()
    @precondition(lambda self: self.is_open() and not self.serving and bool(self.pending))
    def handle_request(self) -> None:
        """handle_request() takes the oldest queued datagram."""
        datagram = self.pending[0]
        with self.ex.step(f"handle_request() for {datagram.name}") as notes:
            self.pending.pop(0)
            self.server.handle_request(self._wait() + 2.0)
            self._collect(datagram, notes)

    @rule(blobs=st.lists(datagrams, min_size=1, max_size=6))
    @precondition(lambda self: self.serving)
    def swarm(self, blobs: list[Blob]) -> None:
        """Several clients send a datagram each at once (drawn before any I/O)."""
        sizes = ", ".join(f"{b.size:,}" for b in blobs)
        with self.ex.step(f"swarm of {len(blobs)} datagrams [{sizes}]") as notes:
            data = [b.data()[: DATAGRAM_LIMITS[self.ctx.case.transport]] for b in blobs]
            wants = [self._reply(d) for d in data]
            scripts: list[Script] = [
                (Send(d), RecvDatagram()) if w is not None else (Send(d),)
                for d, w in zip(data, wants)
            ]
            results = self.ctx.swarm(scripts, self.server, timeout=self._wait() * 2 + 2.0)
            await_all(self.ctx, [r.local_address for r in results], self._wait() * 2 + 2.0)
            bad = [r for r in results if not r.ok or r.received != (wants[r.index] or b"")]
            notes.append(f"{len(results) - len(bad)} of {len(results)} as expected")
            if bad:
                first = bad[0]
                self.ctx.fail(
                    "replies.datagram",
                    f"{len(bad)} of {len(results)} swarm client(s) did not get their reply",
                    expected=f"client {first.index}: {peek(wants[first.index])}",
                    observed=f"{peek(first.received)}"
                    + (f" ({first.error_type}: {first.error})" if first.error else ""),
                )
