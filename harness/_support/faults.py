"""Tagged fault injection: one server fails some requests and serves others.

A client's first byte says whether its handler fails (``FAIL_TAG``) or echoes
the rest (``PASS_TAG``), so one server can fail some requests and serve others
— in any thread or forked child — without shared state.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from harness import checks
from harness._model.lifecycle import FAULT_HOOKS
from harness._runtime.handlers import Behaviour, HandlerSpec, InjectedError
from harness._runtime.swarm import ExpectEOF, Script, Send, ShutdownWrite, echo_script

if TYPE_CHECKING:
    from harness._runtime.context import Context

FAIL_TAG = b"!"


PASS_TAG = b"+"


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
