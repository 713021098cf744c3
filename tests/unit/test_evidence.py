"""Bounded evidence: what a case keeps of its event log, wire log and findings."""

from __future__ import annotations

from harness._execution.evidence import (
    MAX_FINDINGS,
    MAX_SAME,
    bounded_events,
    bounded_evidence,
    bounded_findings,
    bounded_wire,
)
from harness._model.records import Finding, LifecycleEvent


def event(seq: int, conn: int | None) -> LifecycleEvent:
    return LifecycleEvent(seq, "handle", "call", conn, seq / 1000, 1, 1, "t", False)


def log(conns: int, per_conn: int) -> list[LifecycleEvent]:
    """``conns`` connections of ``per_conn`` events each, interleaved as threads would."""
    return [event(n * conns + c, c) for n in range(per_conn) for c in range(1, conns + 1)]


def test_whole_connections_are_kept_the_involved_ones_first() -> None:
    events = log(conns=50, per_conn=10)
    kept, dropped, conns_dropped = bounded_events(events, involved=[37], limit=100)
    assert len(kept) == 100 and dropped == 400 and conns_dropped == 40
    by_conn = {e.conn for e in kept}
    assert 37 in by_conn and len(by_conn) == 10
    assert all(sum(e.conn == c for e in kept) == 10 for c in by_conn)  # none cut in half
    assert [e.seq for e in kept] == sorted(e.seq for e in kept)  # still in time order


def test_a_first_connection_longer_than_the_limit_keeps_its_head() -> None:
    kept, dropped, _ = bounded_events(log(conns=1, per_conn=500), involved=[1], limit=100)
    assert [e.seq for e in kept] == list(range(1, 101)) and dropped == 400


def test_wire_log_keeps_failed_clients_first() -> None:
    wire = [{"client": n, "ok": n % 25 != 0} for n in range(200)]
    kept = bounded_wire(wire, limit=10)
    assert [w["client"] for w in kept if not w["ok"]] == [0, 25, 50, 75, 100, 125, 150, 175]
    assert len(kept) == 10


def test_evidence_says_what_was_dropped() -> None:
    out = bounded_evidence(log(conns=100, per_conn=10), [{"ok": True}] * 80, [], lambda e: {})
    assert out["dropped"] == {"events": 600, "connections": 60, "clients": 30}
    assert len(out["event_log"]) == 400 and len(out["wire"]) == 50


def test_repeated_findings_keep_a_few_examples_and_a_count() -> None:
    same = [
        Finding("lifecycle.order", f"conn#{n}: out of order", "a → b", "b → a", n)
        for n in range(30)
    ]
    other = [Finding("x.y", f"different {n}", str(n), "") for n in range(200)]
    evidence: dict[str, object] = {}
    kept = bounded_findings(same + other, evidence)
    assert sum(f.check == "lifecycle.order" for f in kept) == MAX_SAME
    assert len(kept) == MAX_FINDINGS
    assert evidence["dropped"] == {
        "findings": {"lifecycle.order": 30 - MAX_SAME, "x.y": 200 - (MAX_FINDINGS - MAX_SAME)}
    }
