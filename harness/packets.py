"""Packet-level tools: loopback capture and crafted packets (root or CAP_NET_RAW).

Everything here refuses destinations outside 127.0.0.0/8 and ::1.  Cases that
need raw packets call ``require_raw_packets(ctx)`` first, which makes them
``unsupported`` (with the reason) on hosts without the capability or libpcap.
"""

from harness._wire.capture import Capture, capture_servers
from harness._wire.crafted import (
    RawSender,
    Segment,
    drop_kernel_resets,
    fragments,
    require_firewall,
    require_raw_packets,
    tcp_segment,
    udp_datagram,
)

__all__ = [
    "Capture",
    "RawSender",
    "Segment",
    "capture_servers",
    "drop_kernel_resets",
    "fragments",
    "require_firewall",
    "require_raw_packets",
    "tcp_segment",
    "udp_datagram",
]
