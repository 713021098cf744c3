"""Observable outcomes of a case, normalised so that two implementations compare.

Differential judging (``--oracle``) runs every case on the target and on an
oracle with the same seed and compares what each side *observably* did.  This
module turns one side's raw record into an ``Observation``: a few sections,
each a multiset of text lines (line → count), so that the comparison is a
plain multiset difference and the diff reads as text:

``clients``
    per client: its operations, what it sent, what it received (length, first
    bytes, CRC) and how it ended (``ok``, ``EOF``, ``ConnectionResetError``,
    ``TimeoutError``…);
``connections``
    per connection (whichever server accepted it): its hooks as nested
    calls, one *lane* per thread or process
    (``finish_request(setup() handle()!ValueError finish())``), a call that
    never returned marked ``…blocked``;
``server``
    per server: the hooks run outside any connection (``serve_forever()``,
    ``shutdown()``, ``handle_request(handle_timeout())``);
``handle_error``
    how many times ``handle_error`` ran;
``resources``
    what was left after the case: descriptors by kind, threads, children.

What varies from run to run is left out, never compared: times, ports,
addresses, pids, thread ids, connection numbers and server numbers (servers
are numbered by first appearance), the order of concurrent connections and
clients (multisets, not sequences), the interleaving of lanes, and the polls
a loop makes while idle (``service_actions``, a ``get_request`` that found
nothing).  Stdlib only, Python 3.7+: the worker computes it.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import replace
from typing import Any, Dict, Iterable, Mapping, Sequence

from harness._model.records import LifecycleEvent

#: The sections of an observation, in the order a diff shows them.
SECTIONS = ("clients", "connections", "server", "handle_error", "resources")
#: A section is a multiset of lines: each line with how many times it was seen.
Observation = Dict[str, Dict[str, int]]

#: Hooks run on every poll of a loop: how often is timing, not behaviour.
_POLLS = ("service_actions",)
#: Event details that are behaviour (a verify_request verdict, a descriptor left
#: open by close_request, a request closed by the collector); others (addresses,
#: instance ids, pids) vary from run to run.
_DETAILS = ("result", "fd_open", "closed_by")
#: Exception type names that mean the same across versions (socket.timeout became
#: an alias of TimeoutError in 3.10).
_SAME_ERROR = {"timeout": "TimeoutError", "socket.timeout": "TimeoutError"}
_DIGITS = re.compile(r"\d+")
_MASK = re.compile(rb"\d+|sockspec-[A-Za-z0-9_]+")
_TEXT = re.compile(rb"[\x20-\x7e\t\r\n]*")
PREVIEW = 12


def observe(
    events: Sequence[LifecycleEvent],
    wire: Sequence[Mapping[str, Any]],
    leaks: Mapping[str, Iterable[str]],
    t0: float | None = None,
) -> Observation:
    """The normalised observation of one case run (see the module docstring).

    ``wire`` is the case's wire log (``harness._runtime.wirelog``), ``leaks``
    the leftovers by kind (``fds``: descriptor targets, ``threads``: names,
    ``children``: statuses), ``t0`` the time its wire log counts from: with it,
    writing to a client that had already gone is not told from a write that
    found it still there (``settle_races``).
    """
    ends = [float(w["end"]) for w in wire if isinstance(w.get("end"), (int, float))]
    if t0 is not None and ends:
        events = settle_races(events, t0 + min(ends))
    servers = _server_numbers(events)
    conns, loose = _split(events)
    out = {
        "clients": sorted(client_line(w) for w in wire if isinstance(w, Mapping)),
        "connections": sorted(_conn_line(group) for group in conns.values()),
        "server": sorted(_server_lines(servers, loose)),
        "handle_error": [],
        "resources": sorted(_resource_lines(leaks)),
    }
    errors = sum(1 for e in events if e.name == "handle_error" and e.phase == "call")
    if errors:
        out["handle_error"] = [f"handle_error called {errors} time(s)"]
    return {name: dict(sorted(Counter(lines).items())) for name, lines in out.items()}


def client_line(entry: Mapping[str, Any]) -> str:
    """One client of the wire log: operations, sizes sent and received, how it ended,
    then (after `` — ``) what the bytes were: ``Send RecvAll: sent 4 bytes, received
    4 bytes, ok — b'ping' / b'pong'``."""
    ops = " ".join(str(op) for op in entry.get("ops") or ())
    ending = "ok"
    if not entry.get("ok"):
        error = str(entry.get("error") or "error")
        kind = error.split(":", 1)[0].strip()
        ending = _SAME_ERROR.get(kind, kind)
    sent, received = _bytes(entry.get("sent")), _bytes(entry.get("received"))
    return (
        f"{ops or '(no ops)'}: sent {sent[0]}, received {received[0]}, {ending}"
        f" — {sent[1]} / {received[1]}"
    )


def _bytes(preview: Any) -> tuple[str, str]:
    """Size, and first bytes with a CRC, with numbers and temporary paths masked in
    text (``harness._runtime.wirelog``): ports and pids in a reply vary between runs."""
    if not isinstance(preview, Mapping) or not preview.get("len"):
        return "nothing", "-"
    head = bytes.fromhex(str(preview.get("head", "")))
    head = (_MASK.sub(b"#", head) if _TEXT.fullmatch(head) else head)[:PREVIEW]
    shape = preview.get("shape")
    if not isinstance(shape, list) or len(shape) != 2:
        return f"{preview['len']} bytes", repr(head)
    more = "…" if shape[0] > len(head) else ""
    tail = f" crc {shape[1]:08x}" if more else ""
    size = f"{shape[0]} bytes" + ("" if shape[0] == preview["len"] else " (masked)")
    return size, f"{head!r}{more}{tail}"


#: What a write to a client that has gone raises (a Unix datagram client's socket
#: file removed, a stream closed): whether the client was still there is timing.
PEER_GONE = frozenset(
    {"FileNotFoundError", "ConnectionRefusedError", "BrokenPipeError",
     "ConnectionResetError", "ConnectionAbortedError"}
)  # fmt: skip


class _Frame:
    """A call open in a lane while ``settle_races`` reads it."""

    def __init__(self) -> None:
        self.settled = False  # a call inside it raised PEER_GONE, read as not raised
        self.raised: str | None = None  # the last other exception a call inside it raised


def settle_races(events: Sequence[LifecycleEvent], since: float) -> list[LifecycleEvent]:
    """``events`` with a race left open by the case settled one way.

    Once a client has finished (``since``), a hook that writes to a client
    raises ``PEER_GONE`` or not depending on whether that client has closed
    yet.  Such a raise is read as a return, and a call that raised it only
    because a call inside it did, as raising what it would have raised
    otherwise (``finish_request`` re-raising ``handle``'s ``ValueError``
    after ``finish()`` failed to write, or returning).
    """
    out: list[LifecycleEvent] = []
    stacks: dict[tuple[int, int], list[_Frame]] = {}
    for event in sorted(events, key=lambda e: e.seq):
        stack = stacks.setdefault((event.pid, event.thread_id), [])
        if event.phase == "call":
            stack.append(_Frame())
        elif event.phase in ("return", "raise") and stack:
            frame = stack.pop()
            if event.phase == "raise" and event.exc_type in PEER_GONE and event.t >= since:
                if frame.settled and frame.raised:
                    event = replace(event, exc_type=frame.raised, exc=None)
                else:
                    event = replace(event, phase="return", exc_type=None, exc=None)
                if stack:
                    stack[-1].settled = True
            if event.phase == "raise" and stack and event.exc_type not in PEER_GONE:
                stack[-1].raised = event.exc_type
        out.append(event)
    return out


def _server_numbers(events: Sequence[LifecycleEvent]) -> dict[int, int]:
    numbers: dict[int, int] = {}
    for event in events:
        if event.server not in numbers:
            numbers[event.server] = len(numbers) + 1
    return numbers


def _split(
    events: Sequence[LifecycleEvent],
) -> tuple[dict[int, list[LifecycleEvent]], list[LifecycleEvent]]:
    """Events per connection, and the others (a poll that found nothing left out)."""
    conns: dict[int, list[LifecycleEvent]] = {}
    loose: list[LifecycleEvent | None] = []
    pending: dict[tuple[int, int], int] = {}  # lane → index in loose of a get_request call
    for event in sorted(events, key=lambda e: e.seq):
        lane = (event.pid, event.thread_id)
        if event.name in _POLLS:
            continue
        if event.conn is not None:
            if event.name == "get_request" and lane in pending:
                loose[pending.pop(lane)] = None
            conns.setdefault(event.conn, []).append(event)
            continue
        if event.name == "get_request":
            if event.phase == "call":
                pending[lane] = len(loose)
            elif event.phase == "return" and lane in pending:
                # Returned without a request (a non-blocking poll): not behaviour.
                loose[pending.pop(lane)] = None
                continue
        loose.append(event)
    return conns, [e for e in loose if e is not None]


def lanes(events: Sequence[LifecycleEvent]) -> list[str]:
    """Each thread's or process's hooks as nested calls, sorted."""
    by_lane: dict[tuple[int, int], list[LifecycleEvent]] = {}
    for event in events:
        by_lane.setdefault((event.pid, event.thread_id), []).append(event)
    return sorted(nested(group) for group in by_lane.values())


def nested(events: Sequence[LifecycleEvent]) -> str:
    """``a(b() c()!ValueError)``: calls of one lane with what ran inside them;
    ``…blocked`` after a call that never returned; repeats as ``×N``."""
    tokens: list[str] = []
    stack: list[str] = []
    for event in events:
        if event.phase == "call":
            tokens.append(_sep(tokens) + event.name + "(")
            stack.append(event.name)
        elif event.phase in ("return", "raise"):
            end = ")" + _outcome(event)
            if event.name in stack:
                while stack and stack[-1] != event.name:
                    stack.pop()
                    tokens.append(")…blocked")
                stack.pop()
                tokens.append(end)
            else:  # its call is elsewhere (get_request's is not a connection's)
                tokens.append(_sep(tokens) + event.name + "(" + end)
        else:
            tokens.append(_sep(tokens) + event.name + "!" + _details(event))
    tokens.extend(")…blocked" for _ in stack)
    return _repeats("".join(tokens))


def _sep(tokens: list[str]) -> str:
    return " " if tokens and not tokens[-1].endswith("(") else ""


def _outcome(event: LifecycleEvent) -> str:
    if event.phase == "raise":
        return "!" + _SAME_ERROR.get(str(event.exc_type), str(event.exc_type))
    return _details(event)


def _details(event: LifecycleEvent) -> str:
    shown = [f"{k}={event.detail[k]!r}" for k in _DETAILS if k in (event.detail or {})]
    return "[{}]".format(",".join(shown)) if shown else ""


_COUNTED = re.compile(r"^(.*\))×(\d+)$")
_REPEAT = re.compile(r"(?:(?<=[ (])|^)([\w]+\(\)[^ ()]*)(?: \1)+(?=[ )]|$)")


def _repeats(text: str) -> str:
    """``a() a() a()`` → ``a()×3``: short to read, the count still compared; but a call
    that raised again and again (``get_request()!OSError``, a loop retrying while
    out of descriptors) → ``get_request()!OSError×+``: how often is timing."""

    def fold(match: re.Match[str]) -> str:
        token = match.group(1)
        if "!" in token:
            return f"{token}×+"
        return f"{token}×{match.group(0).count(' ') + 1}"

    return _REPEAT.sub(fold, text)


def _conn_line(events: Sequence[LifecycleEvent]) -> str:
    # Not which server: with SO_REUSEPORT the kernel picks the one that accepts.
    return " | ".join(lanes(events))


def _server_lines(servers: Mapping[int, int], loose: Sequence[LifecycleEvent]) -> list[str]:
    """Each server's top-level calls, one line each: which thread made a call (the
    scenario's, the serving one, the harness's teardown) and in what order is not
    behaviour of the server."""
    by_server: dict[int, list[LifecycleEvent]] = {}
    for event in loose:
        by_server.setdefault(servers.get(event.server, 0), []).append(event)
    lines = []
    for number, group in sorted(by_server.items()):
        by_lane: dict[tuple[int, int], list[LifecycleEvent]] = {}
        for event in group:
            by_lane.setdefault((event.pid, event.thread_id), []).append(event)
        for lane in by_lane.values():
            for call in top_level(nested(lane)):
                # serve_forever() three times in one thread or once in each of three: same.
                repeated = _COUNTED.match(call)
                times = int(repeated.group(2)) if repeated else 1
                lines += [f"server {number}: {repeated.group(1) if repeated else call}"] * times
    return lines


def top_level(text: str) -> list[str]:
    """``a(b() c()) d()`` → ``["a(b() c())", "d()"]``."""
    out, depth, start = [], 0, 0
    for index, char in enumerate(text):
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif char == " " and depth == 0:
            out.append(text[start:index])
            start = index + 1
    out.append(text[start:])
    return [item for item in out if item]


def _resource_lines(leaks: Mapping[str, Iterable[str]]) -> list[str]:
    lines = []
    for kind in ("fds", "threads", "children"):
        counts = Counter(_DIGITS.sub("N", str(v)) for v in leaks.get(kind) or ())
        lines += [f"{kind} left: {what} ×{n}" for what, n in sorted(counts.items())]
    return lines
