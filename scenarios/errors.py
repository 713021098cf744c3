"""Some clients make their handler raise, or arrive while get_request() fails; later clients follow.

Invariant: an ``Exception`` from a handler reaches ``handle_error(request,
client_address)`` exactly once, while it is being handled and before the request is
shut down; the request is closed (a stream client sees EOF) and the server goes on
serving.  ``SystemExit`` and ``KeyboardInterrupt`` from a handler of a synchronous
server are not swallowed: they leave ``handle_request()``/``serve_forever()``, without
``handle_error``, after the request was shut down and closed.  A ``get_request()`` that
fails with ``OSError`` — injected, or ``accept()`` out of descriptors (``EMFILE``) — is
survived without a handler or ``handle_error``, and serving resumes.  The default
``handle_error`` prints its report to standard error as CPython always has: a line
of 40 dashes, ``Exception occurred during processing of request from`` (``happened``
before 3.9) and the
client address, the traceback, and 40 dashes again.
"""

from __future__ import annotations

import errno
import io
import itertools
import os
import sys
from typing import Any

from harness import ALL, STREAM_TRANSPORTS, Context, checks, echo_script, scenario
from harness.checks import handle_error_context
from harness.support import FAIL_TAG, connect_starved, fail_then_serve, tagged_handler

INTERRUPTS: dict[str, type[BaseException]] = {
    "SystemExit": SystemExit,
    "KeyboardInterrupt": KeyboardInterrupt,
}


@scenario(
    "errors.handler.exception",
    title="A handler's exception reaches handle_error once; the server keeps serving",
    transports=("tcp", "udp", "unix_stream"),
    kinds=ALL,
    params={"hook": ["handle", "finish"], "failures": [3]},
    checks=("lifecycle", "concurrency", "resources"),
)
def handler_exception(ctx: Context, hook: str, failures: int) -> None:
    """Each exception raised in handle or finish reaches handle_error(request,
    client_address) once, from inside the except block and before shutdown_request;
    the client sees EOF and a later client is served."""
    fail_then_serve(ctx, tagged_handler(hook), failures)
    ctx.servers[-1].close()  # every request has ended: the log is complete
    handle_error_context(ctx)


def _interrupt(ctx: Context, driver: str) -> BaseException | None:
    """Let the server take one request; what left handle_request()/serve_forever()."""
    server = ctx.servers[-1]
    if driver == "serve_forever":
        ctx.wait_events("close_request", 1, phase="return")
        ctx.wait_events("serve_forever", 1, timeout=2.0, phase="raise")
        return server.serve_error
    try:
        server.handle_request()
    except tuple(INTERRUPTS.values()) as exc:
        return exc
    return None


@scenario(
    "errors.handler.interrupt",
    title="SystemExit/KeyboardInterrupt from a handler leave a synchronous server",
    transports=("tcp", "udp", "unix_stream"),
    kinds=("sync",),
    params={"exc": list(INTERRUPTS), "driver": ["handle_request", "serve_forever"]},
)
def handler_interrupt(ctx: Context, exc: str, driver: str) -> None:
    """SystemExit or KeyboardInterrupt raised by a handler of a synchronous server
    propagates out of handle_request()/serve_forever() without handle_error, and the
    request is still shut down and closed (a stream client sees EOF)."""
    error = INTERRUPTS[exc]
    ctx.server(tagged_handler("handle", error), serve=driver == "serve_forever")
    stream = ctx.connect() if ctx.transport.is_stream else None
    (stream or ctx.datagram()).send(FAIL_TAG)
    raised = _interrupt(ctx, driver)
    ctx.expect(
        type(raised) is error,
        "errors.interrupt_propagates",
        f"{exc} from the handler did not leave {driver}()",
        expected=f"{driver}() raises {exc}",
        observed=f"{driver}() " + (f"raised {raised!r}" if raised else "went on"),
    )
    if stream is not None:
        ctx.expect(
            stream.is_eof(ctx.timeout(2.0)),
            "errors.request_closed",
            "the client did not see EOF after the handler was interrupted",
            expected="EOF",
            observed="connection still open",
        )


def _failing(ctx: Context, failures: int) -> Any:
    """A get_request override failing ``failures`` times with OSError, then working."""
    server_class: Any = ctx.server_class()
    own = server_class.get_request  # the implementation's own
    calls = itertools.count()

    def get_request(server: Any) -> Any:
        if next(calls) < failures:
            raise OSError(errno.ECONNABORTED, "injected by sockspec")
        return own(server)

    return get_request


@scenario(
    "errors.get_request.oserror",
    title="An OSError from get_request() is survived and serving resumes",
    transports=("tcp", "udp", "unix_stream"),
    kinds=ALL,
    params={"failures": [3]},
)
def get_request_oserror(ctx: Context, failures: int) -> None:
    """get_request() raising OSError is dropped silently (no handler, no handle_error)
    and the server goes on: the request it failed to take is served next time."""
    ctx.server(poll_interval=0.01, get_request=_failing(ctx, failures))
    payload = ctx.payload(64)
    results = ctx.swarm([echo_script(payload, ctx.transport.is_stream)])
    checks.echoed(ctx, results, [payload])
    raised = [e for e in ctx.events("get_request") if e.phase == "raise"]
    ctx.expect(
        len(raised) == failures,
        "errors.get_request_failures",
        "get_request() was not retried after each injected OSError",
        expected=f"{failures} failed get_request() calls, then one that succeeds",
        observed=f"{len(raised)} failed",
    )


@scenario(
    "errors.get_request.emfile",
    title="accept() failing with EMFILE is survived and serving resumes",
    transports=STREAM_TRANSPORTS,
    kinds=ALL,
)
def get_request_emfile(ctx: Context) -> None:
    """While the process has no free descriptor, accept() fails with EMFILE; the
    server survives it and serves the waiting client once descriptors are free again."""
    ctx.server(poll_interval=0.01)
    starved, tried = connect_starved(
        ctx, lambda: ctx.wait_events("get_request", 1, timeout=3.0, phase="raise")
    )
    with starved as client:
        reason = os.strerror(errno.EMFILE)
        failed = [e for e in ctx.events("get_request") if e.phase == "raise"]
        ctx.expect(
            tried and reason in (failed[0].exc or ""),
            "errors.get_request_emfile",
            "the server did not meet EMFILE from accept() while descriptors ran out",
            expected=f"get_request() raises OSError: {reason}",
            observed=(failed[0].exc or "").strip()[-200:] if failed else "no failed accept",
        )
        payload = ctx.payload(64)
        client.send(payload)
        client.shutdown_write()
        reply = client.recv_until_eof()
        ctx.expect(
            reply == payload,
            "replies.echo",
            "the waiting client was not served once descriptors were free again",
            expected=f"its {len(payload)} bytes echoed",
            observed=f"{len(reply)} bytes",
        )


#: The rule the default handle_error() draws above and below its report.
RULE = "-" * 40


@scenario(
    "errors.handle_error.report",
    title="The default handle_error() prints the traceback on stderr between 40-dash rules",
    transports=("tcp", "udp", "unix_stream"),
    kinds=("sync",),
)
def handle_error_report(ctx: Context) -> None:
    """A handler's exception makes the default handle_error() write to sys.stderr: a line
    of 40 dashes, the client address, the traceback naming the exception, and a closing
    line of 40 dashes (the format CPython has printed since 2.x, which log tools match)."""
    srv = ctx.server(tagged_handler("handle"), serve=False, timeout=5.0)
    stream = ctx.connect() if ctx.transport.is_stream else None
    (stream or ctx.datagram()).send(FAIL_TAG)
    captured = io.StringIO()
    saved, sys.stderr = sys.stderr, captured
    try:
        srv.server.handle_request()
    finally:
        sys.stderr = saved
    lines = captured.getvalue().splitlines()
    shape = (
        len(lines) >= 4
        and lines[0] == RULE
        and "during processing of request from" in lines[1]  # "happened" before 3.9
        and lines[2].startswith("Traceback")
        and any("InjectedError" in line for line in lines)
        and lines[-1] == RULE
    )
    ctx.expect(
        shape,
        "errors.handle_error_report",
        "the default handle_error() did not print its report in CPython's shape",
        expected=f"{RULE!r}, 'Exception occurred during processing of request from <addr>',"
        f" the traceback, {RULE!r}",
        observed=repr(captured.getvalue()[:600]),
    )
