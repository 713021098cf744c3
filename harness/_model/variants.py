"""Transports and server kinds, and how they map onto an implementation's classes.

A *variant* is one (transport, kind) pair.  Each maps to a named class of the
socketserver API (``ThreadingUDPServer`` ...), so that the composed classes an
implementation ships are themselves under test; IPv6 transports subclass the
IPv4 class with ``address_family = AF_INET6``, as socketserver's docs suggest.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass

from harness._model.errors import Unsupported
from harness._model.implementation import Implementation


@dataclass(frozen=True)
class Transport:
    """A socket transport the harness can serve and reach."""

    name: str
    family: int
    socktype: int
    base: str  # name of the sync server class in the socketserver API
    handler_base: str  # the request handler class that fits this transport
    host: str | None  # bind host for inet transports, None for Unix

    @property
    def is_stream(self) -> bool:
        """True for SOCK_STREAM transports."""
        return self.socktype == socket.SOCK_STREAM

    @property
    def is_unix(self) -> bool:
        """True for AF_UNIX transports (which bind to a filesystem path)."""
        return self.host is None


_AF_UNIX = getattr(socket, "AF_UNIX", -1)

TRANSPORTS: dict[str, Transport] = {
    t.name: t
    for t in (
        Transport(
            "tcp", socket.AF_INET, socket.SOCK_STREAM, "TCP", "StreamRequestHandler", "127.0.0.1"
        ),
        Transport(
            "tcp6", socket.AF_INET6, socket.SOCK_STREAM, "TCP", "StreamRequestHandler", "::1"
        ),
        Transport(
            "udp", socket.AF_INET, socket.SOCK_DGRAM, "UDP", "DatagramRequestHandler", "127.0.0.1"
        ),
        Transport(
            "udp6", socket.AF_INET6, socket.SOCK_DGRAM, "UDP", "DatagramRequestHandler", "::1"
        ),
        Transport(
            "unix_stream", _AF_UNIX, socket.SOCK_STREAM, "UnixStream", "StreamRequestHandler", None
        ),
        Transport(
            "unix_dgram",
            _AF_UNIX,
            socket.SOCK_DGRAM,
            "UnixDatagram",
            "DatagramRequestHandler",
            None,
        ),
    )
}

#: Server kinds and the prefix of their composed class names.
KINDS: dict[str, str] = {"sync": "", "threading": "Threading", "forking": "Forking"}

STREAM_TRANSPORTS = tuple(name for name, t in TRANSPORTS.items() if t.is_stream)
DATAGRAM_TRANSPORTS = tuple(name for name, t in TRANSPORTS.items() if not t.is_stream)


def server_class_name(transport: str, kind: str) -> str:
    """Name of the socketserver class serving ``transport`` with ``kind``."""
    return f"{KINDS[kind]}{TRANSPORTS[transport].base}Server"


def host_supports(transport: str, kind: str) -> str | None:
    """Why this machine cannot run the variant, or None when it can."""
    t = TRANSPORTS[transport]
    if t.is_unix and _AF_UNIX == -1:
        return "this platform has no AF_UNIX"
    if kind == "forking" and not hasattr(os, "fork"):
        return "this platform has no os.fork"
    if t.family == socket.AF_INET6 and not socket.has_ipv6:
        return "this Python has no IPv6 support"
    return None


def resolve_server_class(impl: Implementation, transport: str, kind: str) -> type:
    """The implementation's class for the variant; raises ``Unsupported`` if absent."""
    reason = host_supports(transport, kind)
    if reason:
        raise Unsupported(reason)
    name = server_class_name(transport, kind)
    cls = getattr(impl.module, name, None)
    if not isinstance(cls, type):
        raise Unsupported(f"implementation {impl.spec!r} has no {name}")
    t = TRANSPORTS[transport]
    if t.family == socket.AF_INET6:
        cls = type(f"{name}6", (cls,), {"address_family": socket.AF_INET6})
    return cls


def resolve_handler_base(impl: Implementation, transport: str, base: str = "auto") -> type:
    """The handler class to subclass: the transport's natural one, or ``base`` by name."""
    name = TRANSPORTS[transport].handler_base if base == "auto" else base
    cls = getattr(impl.module, name, None)
    if not isinstance(cls, type):
        raise Unsupported(f"implementation {impl.spec!r} has no {name}")
    return cls


def bind_address(transport: str, tmpdir: str, index: int) -> object:
    """A fresh bind address: an ephemeral port or a path in the private ``tmpdir``."""
    t = TRANSPORTS[transport]
    if t.is_unix:
        return os.path.join(tmpdir, f"srv{index}.sock")
    return (t.host, 0)


def judged_families(impl: Implementation) -> str:
    """One line: which transports ``impl`` offers (and so are judged), and which it lacks."""
    offered = [n for n, t in TRANSPORTS.items() if f"{t.base}Server" in impl.features]
    absent = sorted({f"{t.base}Server" for t in TRANSPORTS.values()} - impl.features)
    line = f"{impl.spec}: judged {', '.join(offered) or 'nothing'}"
    if absent:
        lacking = [n for n in TRANSPORTS if n not in offered]
        line += f"; not offered: {', '.join(lacking)} (no {', '.join(absent)})"
    return line
