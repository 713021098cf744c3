"""A TCP client makes one request while a capture on ``lo`` watches how the connection ends.

Invariant: after a complete exchange — the handler read everything the client
sent — the server ends the connection with FIN and neither side sends RST; the
side that finished first closes first (the server after a one-line request, the
client when it half-closes).  When the server closes with client data still
unread, the kernel resets the connection (RST) and the client may lose the
reply: documented (``info``), not required.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from harness import Context, Unsupported, echo, scenario
from harness.packets import Capture, Segment, capture_servers

TCP = ("tcp", "tcp6")
#: Bytes sent after the request line but never read: far beyond rfile's 8 KiB buffer.
UNREAD = 64 * 1024


def _one_line(handler: Any) -> None:
    """Reply with the first line, leave anything after it unread, return."""
    handler.wfile.write(handler.rfile.readline())


def _read_reply(ctx: Context, client: Any) -> bytes | str:
    """Everything until EOF, or the error that ended the read (a reset is what we look for)."""
    try:
        return bytes(client.recv_until_eof(timeout=ctx.timeout(5.0)))
    except OSError as exc:
        return f"{type(exc).__name__}: {exc}"


def _ended(segments: Sequence[Segment]) -> bool:
    """Both FINs seen and acknowledged, or any RST: nothing more will come."""
    fins = [i for i, s in enumerate(segments) if s.has("F")]
    return any(s.has("R") for s in segments) or (len(fins) >= 2 and len(segments) > fins[1] + 1)


def _connection(ctx: Context, cap: Capture) -> dict[str, Any]:
    """The single connection of the capture's summary; ends the case if the capture is unsure."""
    # A phase wait (not cap.wait_for): a server that never closes costs this once per run.
    ctx.wait_until(lambda: _ended(cap.segments()), "the connection's end on the wire")
    cap.stop()
    summary = cap.summary()
    if cap.maybe_dropped:
        raise Unsupported(f"the capture lost packets ({cap.kernel_drops} dropped by the kernel)")
    connections = [c for c in summary["connections"] if c["transport"] == "tcp"]
    if len(connections) != 1:
        raise Unsupported(f"expected one captured connection, saw {len(connections)}: {summary}")
    return dict(connections[0])


@scenario(
    "wire.close.fin",
    title="After a complete exchange the server closes with FIN, never RST",
    transports=TCP,
    params={"half_close": [False, True]},
    checks=("lifecycle", "resources"),
)
def fin_close(ctx: Context, half_close: bool) -> None:
    """A one-line request (server closes first) or a half-closed one (client first):
    handshake complete, both sides close with FIN, no RST."""
    server = ctx.server(ctx.handler(echo if half_close else _one_line))
    request = ctx.payload(64).replace(b"\n", b" ") + b"\n"
    with capture_servers(ctx, server) as cap:
        client = ctx.connect()
        client.send(request)
        if half_close:
            client.shutdown_write()
        reply = _read_reply(ctx, client)
        client.close()
        conn = _connection(ctx, cap)
    ctx.expect(reply == request, "wire.reply", "the reply is not the request", observed=str(reply))
    want = {"handshake": "complete", "client_close": "FIN", "server_close": "FIN"}
    want["first_close"] = "client" if half_close else "server"
    seen = {k: conn.get(k) for k in want}
    ctx.expect(
        seen == want,
        "wire.fin_close",
        "the connection did not end with a FIN from each side and no RST",
        expected=str(want),
        observed=str(seen),
        wire_summary=conn,
    )


@scenario(
    "wire.close.unread_rst",
    title="Closing with unread client data resets the connection (RST)",
    transports=TCP,
    strictness="info",
)
def unread_rst(ctx: Context) -> None:
    """A handler that returns with client data unread: the server's side sends RST
    (after its FIN) — the client may then lose the reply.  Documents the kernel's
    behaviour under the implementation's close sequence."""
    server = ctx.server(ctx.handler(_one_line))
    with capture_servers(ctx, server) as cap:
        client = ctx.connect()
        client.send(b"request\n" + ctx.payload(UNREAD))
        _read_reply(ctx, client)  # a reset may overtake the reply: what this case documents
        conn = _connection(ctx, cap)
    ctx.expect(
        "RST" in conn["server_close"],
        "wire.unread_rst",
        "the server closed with unread data but sent no RST",
        expected="server_close includes RST",
        observed=str(conn["server_close"]),
        wire_summary=conn,
    )
