"""The context a scenario receives: everything it needs, nothing global.

Servers, clients, swarms, seeded randomness, deadlines, temporary paths, the
event log and findings all come from here, so a scenario has no module state,
no ``time.sleep`` and no fixed ports.  The context also remembers what it
created so that the executor can clean up after any outcome.
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any, TypeVar

from harness._model.compat import random_bytes
from harness._model.errors import Abort, ServeDied, Unsupported
from harness._model.implementation import Implementation
from harness._model.phases import SERVER_EVENT
from harness._model.records import ClientResult, Finding, LifecycleEvent
from harness._model.scenario import Case
from harness._model.settings import CaseOptions
from harness._model.variants import (
    TRANSPORTS,
    bind_address,
    resolve_handler_base,
    resolve_server_class,
)
from harness._runtime.childstacks import children_signature
from harness._runtime.clients import DatagramClient, StreamClient
from harness._runtime.clientwait import ClientWatch
from harness._runtime.deadline import PhaseClock, call_with_deadline
from harness._runtime.eventlog import EventLog
from harness._runtime.handlers import Behaviour, HandlerSpec, build_handler
from harness._runtime.instrument import instrument_handler, instrument_server
from harness._runtime.serverhandle import ServerHandle
from harness._runtime.swarm import Script, run_swarm
from harness._runtime.wirelog import wire_entries

T = TypeVar("T")


class Bookkeeping:
    """What the executor needs of a case beyond the scenario's view: cleanup and watchers.

    Kept off ``Context`` so that the object scenarios use offers only what they
    may call; the executor reaches it with ``bookkeeping(ctx)``.
    """

    def __init__(self) -> None:
        self.clients: list[StreamClient | DatagramClient] = []
        self.gates: list[threading.Event] = []
        self.addresses = 0  # Unix socket paths handed out so far
        # Called with each server the case starts (the executor attaches --capture here,
        # so the context does not depend on the optional packet engine).
        self.server_watchers: list[Callable[[ServerHandle], None]] = []
        # Set when a serve_forever() thread ends on its own (see Context._serve_ended).
        self.serve_died = threading.Event()
        self.deaths: list[ServeDied] = []
        self.died_at = 0.0  # monotonic time of the first death
        self.scenario_thread: threading.Thread | None = None
        # Set when the executor ended the case before the scenario returned (a dead
        # server or a hang): the scenario's own polls stop waiting at once.
        self.ended = threading.Event()
        # Set when the scenario finishes or a serve thread dies: what the executor waits on.
        self.wake = threading.Event()
        # The case's own bookkeeping when this is a nested world's (``nest``).
        self.parent: Bookkeeping | None = None

    def died(self, death: ServeDied) -> None:
        """Record a serve thread's death; the first wakes the executor.  A nested
        world's deaths are its case's too: the case ends as it would for its own."""
        self.deaths.append(death)
        if not self.serve_died.is_set():
            self.died_at = time.monotonic()
            self.serve_died.set()
            self.wake.set()
        if self.parent is not None:
            self.parent.died(death)

    def open_gates(self) -> None:
        """Release every handler waiting on a gate."""
        for gate in self.gates:
            gate.set()

    def close_clients(self) -> None:
        """Close every client the scenario opened.  After the case ended (a hang, a dead
        server), a read the scenario is still blocked in is woken first: closing alone
        would leave it blocked for the rest of its step, and the teardown waits for the
        scenario to finish."""
        ended = self.ended.is_set()
        for client in self.clients:
            if ended:
                client.stop_reads()
            client.close()
        self.clients.clear()

    def release(self) -> None:
        """Open every gate, then close every client (the start of any teardown)."""
        self.open_gates()
        self.close_clients()


class Context:
    """What a scenario works with; one per case."""

    def __init__(
        self,
        impl: Implementation,
        case: Case,
        seed: int,
        tmpdir: str,
        options: CaseOptions | None = None,
    ) -> None:
        self.impl = impl
        self.case = case
        self.transport = TRANSPORTS[case.transport]
        self.kind = case.kind
        self.params = dict(case.params)
        self.seed = seed  # this case's seed, derived from the run's (options.seed)
        self.options = options or CaseOptions(seed=seed)
        self.rng = random.Random(seed)
        self.tmpdir = tmpdir
        self.started = time.monotonic()
        self.deadline = self.started + case.spec.deadline * self.scale
        self.log = EventLog()
        self.findings: list[Finding] = []
        self.expected_errors: set[int] = set()
        self.servers: list[ServerHandle] = []
        self.wire: list[dict[str, Any]] = []  # client-side wire log of every swarm
        self.notes: dict[str, Any] = {}  # observations kept as evidence, pass or fail
        self.clock = PhaseClock(
            self.scale,
            self.options.phase_deadlines,
            self.options.known_hangs,
            impl_paths(impl),
            children_signature,
        )
        self._book = Bookkeeping()
        #: Waits as phases: a client's reply or EOF, a scenario's server events (``SERVER_EVENT``).
        self.watch = ClientWatch(
            self.clock,
            self.log.progress,
            self._book.ended,
            lambda: self.log.dropped > 0,
            self.log.events,
        )

    @property
    def base_seed(self) -> int:
        """The run's seed, from which this case's ``seed`` was derived."""
        return self.options.seed

    @property
    def scale(self) -> float:
        """``SOCKSPEC_DEADLINE_SCALE``: the factor every deadline is stretched by."""
        return self.options.deadline_scale

    # -- time ---------------------------------------------------------------
    def time_left(self) -> float:
        """Seconds until the case's deadline (never negative)."""
        return max(0.0, self.deadline - time.monotonic())

    def timeout(self, seconds: float) -> float:
        """``seconds`` stretched by the deadline scale and capped by the time left."""
        return max(0.001, min(seconds * self.scale, self.time_left()))

    # -- servers ------------------------------------------------------------
    def handler(
        self,
        handle: Behaviour | None = None,
        *,
        after_setup: Behaviour | None = None,
        before_finish: Behaviour | None = None,
        base: str = "auto",
        **attrs: Any,
    ) -> HandlerSpec:
        """Describe a handler; ``handle`` defaults to echo."""
        return HandlerSpec(handle, after_setup, before_finish, base, attrs)

    def server_class(self, transport: str | None = None, kind: str | None = None) -> type:
        """The implementation's own (uninstrumented) server class for a variant.

        Useful for overrides passed to ``server(**attrs)`` that must call the
        implementation's version: ``ctx.server_class().get_request(self)``.
        """
        return resolve_server_class(self.impl, transport or self.case.transport, kind or self.kind)

    def server(
        self,
        handler: HandlerSpec | Behaviour | None = None,
        *,
        serve: bool = True,
        poll_interval: float = 0.01,
        bind_and_activate: bool = True,
        transport: str | None = None,
        kind: str | None = None,
        **attrs: Any,
    ) -> ServerHandle:
        """Create an instrumented server of this case's variant (or the one given).

        ``attrs`` become class attributes of the server (``timeout``,
        ``daemon_threads``, ``max_children``, ``request_queue_size``...).
        Serving starts in a harness thread unless ``serve=False``; the short
        ``poll_interval`` keeps teardown quick (``shutdown()`` waits for the
        loop's next wake-up, up to one interval).
        """
        transport = transport or self.case.transport
        spec = handler if isinstance(handler, HandlerSpec) else HandlerSpec(handle=handler)
        base = resolve_server_class(self.impl, transport, kind or self.kind)
        if not bind_and_activate and not callable(getattr(base, "server_bind", None)):
            raise Unsupported(
                f"implementation {self.impl.spec!r} lacks server_bind: {base.__name__} cannot "
                "defer binding (a socket-activated server?)"
            )
        server_cls = instrument_server(type(base.__name__, (base,), dict(attrs)), self.log)
        handler_base = resolve_handler_base(self.impl, transport, spec.base)
        handler_cls = instrument_handler(build_handler(handler_base, spec), self.log)
        self._book.addresses += 1
        address = bind_address(transport, self.tmpdir, self._book.addresses)
        instance = server_cls(address, handler_cls, bind_and_activate)
        handle = ServerHandle(
            instance,
            transport,
            call_timeout=self.timeout(5.0),
            clock=self.clock,
            on_end=self._serve_ended,
            loop_ran=self._loop_ran,
        )
        self.servers.append(handle)
        for watch in self._book.server_watchers:
            watch(handle)
        if serve:
            handle.serve(poll_interval)
        return handle

    def _loop_ran(self, thread_ident: int, since: float) -> bool:
        """True when the thread ``thread_ident`` (or a forked copy of it) ran a loop
        hook (``service_actions``, ``get_request``) after monotonic time ``since``."""
        self.log.sync(0.2)
        return any(
            e.t > since and e.thread_id == thread_ident and e.phase in ("call", "point")
            for name in ("service_actions", "get_request")
            for e in self.log.events(name)
        )

    def _serve_ended(self, handle: ServerHandle) -> None:
        """A ``serve_forever()`` thread ended without the harness asking (serve thread).

        An ``Exception`` out of the loop, or a return nobody asked for with
        ``shutdown()``, is a dead server: the executor ends the case soon after
        (``after_serve_death``) unless the scenario finishes first.  SystemExit
        and KeyboardInterrupt are left alone: scenarios provoke them on purpose.
        """
        error = handle.serve_error
        sid = getattr(handle.server, "_sockspec_server_id", 0)
        if error is None:
            asked = any(e.server == sid for e in self.log.events("shutdown"))
            if asked:
                return
            what = "serve_forever() returned although shutdown() was never called"
            how = "returned"
        elif isinstance(error, Exception):
            what = f"serve_forever() died with {type(error).__name__}: {error}"
            how = type(error).__name__
        else:
            return
        self._book.died(ServeDied(what, handle.serve_traceback, self.clock.stacks(), how))

    # -- clients ------------------------------------------------------------
    def _target(self, server: ServerHandle | None) -> ServerHandle:
        if server is not None:
            return server
        if not self.servers:
            raise Abort("the scenario opened a client before starting a server")
        return self.servers[-1]

    def connect(self, server: ServerHandle | None = None, timeout: float = 5.0) -> StreamClient:
        """A stream client connected to ``server`` (default: the last one started)."""
        client = StreamClient.connect(self._target(server).endpoint, self.timeout(timeout))
        client.watch = self.watch
        self._book.clients.append(client)
        return client

    def datagram(self, server: ServerHandle | None = None, timeout: float = 5.0) -> DatagramClient:
        """A datagram client aimed at ``server`` (bound in the private tmpdir for Unix)."""
        client = DatagramClient.open(
            self._target(server).endpoint, self.timeout(timeout), bind_dir=self.tmpdir
        )
        client.watch = self.watch
        self._book.clients.append(client)
        return client

    def swarm(
        self, scripts: Sequence[Script], server: ServerHandle | None = None, timeout: float = 15.0
    ) -> list[ClientResult]:
        """Run one client per script, all started together; returns their results."""
        results = run_swarm(
            self._target(server).endpoint,
            scripts,
            timeout=self.timeout(timeout),
            bind_dir=self.tmpdir,
            watch=self.watch,
        )
        self.wire.extend(wire_entries(len(self.wire), scripts, results, self.started))
        return results

    # -- helpers ------------------------------------------------------------
    def payload(self, size: int) -> bytes:
        """``size`` seeded random bytes (reproducible from the case's seed)."""
        return random_bytes(self.rng, size)

    def gate(self) -> threading.Event:
        """An event handlers can wait on; every gate is opened at cleanup."""
        gate = threading.Event()
        self._book.gates.append(gate)
        return gate

    def path(self, name: str) -> str:
        """A path inside the case's private temporary directory."""
        return os.path.join(self.tmpdir, name)

    def call(self, fn: Callable[[], T], what: str, timeout: float = 5.0, phase: str = "call") -> T:
        """Call into the implementation with a deadline (``Hang`` if it passes).

        The hang carries ``phase`` and the stack signature, so a hang this
        implementation already showed the same way costs the shortened deadline.
        """
        clock = self.clock.without_limits()
        return call_with_deadline(fn, self.timeout(timeout), what, clock, phase)

    def events(self, name: str | None = None, conn: int | None = None) -> list[LifecycleEvent]:
        """Lifecycle events so far, after collecting those still in flight."""
        self.log.sync()
        return self.log.events(name, conn)

    def wait_events(
        self, name: str, count: int, timeout: float | None = None, phase: str = "call"
    ) -> bool:
        """Wait until ``count`` events ``name``/``phase`` are logged; False on timeout.

        A deadline-bounded poll of the log: used where no reply tells the
        client that the server is done (a datagram handler that raised).
        With no ``timeout`` (5 s) the events are expected at once, and the wait
        is a phase (``SERVER_EVENT``): on an implementation whose earlier cases
        waited it out in vain, on a server doing nothing, it ends early.
        """

        def logged() -> bool:
            return len([e for e in self.log.events(name) if e.phase == phase]) >= count

        return self.wait_until(logged, f"{count} {name} {phase} event(s)", timeout)

    def wait_requests_done(self, timeout: float | None = None) -> bool:
        """Wait until every accepted request has been shut down (``shutdown_request``
        returned); False on timeout (None: 5 s, a phase as in ``wait_events``).  A
        client that got its reply can be ahead of the server, which still has
        ``finish``/``shutdown_request`` to run."""

        def done() -> bool:
            events = self.log.events()
            accepted = {e.conn for e in events if e.name == "get_request" and e.phase == "return"}
            closed = {e.conn for e in events if e.name == "shutdown_request" and e.phase != "call"}
            return accepted <= closed

        return self.wait_until(done, "every request shut down", timeout)

    def wait_until(
        self, condition: Callable[[], bool], what: str, timeout: float | None = None
    ) -> bool:
        """Wait until ``condition()`` holds (a hook of the server set an event, say);
        False on timeout.  Judged like ``wait_events``: with no ``timeout`` (5 s) a
        correct server makes it hold at once, and the wait is a phase (``SERVER_EVENT``).
        """
        watched = timeout is None and self.watch.active
        full = self.timeout(5.0 if timeout is None else timeout)
        started = time.monotonic()
        ask = started + self.watch.step
        while True:
            self.log.sync()
            if condition():
                return True
            now = time.monotonic()
            if now - started >= full:
                if watched:
                    self.watch.expired(SERVER_EVENT)
                return False
            if self._book.ended.is_set():
                return False
            if watched and now >= ask:
                ask = now + self.watch.step
                # Nothing it waits for can arrive but through the log: quiet all along.
                waited = now - started
                if self.watch.ends(SERVER_EVENT, waited, full, what, quiet=waited):
                    return False
            time.sleep(0.005)

    def require(self, *features: str) -> None:
        """End the case as ``unsupported`` unless the implementation has ``features``."""
        missing = self.impl.missing(features)
        if missing:
            raise Unsupported(f"implementation {self.impl.spec!r} lacks {', '.join(missing)}")

    def expect_error(self, conn: int) -> None:
        """Declare that ``handle_error`` is expected for ``conn`` (beyond raised hooks)."""
        self.expected_errors.add(conn)

    # -- findings -----------------------------------------------------------
    def fail(
        self,
        check: str,
        message: str,
        *,
        expected: str = "",
        observed: str = "",
        conn: int | None = None,
        **evidence: Any,
    ) -> None:
        """Record a finding: the check failed, with expected vs observed."""
        book = self._book
        if book.ended.is_set() and threading.current_thread() is book.scenario_thread:
            # The executor already ended the case (dead server, hang): what the scenario
            # sees after that, its clients stopped short, is a consequence, not evidence.
            return
        self.findings.append(Finding(check, message, expected, observed, conn, evidence))

    def note(self, key: str, value: Any) -> None:
        """Keep an observation as evidence of the case (JSON-ready values), even on pass.

        For ``info`` cases that document behaviour rather than judge it.
        """
        self.notes[key] = value

    def expect(self, condition: bool, check: str, message: str, **kw: Any) -> bool:
        """Record a finding unless ``condition`` holds; returns ``condition``."""
        if not condition:
            self.fail(check, message, **kw)
        return condition


def impl_paths(impl: Implementation) -> tuple[str, ...]:
    """Where the implementation's own source lives (package folders or its one file)."""
    return module_paths(impl.module)


def module_paths(module: ModuleType | None) -> tuple[str, ...]:
    """Path prefixes of ``module``'s source: its package folders, or its one file."""
    if module is None:
        return ()
    paths = getattr(module, "__path__", None)
    if paths:
        return tuple(os.path.realpath(p) + os.sep for p in paths)
    file = getattr(module, "__file__", None)
    return (os.path.realpath(file),) if file else ()


def nest(parent: Context, child: Context) -> Callable[[], None]:
    """Make ``child`` (a fuzz example's world) part of ``parent``'s case: a serve
    thread of ``child`` that dies ends the case as one of ``parent``'s would, and
    ``child``'s clients stop waiting when the case ends.  Returns the undo."""
    child._book.parent = parent._book
    undo = parent.watch.wake_on_end(child.watch.end)
    if parent.watch.ended.is_set():  # ended before the hook was in place
        child.watch.end()
    return undo


def bookkeeping(ctx: Context) -> Bookkeeping:
    """The executor's side of ``ctx``: cleanup and server watchers."""
    return ctx._book
