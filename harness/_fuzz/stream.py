"""The stream half of the stateful fuzzer: clients that connect, send, half-close,
reset, go idle and read replies, one at a time or as a concurrent swarm.

Each client is a ``Conn`` of the model.  A connection made while the server
serves is waited for until ``get_request()`` has returned it, so that
"taken" in the model means taken by the server; one made otherwise waits in
the accept queue (``pending``, first in first out) until ``handle_request()``
or ``serve_forever()`` takes it.  A client that resets while still queued
stays there as a ghost: the server will accept it all the same.

Replies are judged with the handler's model (``judge_reply``); I/O errors
are tolerated only where the model or the event log says the server may have
closed with unread input (the handler raised, or reads only part).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st
from hypothesis.stateful import initialize, precondition, rule

from harness._fuzz.engine import FuzzRun
from harness._fuzz.example import wait_until
from harness._fuzz.model import Blob, chunked, judge_reply, peek
from harness._fuzz.server import ServerMachine, server_configs
from harness._model.records import LifecycleEvent
from harness._runtime.clients import StreamClient
from harness._runtime.context import Context
from harness._runtime.instrument import address_text
from harness._runtime.swarm import Close, RecvAll, Reset, Script, Send, ShutdownWrite

MAX_CLIENTS = 4  # live clients at once
MAX_PENDING = 3  # below socketserver's default request_queue_size of 5

blobs = st.builds(Blob, size=st.integers(0, 2048), seed=st.integers(0, 255), line=st.just(0))
line_blobs = st.builds(
    Blob, size=st.integers(0, 2048), seed=st.integers(0, 255), line=st.integers(0, 80)
)
cut_lists = st.lists(st.integers(0, 4095), max_size=3)


@dataclass(frozen=True)
class ClientPlan:
    """One swarm client, drawn before any I/O: echo, or send then reset or close."""

    how: str  # echo | reset | close
    blob: Blob
    cuts: tuple[int, ...]

    def script(self) -> Script:
        """The client's ops."""
        sends = tuple(Send(c) for c in chunked(self.blob.data(), self.cuts) if c)
        if self.how == "echo":
            return (*sends, ShutdownWrite(), RecvAll())
        return (*sends[:1], Reset() if self.how == "reset" else Close())

    def __str__(self) -> str:
        return f"{self.how}({self.blob.size:,} bytes)"


client_plans = st.builds(
    ClientPlan,
    how=st.sampled_from(("echo", "reset", "close")),
    blob=line_blobs,
    cuts=st.lists(st.integers(0, 4095), max_size=3).map(tuple),
)


@dataclass(eq=False)
class Conn:
    """A stream client of the model."""

    name: str
    client: StreamClient | None  # None once reset
    local: Any
    sent: bytearray = field(default_factory=bytearray)
    half_closed: bool = False
    taken: bool = False


def conn_of(events: list[LifecycleEvent], local: Any) -> int | None:
    """The connection id ``get_request()`` gave the client at ``local``."""
    if local is None:
        return None
    want = address_text(local)
    for e in events:
        if (
            e.name == "get_request"
            and e.phase == "return"
            and e.detail.get("client_address") == want
        ):
            return e.conn
    return None


def raised(events: list[LifecycleEvent], conn: int | None) -> bool:
    """True when the request's ``setup`` or ``handle`` raised."""
    return any(
        e.conn == conn and e.phase == "raise" and e.name in ("setup", "handle") for e in events
    )


def done(events: list[LifecycleEvent], conn: int | None) -> bool:
    """True once the server is shutting the request down (its handler has ended)."""
    return conn is not None and any(e.conn == conn and e.name == "shutdown_request" for e in events)


def await_all(ctx: Context, locals_: list[Any], timeout: float) -> int:
    """Wait until ``get_request()`` has returned every client at ``locals_`` that got
    that far on its side (clients that reset or close do not wait for the server, so
    their requests may still be queued); returns how many it returned."""
    wanted = [a for a in locals_ if a is not None]
    wait_until(ctx, lambda ev: all(conn_of(ev, a) is not None for a in wanted), timeout)
    events = ctx.events()
    return sum(1 for a in wanted if conn_of(events, a) is not None)


class StreamMachine(ServerMachine):
    """Stateful fuzzing of a stream server."""

    def __init__(self, run: FuzzRun) -> None:
        super().__init__(run)
        self.conns: list[Conn] = []  # live clients
        self.pending: list[Conn] = []  # in the accept queue, oldest first
        self.made = 0

    # -- model -------------------------------------------------------------------
    def pending_count(self) -> int:
        return len(self.pending)

    def on_serve(self, notes: list[str]) -> None:
        for conn in self.pending:
            self._await_taken(conn, notes)
        self.pending.clear()

    def on_close(self) -> None:
        for conn in self.pending:  # refused by the kernel when the listener closed
            if conn.client is not None:
                conn.client.close()
            if conn in self.conns:
                self.conns.remove(conn)
        self.pending.clear()

    @staticmethod
    def _client(conn: Conn) -> StreamClient:
        if conn.client is None:
            raise RuntimeError(f"fuzz model: {conn.name} has no client")
        return conn.client

    def _pick(self, pick: int, ok: Callable[[Conn], bool]) -> Conn:
        """The ``pick``-th live client (cyclically) of those ``ok`` accepts."""
        eligible = [c for c in self.conns if ok(c)]
        return eligible[pick % len(eligible)]

    def _any(self, ok: Callable[[Conn], bool]) -> bool:
        return any(ok(c) for c in self.conns)

    def _wait(self) -> float:
        """How long one handler may take, times the handlers that may run before ours."""
        h = self.config.handler
        ahead = len(self.conns) + 1 if self.ctx.kind == "sync" else 1
        return (h.timeout + h.delay) * ahead + self.slack()

    def _await_taken(self, conn: Conn, notes: list[str]) -> None:
        ok = wait_until(
            self.ctx, lambda ev: conn_of(ev, conn.local) is not None, self._wait() + 1.0
        )
        conn.taken = True
        self.ctx.expect(
            ok,
            "serving.accepts",
            f"{conn.name}: a serving server did not accept the connection",
            expected="get_request() returns it",
            observed=f"not accepted within {self._wait() + 1.0:.2f}s",
        )
        notes.append(f"{conn.name} accepted as conn#{conn_of(self.ctx.events(), conn.local)}")

    def _tolerated(self, conn: Conn, exc: BaseException, what: str, notes: list[str]) -> None:
        events = self.ctx.events()
        cid = conn_of(events, conn.local)
        if self.config.handler.may_reset(bytes(conn.sent)) or raised(events, cid):
            notes.append(f"{what}: {type(exc).__name__} (tolerated: the server closed early)")
            return
        self.ctx.fail(
            "replies.io",
            f"{conn.name}: {what} failed: {type(exc).__name__}: {exc}",
            expected="the exchange completes (the handler neither raised nor left input unread)",
            observed=f"{type(exc).__name__}: {exc}",
            conn=cid,
        )

    def _judge(self, conn: Conn, received: bytes, clean: bool, notes: list[str]) -> None:
        events = self.ctx.events()
        cid = conn_of(events, conn.local)
        problem = judge_reply(
            self.config.handler, bytes(conn.sent), received, clean, raised(events, cid)
        )
        notes.append(f"got {peek(received)}")
        if problem:
            want = self.config.handler.reply(bytes(conn.sent), stream=True)
            self.ctx.fail(
                "replies.content",
                f"{conn.name}: {problem}",
                expected=peek(want),
                observed=peek(received),
                conn=cid,
            )

    # -- rules ---------------------------------------------------------------------
    @initialize(config=server_configs(stream=True))
    def start(self, config: Any) -> None:
        """Create the server (not serving yet)."""
        self.begin(config)

    @rule(first=st.one_of(st.none(), line_blobs))
    @precondition(
        lambda self: (
            self.is_open() and len(self.conns) < MAX_CLIENTS and len(self.pending) < MAX_PENDING
        )
    )
    def connect(self, first: Blob | None) -> None:
        """A new client connects (and sends its first bytes at once, if any)."""
        self.made += 1
        name = f"c{self.made}"
        label = f"{name} = connect()" + (f"; {name}.send({first})" if first else "")
        with self.ex.step(label) as notes:
            client = self.ctx.connect(self.server, timeout=5.0)
            conn = Conn(name, client, client.local_address)
            self.conns.append(conn)
            if first is not None:
                conn.sent += first.data()
                client.send(bytes(conn.sent), timeout=self.ctx.timeout(5.0))
            if self.serving:
                self._await_taken(conn, notes)
            else:
                self.pending.append(conn)
                notes.append("queued")

    @rule(pick=st.integers(0, 3), blob=line_blobs, cuts=cut_lists)
    @precondition(lambda self: self._any(lambda c: not c.half_closed))
    def send(self, pick: int, blob: Blob, cuts: list[int]) -> None:
        """A client sends bytes in random chunks."""
        conn = self._pick(pick, lambda c: not c.half_closed)
        chunks = chunked(blob.data(), cuts)
        with self.ex.step(f"{conn.name}.send({blob} in {len(chunks)} chunk(s))") as notes:
            client = self._client(conn)
            for chunk in chunks:
                conn.sent += chunk
                try:
                    client.send(chunk, timeout=self.ctx.timeout(5.0))
                except OSError as exc:
                    self._tolerated(conn, exc, "send", notes)
                    break

    @rule(pick=st.integers(0, 3))
    @precondition(lambda self: self._any(lambda c: not c.half_closed))
    def half_close(self, pick: int) -> None:
        """A client half-closes (FIN): the server sees end-of-file."""
        conn = self._pick(pick, lambda c: not c.half_closed)
        with self.ex.step(f"{conn.name}.shutdown_write()") as notes:
            conn.half_closed = True
            try:
                self._client(conn).shutdown_write()
            except OSError as exc:
                self._tolerated(conn, exc, "shutdown_write", notes)

    @rule(pick=st.integers(0, 3))
    @precondition(lambda self: self._any(lambda c: c.taken))
    def finish(self, pick: int) -> None:
        """A taken client half-closes, reads the whole reply and closes."""
        conn = self._pick(pick, lambda c: c.taken)
        with self.ex.step(f"{conn.name}: half-close, read the reply to EOF, close") as notes:
            self.conns.remove(conn)
            client = self._client(conn)
            try:
                if not conn.half_closed:
                    client.shutdown_write()
                received = client.recv_until_eof(timeout=self.ctx.timeout(self._wait()))
            except TimeoutError:
                self.ctx.fail(
                    "replies.eof",
                    f"{conn.name}: no end-of-file within {self._wait():.2f}s",
                    expected="the server ends the connection after its handler",
                    observed="still open",
                )
            except OSError as exc:
                self._tolerated(conn, exc, "reading the reply", notes)
            else:
                self._judge(conn, received, True, notes)
            client.close()

    @rule(pick=st.integers(0, 3))
    @precondition(lambda self: self._any(lambda c: c.taken and not c.half_closed))
    def idle(self, pick: int) -> None:
        """A taken client stays idle past the handler's timeout: the server must hang up."""
        conn = self._pick(pick, lambda c: c.taken and not c.half_closed)
        label = f"{conn.name} stays idle past handler.timeout={self.config.handler.timeout:g}"
        with self.ex.step(label) as notes:
            self.conns.remove(conn)
            client = self._client(conn)
            ended = wait_until(self.ctx, lambda ev: done(ev, conn_of(ev, conn.local)), self._wait())
            try:
                received = client.recv_until_eof(timeout=self.ctx.timeout(self.slack()))
            except TimeoutError:
                self.ctx.fail(
                    "timeouts.handler_idle",
                    f"{conn.name}: the server kept an idle connection past its handler's timeout",
                    expected=f"end-of-file within {self._wait():.2f}s",
                    observed="handler still running" if not ended else "connection still open",
                )
            except OSError as exc:
                self._tolerated(conn, exc, "reading after the timeout", notes)
            else:
                self._judge(conn, received, True, notes)
            client.close()

    @rule(pick=st.integers(0, 3))
    @precondition(lambda self: self._any(lambda c: True))
    def reset(self, pick: int) -> None:
        """A client aborts with RST (SO_LINGER 0)."""
        conn = self._pick(pick, lambda c: True)
        with self.ex.step(f"{conn.name}.reset()") as notes:
            self.conns.remove(conn)
            self._client(conn).reset()
            conn.client = None
            if conn in self.pending:
                notes.append("still queued: the server will accept it anyway")

    @rule()
    @precondition(lambda self: self.is_open() and not self.serving and bool(self.pending))
    def handle_request(self) -> None:
        """handle_request() takes the oldest queued connection."""
        conn = self.pending[0]
        with self.ex.step(f"handle_request() for {conn.name}") as notes:
            self.pending.pop(0)
            conn.taken = True
            self.server.handle_request(self._wait() + 2.0)
            cid = conn_of(self.ctx.events(), conn.local)
            notes.append(f"took conn#{cid}")
            self.ctx.expect(
                cid is not None,
                "handle_request.takes_oldest",
                f"handle_request() did not take {conn.name}, the oldest queued connection",
                expected=f"get_request() returns {conn.local!r}",
                observed="another or none",
            )

    @rule(plans=st.lists(client_plans, min_size=1, max_size=4))
    @precondition(lambda self: self.serving)
    def swarm(self, plans: list[ClientPlan]) -> None:
        """Several clients at once, their scripts drawn before any I/O."""
        with self.ex.step(f"swarm[{', '.join(map(str, plans))}]") as notes:
            h = self.config.handler
            timeout = (h.timeout + h.delay) * (len(plans) + len(self.conns)) + self.slack() + 2.0
            results = self.ctx.swarm([p.script() for p in plans], self.server, timeout=timeout)
            taken = await_all(self.ctx, [r.local_address for r in results], timeout)
            notes.append(f"{taken} of {len(results)} taken")
            for result in results:
                plan = plans[result.index]
                if plan.how != "echo":
                    continue
                conn = Conn(f"swarm client {result.index}", None, result.local_address)
                conn.sent += plan.blob.data()
                if result.ok:
                    self._judge(conn, result.received, True, notes)
                else:
                    self._tolerated(conn, OSError(result.error), f"{result.error_type}", notes)
