"""The server half of the stateful fuzzer: start, serve, stop, idle waits, close, restart.

``ServerMachine`` is the part of the state machine that every transport
shares.  Its model (``serving``, how often it served, what is pending) is a function
of the steps drawn so far and never of what the I/O did, so preconditions are
stable and Hypothesis can replay and shrink any sequence.  Subclasses add the
client steps of their transport and say what is pending (``pending_count``)
and what to do when serving starts or the server closes.

The rules checked here: ``shutdown()`` returns with ``serve_forever()`` ended
(once per ``serve_forever()``); ``handle_request()`` with nobody pending
waits ``server.timeout`` (not less) and calls ``handle_timeout()`` once;
``server_close()`` closes the listening socket; and a closed server's address
can be bound again at once (``allow_reuse_address``) by a new server.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Any

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from harness._checks.timing import slack
from harness._fuzz.engine import FuzzRun
from harness._fuzz.model import HANDLERS, HandlerModel
from harness._runtime.serverhandle import ServerHandle


@dataclass(frozen=True)
class FuzzServerConfig:
    """A fuzzed server's settings, drawn once per example."""

    handler: HandlerModel
    timeout: float | None  # server.timeout (handle_request)
    poll: float  # serve_forever(poll_interval)
    max_packet: int = 0  # datagram max_packet_size; 0: the class default
    stream: bool = True  # handler.timeout only matters to stream handlers

    def attrs(self) -> dict[str, Any]:
        """Class attributes of the server."""
        attrs: dict[str, Any] = {"timeout": self.timeout, "allow_reuse_address": True}
        if self.max_packet:
            attrs["max_packet_size"] = self.max_packet
        return attrs

    def __str__(self) -> str:
        handler = f"handler={self.handler}"
        if self.stream:
            handler += f", handler.timeout={self.handler.timeout:g}"
        extra = f", max_packet_size={self.max_packet}" if self.max_packet else ""
        return f"{handler}, server.timeout={self.timeout}, poll_interval={self.poll:g}{extra}"


def _variants(name: str) -> list[HandlerModel]:
    if name == "partial":
        return [HandlerModel(name, n=n) for n in (0, 1, 7, 64)]
    if name == "slow":
        return [HandlerModel(name, delay=d) for d in (0.005, 0.02)]
    return [HandlerModel(name)]


#: Every handler variant under fuzz, drawn as one choice (fewer choices shrink faster).
HANDLER_VARIANTS: tuple[HandlerModel, ...] = tuple(
    replace(variant, timeout=timeout)
    for timeout in (0.05, 0.1)
    for name in HANDLERS
    for variant in _variants(name)
)


def server_configs(stream: bool) -> st.SearchStrategy[FuzzServerConfig]:
    """Server settings for a stream or datagram transport."""
    handlers = (
        HANDLER_VARIANTS if stream else tuple(h for h in HANDLER_VARIANTS if h.timeout == 0.05)
    )
    return st.builds(
        FuzzServerConfig,
        handler=st.sampled_from(handlers),
        timeout=st.sampled_from((0.01, 0.03, None)),
        poll=st.sampled_from((0.005, 0.02)),
        max_packet=st.just(0) if stream else st.sampled_from((0, 1, 100, 8192, 65536)),
        stream=st.just(stream),
    )


class ServerMachine(RuleBasedStateMachine):
    """Server steps shared by every transport; subclasses add clients."""

    def __init__(self, run: FuzzRun) -> None:
        super().__init__()
        self.ex = run.example()
        self.ctx = self.ex.ctx
        self.config = FuzzServerConfig(HandlerModel("echo"), None, 0.05)
        self.srv: ServerHandle | None = None
        self.serving = False
        self.serves = 0  # serve_forever() calls on the current server
        self.started_at = 0  # the step that made the current server (it must do something)
        self.address: Any = None

    # -- what subclasses provide ---------------------------------------------------
    def pending_count(self) -> int:
        """Requests waiting for the server to take them."""
        return 0

    def on_serve(self, notes: list[str]) -> None:
        """serve_forever() has started: the pending requests are being taken."""

    def on_close(self) -> None:
        """The server closed: whatever was pending is gone."""

    # -- helpers -------------------------------------------------------------------
    @property
    def server(self) -> ServerHandle:
        """The current server (every rule that uses it requires one)."""
        if self.srv is None:
            raise RuntimeError("fuzz machine: no server yet")
        return self.srv

    def is_open(self) -> bool:
        """A server exists (it is only ever closed to be replaced at once)."""
        return self.srv is not None

    def slack(self) -> float:
        """The tolerance on top of nominal durations."""
        return slack(self.ctx)

    def calls(self, name: str, phase: str = "call") -> int:
        """How many ``name``/``phase`` events the current server logged."""
        sid = self.server.server._sockspec_server_id
        return sum(1 for e in self.ctx.events(name) if e.phase == phase and e.server == sid)

    def begin(self, config: FuzzServerConfig) -> None:
        """Create the first server (the subclasses' ``initialize`` step)."""
        self.config = config
        with self.ex.step(f"start({self.ctx.server_class().__name__}: {config})") as notes:
            self.srv = self.ctx.server(
                self.config.handler.spec(self.ctx.transport.is_stream),
                serve=False,
                **self.config.attrs(),
            )
            self.address = self.srv.server.server_address
            self.started_at = self.ex.steps
            notes.append(f"bound to {self.srv.endpoint.address!r}")

    # -- rules -----------------------------------------------------------------------
    @rule()
    @precondition(lambda self: self.is_open() and not self.serving)
    def serve(self) -> None:
        """serve_forever() in a thread of its own."""
        with self.ex.step(f"serve_forever(poll_interval={self.config.poll:g})") as notes:
            self.server.serve(self.config.poll)
            self.serving = True
            self.serves += 1
            self.on_serve(notes)

    @rule()
    @precondition(lambda self: self.serving)
    def stop(self) -> None:
        """shutdown() and wait for serve_forever() to end."""
        with self.ex.step("shutdown()") as notes:
            started = time.monotonic()
            self.server.stop()
            self.serving = False
            notes.append(f"returned after {time.monotonic() - started:.3f}s")
            returned = self.calls("serve_forever", "return")
            self.ctx.expect(
                returned == self.serves,
                "shutdown.stops_loop",
                "shutdown() returned but serve_forever() had not",
                expected=f"{self.serves} serve_forever() return(s)",
                observed=f"{returned}",
            )

    @rule()
    @precondition(
        lambda self: (
            self.is_open()
            and not self.serving
            and self.pending_count() == 0
            and self.config.timeout is not None
        )
    )
    def handle_request_idle(self) -> None:
        """handle_request() with nobody there: waits server.timeout, then handle_timeout()."""
        timeout = self.config.timeout or 0.0
        with self.ex.step(f"handle_request() with no client (server.timeout={timeout:g})") as notes:
            before = self.calls("handle_timeout")
            started = time.monotonic()
            self.server.handle_request(timeout + self.slack() + 1.0)
            elapsed = time.monotonic() - started
            notes.append(f"returned after {elapsed:.3f}s")
            self.ctx.expect(
                0.9 * timeout <= elapsed < timeout + self.slack(),
                "timeouts.handle_request_duration",
                f"handle_request() with no client returned after {elapsed:.3f}s",
                expected=f"at least {0.9 * timeout:.3f}s and under {timeout + self.slack():.3f}s",
                observed=f"{elapsed:.3f}s",
            )
            timeouts = self.calls("handle_timeout") - before
            self.ctx.expect(
                timeouts == 1,
                "timeouts.handle_timeout_once",
                "handle_timeout() was not called exactly once by an expired handle_request()",
                expected="1 call",
                observed=f"{timeouts} call(s)",
            )

    def can_rebind(self) -> bool:
        """The server class binds in a step of its own (``server_bind``): a
        socket-activated one without it cannot be bound again to an address."""
        return self.srv is not None and callable(getattr(self.srv.server, "server_bind", None))

    @rule()
    @precondition(
        lambda self: (
            self.srv is not None and self.ex.steps > self.started_at + 1 and self.can_rebind()
        )
    )
    def restart(self) -> None:
        """server_close() (after shutdown() if serving), then a new server of the same
        settings bound to the address the closed one had."""
        what = "shutdown(); server_close()" if self.serving else "server_close()"
        with self.ex.step(f"{what}; a new server on {self.address!r}") as notes:
            srv = self.server
            fd = srv.listening_fd()
            srv.close()
            self.serving = False
            self.on_close()
            self.ctx.expect(
                srv.listening_fd() == -1,
                "shutdown.server_close",
                f"server_close() left the listening socket (fd {fd}) open",
                expected="the listening socket closed",
                observed=f"fd {srv.listening_fd()}",
            )
            self.srv, self.serves, self.started_at = self._rebind(), 0, self.ex.steps
            notes.append("bound again")

    def _rebind(self) -> ServerHandle:
        srv = self.ctx.server(
            self.config.handler.spec(self.ctx.transport.is_stream),
            serve=False,
            bind_and_activate=False,
            **self.config.attrs(),
        )
        srv.server.server_address = self.address
        try:
            self.ctx.call(srv.server.server_bind, "server_bind()")
            self.ctx.call(srv.server.server_activate, "server_activate()")
        except OSError as exc:
            self.ctx.fail(
                "shutdown.rebind",
                f"binding a new server to the closed server's address failed: {exc}",
                expected="server_bind() succeeds (allow_reuse_address = True)",
                observed=f"{type(exc).__name__}: {exc}",
            )
        return srv

    @invariant()
    def holds(self) -> None:
        """Hook orders so far are prefixes of their paths; no serving loop died."""
        self.ex.invariants()

    def teardown(self) -> None:
        """Close everything and run the end-of-example checks."""
        self.ex.finish()
