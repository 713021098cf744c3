"""Helpers for the request-lifecycle, handler, errors and resources families.

* Tagged fault injection: a client's first byte says whether its handler
  fails (``FAIL_TAG``) or echoes the rest (``PASS_TAG``), so one server can
  fail some requests and serve others — in any thread or forked child —
  without shared state.
* Checks the ``lifecycle`` post-check does not make: hooks *nested* inside
  the hook that calls them, and ``handle_error`` running while the exception is
  handled and before the request is shut down.
* Descriptor accounting of this process, and a way to run out of descriptors
  on purpose (``no_free_descriptors``).
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from ._clients import DatagramClient, StreamClient
from ._handlers import Behaviour, HandlerSpec, InjectedError
from ._lifecycle import HANDLER_PATH, by_conn, transcript
from ._limits import lowest_free_descriptor, open_fds
from ._records import LifecycleEvent
from ._swarm import ExpectEOF, Script, Send, ShutdownWrite, echo_script

try:
    import resource
except ImportError:  # pragma: no cover - non-Unix platforms have no rlimits
    resource = None  # type: ignore[assignment]

if TYPE_CHECKING:
    from ._context import Context

__all__ = [
    "FAIL_TAG",
    "PASS_TAG",
    "connect_starved",
    "descriptor_count",
    "echo_rest",
    "expect_silence",
    "fail_script",
    "fail_then_serve",
    "handle_error_context",
    "nesting",
    "no_free_descriptors",
    "pass_script",
    "socket_descriptors",
    "tagged_handler",
]

FAIL_TAG = b"!"
PASS_TAG = b"+"

#: Hooks a tagged handler can fail in.
FAULT_HOOKS = ("setup", "handle", "finish")


# --- tagged fault injection ---------------------------------------------------


def _read_tag(handler: Any) -> None:
    handler.sockspec_tag = handler.rfile.read(1)


def _raise_if_tagged(error: type[BaseException]) -> Behaviour:
    def behaviour(handler: Any) -> None:
        if getattr(handler, "sockspec_tag", None) == FAIL_TAG:
            raise error(f"injected by sockspec ({error.__name__})")

    return behaviour


def echo_rest(handler: Any) -> None:
    """Send back everything after the tag (until EOF on a stream; the rest of a datagram)."""
    handler.wfile.write(handler.rfile.read())


def tagged_handler(hook: str, error: type[BaseException] = InjectedError) -> HandlerSpec:
    """A handler that reads a one-byte tag in ``setup`` and raises ``error`` in ``hook``
    when the tag is ``FAIL_TAG``; otherwise it echoes the rest of the request."""
    if hook not in FAULT_HOOKS:
        raise ValueError(f"unknown hook {hook!r}; expected one of {', '.join(FAULT_HOOKS)}")
    fault = _raise_if_tagged(error)

    def after_setup(handler: Any) -> None:
        _read_tag(handler)
        if hook == "setup":
            fault(handler)

    def handle(handler: Any) -> None:
        if hook == "handle":
            fault(handler)
        echo_rest(handler)

    return HandlerSpec(
        handle=handle,
        after_setup=after_setup,
        before_finish=fault if hook == "finish" else None,
    )


def fail_script(stream: bool) -> Script:
    """A client whose handler must fail: a stream client then expects a clean EOF."""
    if stream:
        return (Send(FAIL_TAG), ShutdownWrite(), ExpectEOF())
    return (Send(FAIL_TAG),)


def pass_script(payload: bytes, stream: bool) -> Script:
    """A client whose handler must echo ``payload`` back."""
    return echo_script(PASS_TAG + payload, stream)


def fail_then_serve(ctx: Context, handler: HandlerSpec, failures: int) -> None:
    """Serve ``handler``; ``failures`` clients make it fail, then one client must be served.

    Each failure must reach ``handle_error`` and end with a clean EOF for a
    stream client; the client arriving afterwards gets its echo.
    """
    from . import checks

    stream = ctx.transport.is_stream
    ctx.server(handler, poll_interval=0.01, request_queue_size=max(5, failures))
    checks.clients_ok(ctx, ctx.swarm([fail_script(stream)] * failures))
    ctx.expect(
        ctx.wait_events("handle_error", failures),
        "errors.reported",
        "not every failed request reached handle_error",
        expected=f"{failures} handle_error calls",
        observed=f"{len(ctx.events('handle_error')) // 2}",
    )
    payload = ctx.payload(64)
    checks.echoed(ctx, ctx.swarm([pass_script(payload, stream)]), [payload])


def expect_silence(ctx: Context, client: DatagramClient, check: str, wait: float = 0.05) -> bool:
    """No datagram reaches ``client`` within ``wait`` seconds."""
    try:
        data = client.recv(timeout=ctx.timeout(wait))
    except TimeoutError:
        return True
    ctx.fail(
        check,
        "a datagram client got a reply it must not get",
        expected="no reply",
        observed=f"{len(data)} bytes {data[:32]!r}",
    )
    return False


# --- checks ---------------------------------------------------------------------


def _spans(events: list[LifecycleEvent], name: str) -> list[tuple[int, int, int, int]]:
    """(start, end, pid, thread) index spans of each call of ``name`` (end: past the last event
    when it never ended)."""
    spans = []
    for i, call in enumerate(events):
        if call.name != name or call.phase != "call":
            continue
        end = next(
            (
                j
                for j in range(i + 1, len(events))
                if events[j].name == name
                and events[j].phase in ("return", "raise")
                and (events[j].pid, events[j].thread_id) == (call.pid, call.thread_id)
            ),
            len(events),
        )
        spans.append((i, end, call.pid, call.thread_id))
    return spans


def _inside(index: int, event: LifecycleEvent, spans: list[tuple[int, int, int, int]]) -> bool:
    return any(s < index < e and p == event.pid and t == event.thread_id for s, e, p, t in spans)


def nesting(ctx: Context) -> bool:
    """The handler runs inside ``finish_request``; ``close_request`` inside ``shutdown_request``.

    ``finish_request`` "instantiates the RequestHandlerClass", so the handler's
    construction and hooks happen during that call, in its thread; and
    ``shutdown_request`` shuts down *and closes* the request, so each call of it
    makes exactly one ``close_request`` call before returning.
    """
    ok = True
    for conn, events in by_conn(ctx.events()).items():
        finishing = _spans(events, "finish_request")
        stray = [
            e.name
            for i, e in enumerate(events)
            if e.name in HANDLER_PATH and e.phase in ("call", "point")
            if not _inside(i, e, finishing)
        ]
        closes = [
            i for i, e in enumerate(events) if e.name == "close_request" and e.phase == "call"
        ]
        unclosed = [
            (s, e)
            for s, e, p, t in _spans(events, "shutdown_request")
            if sum(
                1 for i in closes if s < i < e and (events[i].pid, events[i].thread_id) == (p, t)
            )
            != 1
        ]
        if stray or unclosed:
            ok = False
            ctx.fail(
                "lifecycle.request.nesting",
                f"conn#{conn}: a hook ran outside the hook that should call it",
                expected="handler hooks inside finish_request; one close_request inside "
                "each shutdown_request",
                observed=(f"{', '.join(stray)} outside finish_request" if stray else "")
                + ("; " if stray and unclosed else "")
                + (
                    f"{len(unclosed)} shutdown_request call(s) without exactly one close_request"
                    if unclosed
                    else ""
                ),
                conn=conn,
                transcript=transcript(conn, events),
            )
    return ok


def handle_error_context(ctx: Context) -> bool:
    """``handle_error`` runs while the handler's exception is being handled, before shutdown.

    It is called from the ``except`` block (so ``sys.exc_info()`` is the
    handler's exception) and the request is shut down only after it returns.
    """
    ok = True
    for conn, events in by_conn(ctx.events()).items():
        raised = next((e for e in events if e.phase == "raise" and e.name in FAULT_HOOKS), None)
        for index, call in enumerate(events):
            if call.name != "handle_error" or call.phase != "call":
                continue
            current = call.detail.get("error") or ""
            if raised is not None and (raised.exc_type or "?") not in current:
                ok = False
                ctx.fail(
                    "errors.handle_error_context",
                    f"conn#{conn}: handle_error ran outside the handling of the exception",
                    expected=f"sys.exc_info() is the {raised.exc_type} {raised.name} raised",
                    observed=current.strip().splitlines()[-1] if current else "no exception",
                    conn=conn,
                )
            later = [
                e
                for e in events[index + 1 :]
                if e.name == "shutdown_request" and e.phase == "call" and e.pid == call.pid
            ]
            if not later:
                ok = False
                ctx.fail(
                    "errors.handle_error_before_shutdown",
                    f"conn#{conn}: the request was not shut down after handle_error",
                    expected="handle_error → shutdown_request → close_request",
                    observed=transcript(conn, events),
                    conn=conn,
                )
    return ok


# --- descriptors ------------------------------------------------------------------


def descriptor_count() -> int:
    """How many descriptors this process has open."""
    return len(open_fds())


def socket_descriptors() -> dict[int, str]:
    """This process's descriptors that refer to sockets (fd → ``socket:[inode]``)."""
    return {fd: target for fd, target in open_fds().items() if target.startswith("socket:")}


@contextlib.contextmanager
def no_free_descriptors() -> Iterator[int]:
    """Lower the soft ``RLIMIT_NOFILE`` so that this process cannot open one more descriptor.

    The limit becomes the lowest free descriptor number, so every number a new
    descriptor could take is either in use or over the limit (``EMFILE``);
    descriptors already open stay usable.  The old limit is restored on exit,
    whatever happens inside.  Yields the limit in force.
    """
    if resource is None:  # pragma: no cover
        raise OSError("this platform has no RLIMIT_NOFILE")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    probe = lowest_free_descriptor()
    resource.setrlimit(resource.RLIMIT_NOFILE, (probe, hard))
    try:
        yield probe
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def connect_starved(
    ctx: Context, wait: Callable[[], bool], timeout: float = 5.0
) -> tuple[StreamClient, bool]:
    """Connect a stream client to the last server while no descriptor is free.

    The client socket is created first; then descriptors run out, the client
    connects (which needs none) and ``wait()`` runs — typically until the
    server's ``accept()`` has failed — before the limit is restored.  Returns
    the connected client (the caller closes it) and what ``wait`` returned.
    """
    endpoint = ctx.servers[-1].endpoint
    sock = socket.socket(endpoint.family, socket.SOCK_STREAM)
    try:
        sock.settimeout(ctx.timeout(timeout))
        with no_free_descriptors():
            sock.connect(endpoint.address)
            waited = wait()
        return StreamClient(sock, ctx.timeout(timeout)), waited
    except BaseException:
        sock.close()
        raise
