"""Crafted packets on loopback: what the host allows, raw sending, and a firewall rule.

Scenarios that craft packets (SYNs that never complete, injected RSTs, spoofed
or fragmented UDP) need three things from the host: raw sockets (root or
CAP_NET_RAW), libpcap to compile the capture filters they sniff with, and, for
crafted TCP, a firewall rule that stops the kernel from answering the server's
SYN-ACKs with RSTs on behalf of connections it knows nothing about.

Every packet goes to a loopback address (127.0.0.0/8 or ::1) and nowhere else:
``RawSender`` refuses any other destination.  Firewall rules live in an
nftables table of their own (``sockspec_<pid>_<n>``), limited to one server
port, and are removed when the ``with`` block ends, at interpreter exit as a
backstop, and by the next process that finds a table whose owner has died.
"""

from __future__ import annotations

import atexit
import functools
import ipaddress
import itertools
import os
import shutil
import socket
import struct
import subprocess
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from harness._model.errors import Unsupported
from harness._model.settings import RAW_PACKETS_ENV, raw_packets_switched_off

if TYPE_CHECKING:
    from harness._runtime.context import Context

__all__ = [
    "TABLE_PREFIX",
    "RawSender",
    "Segment",
    "bpf_support",
    "drop_kernel_resets",
    "firewall_support",
    "fragments",
    "parse_frame",
    "raw_packet_support",
    "require_firewall",
    "require_raw_packets",
    "sockspec_tables",
    "stale_tables",
    "tcp_segment",
    "udp_datagram",
]

#: Every nftables table this module creates starts with this (then ``<pid>_<n>``).
TABLE_PREFIX = "sockspec_"
_NFT_TIMEOUT = 10.0
_table_numbers = itertools.count(1)


# --- what the host allows ---------------------------------------------------------


@functools.lru_cache(maxsize=1)
def raw_packet_support() -> str | None:
    """Why crafted packets cannot be sent and sniffed here, or None when they can.

    Needs Linux and raw sockets (root or CAP_NET_RAW), nothing else: sniffing
    filters in Python where libpcap is missing (see ``bpf_support``).
    """
    if raw_packets_switched_off():
        return f"raw packets are switched off ({RAW_PACKETS_ENV}=off)"
    if not sys.platform.startswith("linux"):
        return f"crafted packets need Linux (AF_PACKET, raw sockets); this is {sys.platform}"
    try:
        socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW).close()
        socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003)).close()
    except PermissionError:
        return "raw sockets need root or CAP_NET_RAW (run as root, or setcap cap_net_raw)"
    except OSError as exc:
        return f"raw sockets are not available: {exc}"
    return None


@functools.lru_cache(maxsize=1)
def bpf_support() -> str | None:
    """Why capture filters cannot be compiled to BPF here (no libpcap), or None.

    Optional: without it a capture takes every frame on ``lo`` and keeps the
    wanted ones in Python, which costs CPU but sees the same packets.
    """
    try:
        from scapy.arch.common import compile_filter

        compile_filter("tcp port 1", iface="lo")
    except Exception as exc:
        return f"no libpcap to compile capture filters ({exc}); filtering in Python"
    return None


def require_raw_packets(ctx: Context | None = None) -> None:
    """End the case as ``unsupported`` unless crafted packets work on this host.

    ``ctx`` (optional) adds the case's transport to the check: Unix sockets
    have no packets to craft.
    """
    if ctx is not None and ctx.transport.is_unix:
        raise Unsupported(f"transport {ctx.transport.name!r} carries no IP packets")
    reason = raw_packet_support()
    if reason:
        raise Unsupported(reason)


def _nft() -> str | None:
    return shutil.which("nft") or next(
        (p for p in ("/usr/sbin/nft", "/sbin/nft") if os.access(p, os.X_OK)), None
    )


@functools.lru_cache(maxsize=1)
def firewall_support() -> str | None:
    """Why the firewall rule crafted TCP needs cannot be installed, or None."""
    nft = _nft()
    if nft is None:
        return "crafted TCP needs nftables to silence the kernel's RSTs; install it (apt nftables)"
    proc = _run_nft(nft, ["list", "tables"], check=False)
    if proc.returncode != 0:
        return f"nft cannot list tables (needs root or CAP_NET_ADMIN): {proc.stderr.strip()}"
    return None


def require_firewall() -> None:
    """End the case as ``unsupported`` unless nftables rules can be installed."""
    reason = firewall_support()
    if reason:
        raise Unsupported(reason)


# --- building packets ---------------------------------------------------------------


def _ip(src: str, dst: str, **fields: Any) -> Any:
    if ipaddress.ip_address(dst).version == 6:
        from scapy.layers.inet6 import IPv6

        return IPv6(src=src, dst=dst)
    from scapy.layers.inet import IP

    return IP(src=src, dst=dst, **fields)


def tcp_segment(
    src: tuple[str, int],
    dst: tuple[str, int],
    flags: str,
    seq: int,
    ack: int = 0,
    payload: bytes = b"",
) -> Any:
    """A TCP segment (scapy packet) from ``src`` to ``dst`` with ``flags`` like ``"S"``."""
    from scapy.layers.inet import TCP

    segment = _ip(src[0], dst[0]) / TCP(
        sport=src[1], dport=dst[1], flags=flags, seq=seq, ack=ack, window=65535
    )
    return segment / payload if payload else segment


def udp_datagram(src: tuple[str, int], dst: tuple[str, int], payload: bytes, ip_id: int = 1) -> Any:
    """A UDP datagram (scapy packet); ``payload`` may be empty (a zero-length datagram)."""
    from scapy.layers.inet import UDP

    ip = _ip(src[0], dst[0], id=ip_id)
    datagram = ip / UDP(sport=src[1], dport=dst[1])
    return datagram / payload if payload else datagram


def fragments(datagram: Any, size: int, ident: int = 1) -> list[Any]:
    """``datagram`` split into IP fragments of at most ``size`` payload bytes each.

    IPv4 uses scapy's ``fragment``; IPv6 inserts a Fragment extension header
    with identification ``ident`` and uses ``fragment6``.
    """
    from scapy.layers.inet import IP, fragment
    from scapy.layers.inet6 import IPv6, IPv6ExtHdrFragment, fragment6

    if IP in datagram:
        split: Callable[..., Any] = fragment  # scapy has no annotations
        return list(split(datagram, fragsize=size))
    ip6 = datagram[IPv6]
    packet = IPv6(src=ip6.src, dst=ip6.dst) / IPv6ExtHdrFragment(id=ident) / ip6.payload
    split6: Callable[..., Any] = fragment6
    return list(split6(packet, size + 48))  # fragment6 counts the IPv6+fragment headers


# --- reading packets ----------------------------------------------------------------

_TCP_FLAGS = "FSRPAUEC"  # bit 0 (FIN) first, as scapy spells them
_ETH_HEADER = 14
_IPV6_FRAGMENT = 44


@dataclass(frozen=True)
class Segment:
    """One captured IP packet, reduced to what wire checks look at.

    ``proto`` is ``"tcp"``, ``"udp"`` or ``"fragment"`` (a non-first IP fragment,
    which carries no ports); ``length`` is the payload in bytes (TCP or UDP
    data, or the fragment's data); ``flags`` are TCP flag letters (``"SA"``).
    """

    time: float
    proto: str
    src: str
    sport: int
    dst: str
    dport: int
    flags: str = ""
    seq: int = 0
    ack: int = 0
    length: int = 0
    fragmented: bool = False

    def has(self, flag: str) -> bool:
        """True if the TCP flag letter ``flag`` is set."""
        return flag in self.flags


def _flags(bits: int) -> str:
    return "".join(letter for i, letter in enumerate(_TCP_FLAGS) if bits & (1 << i))


def parse_frame(frame: bytes, ts: float) -> Segment | None:
    """Parse a Linux ``lo`` frame (zeroed Ethernet header) into a ``Segment``, or None."""
    if len(frame) < _ETH_HEADER + 20:
        return None
    ethertype = struct.unpack_from("!H", frame, 12)[0]
    ip = frame[_ETH_HEADER:]
    if ethertype == 0x0800:
        header = (ip[0] & 0x0F) * 4
        total, frag = struct.unpack_from("!H2xH", ip, 2)
        proto = ip[9]
        src = socket.inet_ntop(socket.AF_INET, ip[12:16])
        dst = socket.inet_ntop(socket.AF_INET, ip[16:20])
        offset, more = frag & 0x1FFF, bool(frag & 0x2000)
        body = ip[header:total]
    elif ethertype == 0x86DD and len(ip) >= 40:
        proto, size = ip[6], struct.unpack_from("!H", ip, 4)[0]
        src = socket.inet_ntop(socket.AF_INET6, ip[8:24])
        dst = socket.inet_ntop(socket.AF_INET6, ip[24:40])
        body, offset, more = ip[40 : 40 + size], 0, False
        if proto == _IPV6_FRAGMENT and len(body) >= 8:
            proto, frag = body[0], struct.unpack_from("!H", body, 2)[0]
            offset, more, body = frag >> 3, bool(frag & 1), body[8:]
    else:
        return None
    fragmented = bool(offset or more)
    if offset:
        return Segment(ts, "fragment", src, 0, dst, 0, length=len(body), fragmented=True)
    return _transport(ts, proto, src, dst, body, fragmented)


def _transport(
    ts: float, proto: int, src: str, dst: str, body: bytes, fragmented: bool
) -> Segment | None:
    if proto == socket.IPPROTO_TCP and len(body) >= 20:
        sport, dport, seq, ack, offset, bits = struct.unpack_from("!HHIIBB", body)
        length = len(body) - (offset >> 4) * 4
        return Segment(ts, "tcp", src, sport, dst, dport, _flags(bits), seq, ack, length)
    if proto == socket.IPPROTO_UDP and len(body) >= 8:
        sport, dport, size = struct.unpack_from("!HHH", body)
        return Segment(ts, "udp", src, sport, dst, dport, length=size - 8, fragmented=fragmented)
    return None


# --- sending ------------------------------------------------------------------------


def check_loopback(address: str) -> None:
    """Raise ValueError unless ``address`` is a loopback address (127/8 or ::1)."""
    if not ipaddress.ip_address(address).is_loopback:
        raise ValueError(
            f"refusing to send a crafted packet to {address!r}: only loopback addresses "
            "(127.0.0.0/8, ::1) are allowed"
        )


class RawSender:
    """Raw IPv4/IPv6 sockets (header included) that send crafted packets to loopback only."""

    def __init__(self) -> None:
        self._socks: dict[int, socket.socket] = {}

    def _sock(self, family: int) -> socket.socket:
        if family not in self._socks:
            self._socks[family] = socket.socket(family, socket.SOCK_RAW, socket.IPPROTO_RAW)
        return self._socks[family]

    def send(self, packets: Any | Sequence[Any]) -> int:
        """Send one packet or a sequence in order; returns how many were sent."""
        items: Sequence[Any] = packets if isinstance(packets, (list, tuple)) else [packets]
        for packet in items:
            dst = str(packet.dst)
            check_loopback(dst)
            family = socket.AF_INET6 if ":" in dst else socket.AF_INET
            self._sock(family).sendto(bytes(packet), (dst, 0))
        return len(items)

    def close(self) -> None:
        """Close the raw sockets."""
        for sock in self._socks.values():
            sock.close()
        self._socks.clear()

    def __enter__(self) -> RawSender:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --- the firewall rule ----------------------------------------------------------------


def _run_nft(
    nft: str, args: list[str], stdin: str | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [nft, *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=_NFT_TIMEOUT,
        check=False,
    )
    if check and proc.returncode != 0:
        raise RuntimeError(f"nft {' '.join(args)} failed: {proc.stderr.strip()}")
    return proc


def sockspec_tables() -> list[str]:
    """Names of the nftables ``inet`` tables this harness created that still exist."""
    nft = _nft()
    if nft is None:
        return []
    proc = _run_nft(nft, ["list", "tables", "inet"], check=False)
    names = [line.split()[-1] for line in proc.stdout.splitlines() if line.startswith("table")]
    return [n for n in names if n.startswith(TABLE_PREFIX)]


def _owner(table: str) -> int | None:
    parts = table[len(TABLE_PREFIX) :].split("_")
    return int(parts[0]) if parts and parts[0].isdigit() else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _delete_tables(tables: Iterable[str]) -> None:
    nft = _nft()
    if nft is None:
        return
    for table in tables:
        _run_nft(nft, ["delete", "table", "inet", table], check=False)


def stale_tables() -> list[str]:
    """Sockspec tables whose owning process has died (e.g. a worker killed mid-case)."""
    owners = ((t, _owner(t)) for t in sockspec_tables())
    return [t for t, pid in owners if pid is not None and not _alive(pid)]


def remove_stale_tables() -> None:
    """Delete the tables of ``stale_tables``."""
    _delete_tables(stale_tables())


def _remove_own_tables() -> None:
    """atexit backstop: delete every table this process still owns."""
    mine = f"{TABLE_PREFIX}{os.getpid()}_"
    _delete_tables(t for t in sockspec_tables() if t.startswith(mine))


def _ruleset(table: str, port: int, sports: Sequence[int]) -> str:
    ports = ", ".join(str(p) for p in sorted(set(sports)))
    return (
        f"table inet {table} {{\n"
        "  chain output {\n"
        "    type filter hook output priority 0; policy accept;\n"
        f"    tcp dport {port} tcp sport {{ {ports} }} tcp flags & rst == rst drop\n"
        "  }\n"
        "}\n"
    )


@contextmanager
def drop_kernel_resets(port: int, sports: Sequence[int]) -> Iterator[str]:
    """Drop the kernel's RSTs from crafted client ports ``sports`` to server ``port``.

    A SYN crafted from a port no socket owns draws a SYN-ACK, which the kernel
    answers with an RST that would end the half-open connection at once.  The
    rule sits in a table of its own (yielded), matches only segments with the
    RST flag from ``sports`` to ``port``, and is removed when the block ends,
    whatever happens inside it.
    """
    require_firewall()
    if not sports:
        raise ValueError("drop_kernel_resets needs at least one crafted source port")
    nft = _nft()
    if nft is None:  # pragma: no cover - require_firewall checked
        raise Unsupported("nft disappeared")
    remove_stale_tables()
    table = f"{TABLE_PREFIX}{os.getpid()}_{next(_table_numbers)}"
    _register_backstop()
    _run_nft(nft, ["-f", "-"], stdin=_ruleset(table, port, sports))
    try:
        yield table
    finally:
        _run_nft(nft, ["delete", "table", "inet", table], check=False)


@functools.lru_cache(maxsize=1)
def _register_backstop() -> None:
    atexit.register(_remove_own_tables)
