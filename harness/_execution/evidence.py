"""Bounded evidence: what a case keeps of its event log, wire log and findings.

A case that goes wrong on every connection would otherwise carry thousands of
events and one finding per connection into every report; a report directory
must stay small enough for CI artifact stores however broken the server is.
What is kept is what explains the failure:

* the event log keeps whole connections — the ones a finding names first,
  then the server's own events, then the others in order — up to
  ``MAX_EVENTS`` events;
* the wire log keeps failed clients first, up to ``MAX_CLIENTS``;
* findings that say the same thing (same check, expected and observed, but for
  the connection) keep ``MAX_SAME`` examples, and at most ``MAX_FINDINGS`` in all.

What was dropped is counted under ``evidence["dropped"]``, so a report can say
so.  Stdlib only, Python 3.7+ (this runs in the worker).
"""

from __future__ import annotations

import re
from collections import OrderedDict
from typing import Any, Callable, Sequence

from harness._model.records import Finding, LifecycleEvent

MAX_EVENTS = 400
MAX_CLIENTS = 50
MAX_SAME = 5
MAX_FINDINGS = 100
_CONN = re.compile(r"conn#\d+")


def bounded_evidence(
    events: Sequence[LifecycleEvent],
    wire: Sequence[Any],
    findings: Sequence[Finding],
    compact: Callable[[LifecycleEvent], dict[str, Any]],
) -> dict[str, Any]:
    """``event_log``, ``wire`` and, when anything was cut, ``dropped`` for a case's evidence."""
    involved = [f.conn for f in findings if f.conn is not None]
    kept, dropped_events, dropped_conns = bounded_events(events, involved)
    clients = bounded_wire(wire)
    out: dict[str, Any] = {"event_log": [compact(e) for e in kept], "wire": clients}
    dropped: dict[str, Any] = {}
    if dropped_events:
        dropped["events"] = dropped_events
        dropped["connections"] = dropped_conns
    if len(clients) < len(wire):
        dropped["clients"] = len(wire) - len(clients)
    if dropped:
        out["dropped"] = dropped
    return out


def bounded_events(
    events: Sequence[LifecycleEvent], involved: Sequence[int], limit: int = MAX_EVENTS
) -> tuple[list[LifecycleEvent], int, int]:
    """Whole connections up to ``limit`` events: (kept in time order, events dropped,
    connections dropped).  A first connection longer than ``limit`` keeps its head."""
    groups: OrderedDict[int | None, list[int]] = OrderedDict()
    for index, event in enumerate(events):
        groups.setdefault(event.conn, []).append(index)
    order: list[int | None] = [c for c in dict.fromkeys(involved) if c in groups]
    order += [None] if None in groups and None not in order else []
    order += [c for c in groups if c not in order]
    chosen: list[int] = []
    dropped_conns = 0
    for conn in order:
        indices = groups[conn]
        room = limit - len(chosen)
        if len(indices) <= room:
            chosen.extend(indices)
        elif not chosen:
            chosen.extend(indices[:room])
        else:
            dropped_conns += conn is not None
    chosen.sort()
    return [events[i] for i in chosen], len(events) - len(chosen), dropped_conns


def bounded_wire(wire: Sequence[Any], limit: int = MAX_CLIENTS) -> list[Any]:
    """At most ``limit`` clients of a wire log, failed ones first, in their order."""
    if len(wire) <= limit:
        return list(wire)
    failed = [i for i, w in enumerate(wire) if isinstance(w, dict) and not w.get("ok")]
    first = set(failed)
    rest = [i for i in range(len(wire)) if i not in first]
    return [wire[i] for i in sorted((failed + rest)[:limit])]


def bounded_findings(findings: Sequence[Finding], evidence: dict[str, Any]) -> list[Finding]:
    """Findings with repeats cut to ``MAX_SAME`` examples (``MAX_FINDINGS`` in all);
    the count dropped per check goes to ``evidence["dropped"]["findings"]``."""
    seen: dict[tuple[str, str, str, str], int] = {}
    kept: list[Finding] = []
    dropped_by_check: dict[str, int] = {}
    for finding in findings:
        key = (
            finding.check,
            _CONN.sub("conn#N", finding.message),
            finding.expected,
            finding.observed,
        )
        seen[key] = seen.get(key, 0) + 1
        if seen[key] > MAX_SAME or len(kept) >= MAX_FINDINGS:
            dropped_by_check[finding.check] = dropped_by_check.get(finding.check, 0) + 1
        else:
            kept.append(finding)
    if dropped_by_check:
        evidence.setdefault("dropped", {})["findings"] = dropped_by_check
    return kept
