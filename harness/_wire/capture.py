"""Packet capture on loopback: a pcap per case and a per-connection wire summary.

``Capture`` runs scapy's ``AsyncSniffer`` on ``lo`` over a packet socket of
its own: the BPF filter (the server ports) is attached before the socket is
bound, the receive buffer is enlarged (``SO_RCVBUFFORCE`` as root), and
``start`` returns only once the sniffer thread runs, so no traffic of the case
is missed.  ``stop`` drains what is still queued in the socket, then reads the
kernel's drop counter (``PACKET_STATISTICS``): a capture that may have lost
packets says so (``maybe_dropped``) instead of pretending to be complete.

On ``lo`` every packet passes the tap twice (going out and coming in); the
outgoing copy is skipped, as libpcap does.  Frames are kept as bytes and
parsed with ``struct`` into ``Segment`` records (scapy's dissector is too slow
to run in the capture path); ``connection_summary`` turns them into the per-connection
view (handshake, who closed first, FIN or RST).

``CaseCapture`` is the ``--capture`` plumbing: one capture per case, widened to
each server's port as servers are created, finished into evidence (``pcap``
relative to the report directory, ``wire_summary``).  When capture is not
possible here it only leaves a note: it never fails a case.
"""

from __future__ import annotations

import functools
import re
import select
import socket
import struct
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness._runtime.instrument import address_text
from harness._wire.crafted import (
    Segment,
    bpf_support,
    parse_frame,
    raw_packet_support,
    require_raw_packets,
)

if TYPE_CHECKING:
    from harness._runtime.context import Context
    from harness._runtime.serverhandle import ServerHandle

__all__ = [
    "Capture",
    "CaptureUnavailable",
    "CaseCapture",
    "Segment",
    "capture_servers",
    "connection_summary",
    "port_filter",
]

SOL_PACKET = 263
PACKET_STATISTICS = 6
SO_RCVBUFFORCE = 33
#: Receive buffer asked for the capture socket (the kernel doubles it for bookkeeping).
RCVBUF = 16 * 1024 * 1024
START_TIMEOUT = 5.0
#: Connections listed one by one in a summary (the totals count them all).
MAX_LISTED = 100
LINKTYPE_ETHERNET = 1  # Linux ``lo`` frames carry a zeroed Ethernet header


class CaptureUnavailable(RuntimeError):
    """Capture cannot run on this host (no raw sockets, no libpcap...)."""


def port_filter(ports: Iterable[int], fragments: bool = False) -> str:
    """The BPF filter for TCP/UDP traffic to or from ``ports`` (and IP fragments if asked).

    Non-first fragments carry no ports, and libpcap's ``port`` does not look
    past an IPv6 fragment header, so ``fragments=True`` adds every fragment.
    """
    wanted = sorted(set(ports))
    expr = " or ".join(f"port {p}" for p in wanted) if wanted else "port 0"
    expr = f"(tcp or udp) and ({expr})"
    if fragments:
        expr = f"({expr}) or (ip and ip[6:2] & 0x1fff != 0) or (ip6 and ip6[6] == 44)"
    return expr


@functools.lru_cache(maxsize=1)
def _socket_class() -> type:
    """scapy's ``L2ListenSocket``, keeping incoming copies only and frames as raw bytes."""
    import scapy.layers.l2  # noqa: F401  (registers lo's link type before the socket opens)
    from scapy.arch.linux import L2ListenSocket, get_last_packet_timestamp
    from scapy.config import conf

    class LoopbackListenSocket(L2ListenSocket):
        def recv_raw(self, x: int = 65535) -> tuple[Any, Any, Any]:
            frame, sa_ll, ts = self._recv_raw(self.ins, x)
            if sa_ll[2] == socket.PACKET_OUTGOING:
                return None, None, None
            if ts is None:
                ts = get_last_packet_timestamp(self.ins)
            return conf.raw_layer, frame, ts

    return LoopbackListenSocket


class Capture:
    """Record loopback traffic of some ports; a context manager (start → stop)."""

    def __init__(
        self, ports: Iterable[int] = (), *, fragments: bool = False, rcvbuf: int = RCVBUF
    ) -> None:
        self.ports: set[int] = set(ports)
        self.fragments = fragments
        self.rcvbuf = rcvbuf
        self.notes: list[str] = []
        self.kernel_drops: int | None = None
        self._frames: list[tuple[float, bytes]] = []
        self._segments: list[Segment] = []
        self._changed = threading.Condition()
        self._sock: Any = None
        self._sniffer: Any = None
        self._stopped = False
        self._python_filter = False  # no libpcap: every lo frame arrives, keep the wanted

    # -- lifecycle ----------------------------------------------------------------
    def start(self, timeout: float = START_TIMEOUT) -> Capture:
        """Open the socket, start the sniffer and wait until it runs.

        Raises ``CaptureUnavailable`` (with the reason) when capture cannot run here.
        """
        reason = raw_packet_support()
        if reason:
            raise CaptureUnavailable(reason)
        from scapy.sendrecv import AsyncSniffer

        no_bpf = bpf_support()
        self._python_filter = no_bpf is not None
        if no_bpf:
            self.notes.append(no_bpf)
        bpf = None if self._python_filter else port_filter(self.ports, self.fragments)
        try:
            self._sock = _socket_class()(iface="lo", filter=bpf)
            self._enlarge_buffer(self._sock.ins)
            self._read_drops(reset=True)
            running = threading.Event()
            self._sniffer = AsyncSniffer(
                opened_socket=self._sock,
                store=False,
                prn=self._on_packet,
                started_callback=running.set,
            )
            self._sniffer.start()
            started = running.wait(timeout) and self._sniffer.running
        except Exception as exc:
            self._close()
            raise CaptureUnavailable(f"cannot capture on lo: {type(exc).__name__}: {exc}") from exc
        if not started:
            self.stop()
            raise CaptureUnavailable(f"the sniffer did not start within {timeout:g}s")
        return self

    def watch(self, port: int) -> None:
        """Add ``port`` to the filter of a running capture (from the next packet on)."""
        if port in self.ports:
            return
        self.ports.add(port)
        if self._sock is not None and not self._stopped and not self._python_filter:
            from scapy.arch.linux import attach_filter

            attach_filter(self._sock.ins, port_filter(self.ports, self.fragments), "lo")

    def stop(self) -> None:
        """Stop the sniffer, drain what the socket still holds, read the drop counter."""
        if self._stopped or self._sniffer is None:
            self._stopped = True
            return
        self._stopped = True
        try:
            if self._sniffer.running:
                self._sniffer.stop(join=True)
            else:
                self._sniffer.join(START_TIMEOUT)
        except Exception as exc:
            self.notes.append(f"the sniffer ended with {type(exc).__name__}: {exc}")
        self._drain()
        self._read_drops()
        self._close()

    def __enter__(self) -> Capture:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- what was seen -----------------------------------------------------------
    def segments(self) -> list[Segment]:
        """Every packet parsed so far, in capture order."""
        with self._changed:
            return list(self._segments)

    def wait_for(self, predicate: Callable[[Sequence[Segment]], bool], timeout: float) -> bool:
        """Wait until ``predicate(segments)`` holds; False when ``timeout`` passes first.

        The predicate runs on a snapshot, outside the lock, once per batch of
        new packets, so the sniffer is never held up by it.
        """
        deadline = time.monotonic() + timeout
        seen = -1
        while True:
            with self._changed:
                while len(self._segments) == seen and not self._stopped:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    self._changed.wait(left)
                snapshot = list(self._segments)
            if predicate(snapshot):
                return True
            if self._stopped or time.monotonic() >= deadline:
                return False
            seen = len(snapshot)

    @property
    def maybe_dropped(self) -> bool | None:
        """True if the kernel dropped packets for this capture; None when unknown."""
        return None if self.kernel_drops is None else self.kernel_drops > 0

    def summary(self, server_ports: Iterable[int] | None = None) -> dict[str, Any]:
        """The wire summary (see ``connection_summary``) plus the capture's reliability."""
        out = connection_summary(
            self.segments(), self.ports if server_ports is None else server_ports
        )
        out["kernel_drops"] = self.kernel_drops
        out["maybe_dropped"] = self.maybe_dropped
        notes = list(self.notes)
        if self.maybe_dropped:
            notes.append(
                f"the kernel dropped {self.kernel_drops} packet(s): the capture is incomplete"
            )
        elif self.maybe_dropped is None:
            notes.append("no drop counter: packets may have been dropped unnoticed")
        if notes:
            out["notes"] = notes
        return out

    def write_pcap(self, path: Path) -> None:
        """Write every captured frame to ``path`` (pcap, Ethernet link type)."""
        from scapy.utils import RawPcapWriter

        path.parent.mkdir(parents=True, exist_ok=True)
        with self._changed:
            frames = list(self._frames)
        writer = RawPcapWriter(str(path), linktype=LINKTYPE_ETHERNET, sync=False)
        try:
            writer.write_header(None)
            for ts, frame in frames:
                writer.write_packet(frame, sec=int(ts), usec=int((ts % 1) * 1_000_000))
        finally:
            writer.close()

    # -- internals -----------------------------------------------------------------
    def _on_packet(self, packet: Any) -> None:
        frame = bytes(packet)
        ts = float(packet.time)
        segment = parse_frame(frame, ts)
        if self._python_filter and not self._wanted(segment):
            return
        with self._changed:
            self._frames.append((ts, frame))
            if segment is not None:
                self._segments.append(segment)
            self._changed.notify_all()

    def _wanted(self, segment: Segment | None) -> bool:
        """What ``port_filter`` would pass: TCP/UDP to or from a port, or a fragment if asked."""
        if segment is None:
            return False
        if segment.proto == "fragment" or (self.fragments and segment.fragmented):
            return self.fragments
        return segment.sport in self.ports or segment.dport in self.ports

    def _drain(self) -> None:
        if self._sock is None:
            return
        while select.select([self._sock.ins], [], [], 0)[0]:
            packet = self._sock.recv()
            if packet is not None:
                self._on_packet(packet)

    def _enlarge_buffer(self, sock: socket.socket) -> None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, self.rcvbuf)
        except OSError:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.rcvbuf)
        got = sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF)
        if got < self.rcvbuf:
            self.notes.append(f"receive buffer only {got} bytes (asked {self.rcvbuf})")

    def _read_drops(self, reset: bool = False) -> None:
        """Read the kernel's counters (reading resets them): tpacket_stats {packets, drops}.

        ``reset`` discards what was counted so far: drops before the filter was
        attached are other traffic (the socket sees every interface until bound).
        """
        try:
            raw = self._sock.ins.getsockopt(SOL_PACKET, PACKET_STATISTICS, 8)
        except (OSError, AttributeError):
            self.kernel_drops = None
            return
        drops = 0 if reset else struct.unpack("II", raw)[1]
        self.kernel_drops = drops + (self.kernel_drops or 0)

    def _close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


# --- the wire summary -------------------------------------------------------------


@dataclass
class _Flow:
    """What one connection (TCP) or flow (UDP) did, accumulated packet by packet."""

    proto: str
    client: tuple[str, int]
    server: tuple[str, int]
    packets: int = 0
    to_server: list[int] = field(default_factory=lambda: [0, 0])  # packets with data, bytes
    to_client: list[int] = field(default_factory=lambda: [0, 0])
    handshake: list[str] = field(default_factory=list)  # "SYN", "SYN-ACK", "ACK" as seen
    closes: dict[str, list[str]] = field(default_factory=lambda: {"client": [], "server": []})
    first_close: str | None = None
    fin_end: dict[str, int] = field(default_factory=dict)  # side -> sequence number after its FIN
    fin_acked: set[str] = field(default_factory=set)  # sides whose FIN the peer acknowledged
    after_close: list[str] = field(default_factory=list)  # flags seen once both FINs were acked

    def add(self, seg: Segment, side: str) -> None:
        self.packets += 1
        counts = self.to_server if side == "client" else self.to_client
        if seg.length or seg.proto == "udp":
            counts[0] += 1
            counts[1] += seg.length
        if seg.proto == "tcp":
            self._tcp(seg, side)

    def _tcp(self, seg: Segment, side: str) -> None:
        step = _handshake_step(seg, side, self.handshake)
        if step:
            self.handshake.append(step)
        if len(self.fin_acked) == 2:
            # The connection is over (both FINs acknowledged): an RST now answers a stray
            # segment on a closed socket, which the kernel can emit under load — it is
            # not how either side closed, so it is listed apart.
            if seg.has("R") and "RST" not in self.after_close:
                self.after_close.append("RST")
            return
        self._note_fin(seg, side)
        for flag, word in (("F", "FIN"), ("R", "RST")):
            if seg.has(flag) and word not in self.closes[side]:
                self.closes[side].append(word)
                self.first_close = self.first_close or side

    def _note_fin(self, seg: Segment, side: str) -> None:
        if seg.has("F") and side not in self.fin_end:
            self.fin_end[side] = (seg.seq + seg.length + 1) & 0xFFFFFFFF
        peer = "server" if side == "client" else "client"
        end = self.fin_end.get(peer)
        # Sequence numbers wrap: "ack >= end" modulo 2**32.
        if end is not None and seg.has("A") and (seg.ack - end) & 0xFFFFFFFF < 1 << 31:
            self.fin_acked.add(peer)

    def to_json(self) -> dict[str, Any]:
        base = {"transport": self.proto, "client": address_text(self.client)}
        base["server"] = address_text(self.server)
        if self.proto == "udp":
            return {
                **base,
                "datagrams_to_server": self.to_server[0],
                "datagrams_to_client": self.to_client[0],
                "bytes_to_server": self.to_server[1],
                "bytes_to_client": self.to_client[1],
            }
        return {
            **base,
            "handshake": _handshake_word(self.handshake),
            "first_close": self.first_close,
            "client_close": "+".join(self.closes["client"]) or "none",
            "server_close": "+".join(self.closes["server"]) or "none",
            "after_close": "+".join(self.after_close) or "none",
            "packets": self.packets,
            "bytes_to_server": self.to_server[1],
            "bytes_to_client": self.to_client[1],
        }


def _handshake_step(seg: Segment, side: str, seen: list[str]) -> str | None:
    """The handshake step ``seg`` is (the first time it is seen), or None."""
    syn, ack = seg.has("S"), seg.has("A")
    if syn and not ack and side == "client" and "SYN" not in seen:
        return "SYN"
    if syn and ack and side == "server" and "SYN-ACK" not in seen:
        return "SYN-ACK"
    if not syn and ack and side == "client" and "SYN-ACK" in seen and "ACK" not in seen:
        return "ACK"
    return None


def _handshake_word(seen: list[str]) -> str:
    if seen == ["SYN", "SYN-ACK", "ACK"]:
        return "complete"
    return ", ".join(seen) + " only" if seen else "not seen"


def _orient(seg: Segment, ports: set[int]) -> tuple[tuple[str, int], tuple[str, int], str]:
    """(client, server, side of the sender) for a segment, the server being on ``ports``."""
    src, dst = (seg.src, seg.sport), (seg.dst, seg.dport)
    if seg.sport in ports and seg.dport not in ports:
        return dst, src, "server"
    if seg.proto == "tcp" and seg.has("S") and seg.has("A"):
        return dst, src, "server"
    return src, dst, "client"


def connection_summary(segments: Sequence[Segment], server_ports: Iterable[int]) -> dict[str, Any]:
    """Per-connection view of captured ``segments`` whose server listens on ``server_ports``.

    For TCP: the handshake seen (``complete`` or which steps), who sent the
    first FIN or RST (``first_close``), and how each side closed (``FIN``,
    ``RST``, ``FIN+RST`` in the order seen, or ``none``) and, apart, an RST seen
    once both FINs were acknowledged (``after_close``); for UDP: datagrams
    and bytes each way.  ``totals`` count every connection; at most
    ``MAX_LISTED`` are listed.
    """
    ports = set(server_ports)
    flows: dict[tuple[str, tuple[str, int], tuple[str, int]], _Flow] = {}
    fragments = 0
    for seg in segments:
        if seg.proto == "fragment":
            fragments += 1
            continue
        client, server, side = _orient(seg, ports)
        key = (seg.proto, client, server)
        flow = flows.get(key) or flows.setdefault(key, _Flow(seg.proto, client, server))
        flow.add(seg, side)
    listed = [f.to_json() for f in flows.values()]
    tcp = [c for c in listed if c["transport"] == "tcp"]
    totals = {
        "packets": len(segments),
        "tcp_connections": len(tcp),
        "handshakes_complete": sum(c["handshake"] == "complete" for c in tcp),
        "server_closed_first": sum(c["first_close"] == "server" for c in tcp),
        "client_closed_first": sum(c["first_close"] == "client" for c in tcp),
        "with_rst": sum("RST" in c["client_close"] + c["server_close"] for c in tcp),
        "rst_after_close": sum(c["after_close"] != "none" for c in tcp),
        "udp_flows": len(listed) - len(tcp),
        "ip_fragments": fragments,
    }
    out: dict[str, Any] = {"totals": totals, "connections": listed[:MAX_LISTED]}
    if len(listed) > MAX_LISTED:
        out["connections_not_listed"] = len(listed) - MAX_LISTED
    return out


def capture_servers(ctx: Context, *servers: ServerHandle, fragments: bool = False) -> Capture:
    """A (not yet started) capture of ``servers``' ports, for scenarios that check the wire.

    Use it as ``with capture_servers(ctx, server) as cap:``.  Ends the case as
    ``unsupported`` when this host cannot capture (see ``require_raw_packets``).
    """
    require_raw_packets(ctx)
    return Capture([int(s.endpoint.address[1]) for s in servers], fragments=fragments)


def case_slug(impl: str, case_id: str) -> str:
    """A file name for one implementation × case (stable, filesystem-safe, bounded)."""
    text = f"{impl}--{case_id}"
    slug = re.sub(r"[^A-Za-z0-9._=,-]+", "_", text).strip("._")
    if len(slug) > 150 or slug != text:
        # Replaced characters would make ids that differ only in them collide.
        slug = f"{slug[:140]}-{zlib.crc32(text.encode()):08x}"
    return slug


class CaseCapture:
    """``--capture`` for one case: one sniffer widened to every server the case starts."""

    def __init__(self, artifacts_dir: str | None, slug: str) -> None:
        self.artifacts_dir = Path(artifacts_dir) if artifacts_dir else None
        self.slug = slug
        self.capture: Capture | None = None
        self.ports: list[int] = []
        self.notes: list[str] = []
        self._failed = False

    def watch(self, handle: ServerHandle) -> None:
        """Capture the traffic of ``handle``'s server from now on (never raises)."""
        try:
            self._watch(handle)
        except Exception as exc:
            self._failed = True
            self.notes.append(f"capture unavailable: {type(exc).__name__}: {exc}")

    def _watch(self, handle: ServerHandle) -> None:
        address = handle.endpoint.address
        if not isinstance(address, tuple):
            self.notes.append(f"{handle.transport} server: Unix sockets have no packets to capture")
            return
        port = int(address[1])
        if port == 0:
            self.notes.append("a server was not bound yet when created: its port is not captured")
            return
        if self._failed:
            return
        self.ports.append(port)
        if self.capture is None:
            self.capture = Capture([port]).start()
        else:
            self.capture.watch(port)

    def finish(self) -> dict[str, Any]:
        """Stop capturing; write the pcap; return the evidence (never raises)."""
        evidence: dict[str, Any] = {}
        if self.capture is not None:
            try:
                evidence.update(self._finish(self.capture))
            except Exception as exc:
                self.notes.append(f"capture failed: {type(exc).__name__}: {exc}")
        if self.notes:
            summary = evidence.setdefault("wire_summary", {})
            summary["notes"] = [*summary.get("notes", []), *self.notes]
        return evidence

    def _finish(self, capture: Capture) -> dict[str, Any]:
        capture.stop()
        evidence: dict[str, Any] = {"wire_summary": capture.summary(self.ports)}
        if self.artifacts_dir is None:
            self.notes.append("no report directory: the pcap was not written")
            return evidence
        relative = Path("pcaps") / f"{self.slug}.pcap"
        capture.write_pcap(self.artifacts_dir / relative)
        evidence["pcap"] = relative.as_posix()
        return evidence
