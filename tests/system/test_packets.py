"""Packet capture, crafted packets and the firewall rule that crafted TCP needs.

Tests marked ``network`` need raw sockets and libpcap (root or CAP_NET_RAW) and,
for the firewall, nftables; they are skipped with the reason when the host lacks
them.  The others run anywhere.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from helpers.cli import CliRun
from helpers.host import lacks
from helpers.mutant import Mutant

from harness import Endpoint, Unsupported, Verdict, load_implementation
from harness._execution.discovery import discover, select_cases
from harness._execution.execute import execute
from harness._model.scenario import Case
from harness._model.settings import CaseOptions
from harness._wire import capture as _capture
from harness._wire import crafted as _packets
from harness._wire.capture import CaseCapture, connection_summary
from harness._wire.crafted import (
    RawSender,
    Segment,
    drop_kernel_resets,
    firewall_support,
    parse_frame,
    raw_packet_support,
    remove_stale_tables,
    sockspec_tables,
    stale_tables,
    udp_datagram,
)

RAW_REASON = raw_packet_support()
FIREWALL_REASON = firewall_support() if RAW_REASON is None else RAW_REASON

without_raw = pytest.mark.skipif(
    RAW_REASON is not None, reason=lacks("raw packets", str(RAW_REASON))
)
without_firewall = pytest.mark.skipif(
    FIREWALL_REASON is not None,
    reason=lacks("raw packets" if RAW_REASON else "nftables", str(FIREWALL_REASON)),
)

#: Suffix of the table the dead-owner test plants (other tests must not mistake it).
DEAD_SUFFIX = "planted"

#: A bug that makes every TCP case with clients fail: requests are accepted, never handled.
UNHANDLED = Mutant(
    "requests_never_handled",
    "        self.RequestHandlerClass(request, client_address, self)",
    "        pass",
    caught_by="packets.tcp.half_open[tcp-sync-*",
)


def _case(case_id: str) -> Case:
    (case,) = [c for c in select_cases(discover(), (case_id,), "stress") if c.id == case_id]
    return case


def _segment(
    src: str, dst: str, flags: str, length: int = 0, seq: int = 0, ack: int = 0
) -> Segment:
    (sa, sp), (da, dp) = src.split(":"), dst.split(":")
    return Segment(0.0, "tcp", sa, int(sp), da, int(dp), flags, seq, ack, length)


# --- anywhere -------------------------------------------------------------------------


def test_parse_frame_reads_addresses_flags_and_sequence() -> None:
    from scapy.layers.inet import IP, TCP
    from scapy.layers.l2 import Ether

    frame = bytes(
        Ether()
        / IP(src="127.0.0.2", dst="127.0.0.1")
        / TCP(sport=4000, dport=80, flags="PA", seq=7, ack=9)
        / b"hello"
    )
    seg = parse_frame(frame, 1.5)
    assert seg == Segment(1.5, "tcp", "127.0.0.2", 4000, "127.0.0.1", 80, "PA", 7, 9, 5)


def test_parse_frame_reads_ipv6_fragments() -> None:
    from scapy.layers.l2 import Ether

    datagram = udp_datagram(("::1", 5000), ("::1", 53), b"x" * 3000)
    frames = [bytes(Ether() / f) for f in _packets.fragments(datagram, 1000, ident=7)]
    segs = [parse_frame(f, 0.0) for f in frames]
    assert segs[0] is not None and segs[0].proto == "udp" and segs[0].fragmented
    assert segs[0].length == 3000  # the UDP header's length: the whole datagram
    assert all(s is not None and s.proto == "fragment" for s in segs[1:])


def test_summary_tells_handshake_who_closed_first_and_how() -> None:
    c, s = "127.0.0.1:40000", "127.0.0.1:80"
    segments = [
        _segment(c, s, "S"),
        _segment(s, c, "SA"),
        _segment(c, s, "A"),
        _segment(c, s, "PA", 5),
        _segment(s, c, "FA"),
        _segment(c, s, "R"),
        _segment("127.0.0.1:40001", s, "S"),
    ]
    summary = connection_summary(segments, [80])
    first, second = summary["connections"]
    assert first["handshake"] == "complete" and first["first_close"] == "server"
    assert (first["client_close"], first["server_close"]) == ("RST", "FIN")
    assert first["bytes_to_server"] == 5
    assert second["handshake"] == "SYN only" and second["first_close"] is None
    assert summary["totals"]["with_rst"] == 1


@pytest.mark.parametrize("client_isn", [2176898462, 2**32 - 3])  # the second wraps mid-stream
def test_rst_after_both_fins_are_acked_is_not_a_close(client_isn: int) -> None:
    """Packets of a CI run: after a clean close the server's kernel sent a stray ACK,
    the client answered and the closed socket replied RST.  That RST is no abortive close."""
    c, s, m = "127.0.0.1:47350", "127.0.0.1:41277", 2**32
    ci, si = client_isn, 2277868837
    segments = [
        _segment(c, s, "S", seq=ci),
        _segment(s, c, "SA", seq=si, ack=(ci + 1) % m),
        _segment(c, s, "A", seq=(ci + 1) % m, ack=si + 1),
        _segment(c, s, "PA", 402, seq=(ci + 1) % m, ack=si + 1),
        _segment(s, c, "A", seq=si + 1, ack=(ci + 403) % m),
        _segment(c, s, "FA", seq=(ci + 403) % m, ack=si + 1),
        _segment(s, c, "PA", 402, seq=si + 1, ack=(ci + 404) % m),
        _segment(c, s, "A", seq=(ci + 404) % m, ack=si + 403),
        _segment(s, c, "FA", seq=si + 403, ack=(ci + 404) % m),
        _segment(c, s, "A", seq=(ci + 404) % m, ack=si + 404),
        _segment(s, c, "A", seq=si + 1, ack=(ci + 404) % m),  # the stray one
        _segment(c, s, "A", seq=(ci + 404) % m, ack=si + 404),
        _segment(s, c, "R", seq=si + 404),
    ]
    summary = connection_summary(segments, [41277])
    (conn,) = summary["connections"]
    assert (conn["client_close"], conn["server_close"]) == ("FIN", "FIN")
    assert conn["after_close"] == "RST"
    assert summary["totals"]["with_rst"] == 0 and summary["totals"]["rst_after_close"] == 1


def test_rst_before_the_last_fin_is_acked_is_a_close() -> None:
    c, s = "127.0.0.1:40000", "127.0.0.1:80"
    segments = [
        _segment(c, s, "S", seq=99),
        _segment(s, c, "SA", seq=9, ack=100),
        _segment(c, s, "A", seq=100, ack=10),
        _segment(c, s, "PA", 5, seq=100, ack=10),
        _segment(s, c, "FA", seq=10, ack=100),  # shutdown(SHUT_WR) with data unread
        _segment(c, s, "A", seq=105, ack=11),
        _segment(s, c, "R", seq=11),  # close(): the unread data resets the connection
    ]
    (conn,) = connection_summary(segments, [80])["connections"]
    assert (conn["server_close"], conn["after_close"]) == ("FIN+RST", "none")


def test_crafted_packets_only_go_to_loopback() -> None:
    with RawSender() as raw, pytest.raises(ValueError, match="only loopback"):
        raw.send(udp_datagram(("127.0.0.1", 5000), ("192.0.2.1", 53), b"x"))


def test_missing_privileges_make_cases_unsupported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_packets, "raw_packet_support", lambda: "raw sockets need root")
    with pytest.raises(Unsupported, match="raw sockets need root"):
        _packets.require_raw_packets()


def test_capture_unavailable_is_a_note_not_a_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_capture, "raw_packet_support", lambda: "raw sockets need root")
    recorder = CaseCapture(None, "case")
    endpoint = Endpoint("tcp", socket.AF_INET, socket.SOCK_STREAM, ("127.0.0.1", 5555))
    recorder.watch(SimpleNamespace(endpoint=endpoint, transport="tcp"))  # type: ignore[arg-type]
    evidence = recorder.finish()
    assert "pcap" not in evidence
    assert "raw sockets need root" in evidence["wire_summary"]["notes"][0]


# --- with raw packets ------------------------------------------------------------------


def test_switching_raw_packets_off_makes_packet_cases_unsupported_naming_it(
    cli: Callable[..., CliRun], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOCKSPEC_RAW_PACKETS", "off")
    run = cli("run", "--impl", "stdlib", "--select", "packets.*[tcp-sync-*", "--select", "wire.*")
    assert run.status == 0, run.stderr
    results = run.results()["results"]
    assert {r["id"].split(".")[0] for r in results} == {"packets", "wire"}
    assert all(r["verdict"] == "unsupported" for r in results)
    assert all("SOCKSPEC_RAW_PACKETS=off" in r["reason"] for r in results)


@pytest.mark.network
@without_raw
def test_capture_records_handshake_and_fin_close_of_an_echo_case(tmp_path: Path) -> None:
    from scapy.utils import rdpcap

    options = CaseOptions(capture=True, artifacts_dir=str(tmp_path))
    case = _case("echo.concurrent[tcp-sync-clients=100]")
    result = execute(load_implementation("stdlib"), case, options).result
    assert result.verdict is Verdict.PASS, result.findings
    summary = result.evidence["wire_summary"]
    assert summary["maybe_dropped"] is False
    totals = summary["totals"]
    assert totals["tcp_connections"] == totals["handshakes_complete"] == 100
    assert totals["with_rst"] == 0
    for conn in summary["connections"]:
        assert (conn["client_close"], conn["server_close"]) == ("FIN", "FIN")
        assert conn["first_close"] == "client"  # the echo client half-closes first
    pcap = tmp_path / result.evidence["pcap"]
    assert pcap.parent.name == "pcaps"
    assert len(rdpcap(str(pcap))) == totals["packets"]


@pytest.mark.network
@without_firewall
def test_firewall_rule_is_removed_when_the_block_raises() -> None:
    with pytest.raises(RuntimeError, match="boom"), drop_kernel_resets(9, [20001]) as table:
        assert table in sockspec_tables()
        raise RuntimeError("boom")
    assert table not in sockspec_tables()


@pytest.mark.network
@without_firewall
def test_firewall_rule_is_removed_after_a_failing_case(tmp_path: Path) -> None:
    impl = load_implementation(str(UNHANDLED.write(tmp_path)))
    case = _case("packets.tcp.half_open[tcp-sync-syns=64-clients=8]")
    result = execute(impl, case).result
    assert result.verdict is Verdict.FAIL
    assert "replies.echo" in {f.check for f in result.findings}
    mine = f"{_packets.TABLE_PREFIX}{os.getpid()}_"
    assert not [t for t in sockspec_tables() if t.startswith(mine)]


@pytest.mark.network
@without_firewall
def test_tables_of_dead_processes_are_removed() -> None:
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    table = f"{_packets.TABLE_PREFIX}{int(dead.stdout)}_{DEAD_SUFFIX}"
    subprocess.run(["nft", "add", "table", "inet", table], check=True)
    try:
        # Every run ends by sweeping dead processes' tables host-wide, so another suite's
        # run (tox runs four side by side) may have removed it already: that is this sweep.
        assert table in stale_tables() or table not in sockspec_tables()
        remove_stale_tables()
        assert table not in sockspec_tables()
    finally:
        subprocess.run(["nft", "delete", "table", "inet", table], capture_output=True, check=False)


@pytest.mark.network
@pytest.mark.slow
@without_firewall
def test_packet_and_wire_cases_pass_against_stdlib_and_reference(
    cli: Callable[..., Any],
) -> None:
    run = cli(
        *("run", "--impl", "stdlib", "--impl", "reference", "--jobs", "1", "--quiet"),
        *("--select", "packets.*", "--select", "wire.*"),
    )
    verdicts = run.verdicts()
    assert run.status == 0, run.stderr
    assert verdicts and set(verdicts.values()) == {"pass"}, verdicts
    # The run's workers have exited: none of their tables may remain (the dead-owner
    # test may be running alongside under xdist: its table is not the run's).
    assert [t for t in stale_tables() if not t.endswith(DEAD_SUFFIX)] == []
