"""Signatures: the reasons a case failed, told by what went wrong and not where.

Each reason gets a *signature* made from the check and the normalised expected
vs observed values — never from where it happened: transport, kind, the case's
parameters, addresses, ports, connection numbers, pids and byte values are
left out (``normalise``).  The rules:

1. A hook-order finding (expected and observed are ``a → b → c`` sequences,
   whatever the check that made it) is split into *deviations*, each a reason
   of its own: a hook that ran before a hook it must follow had run (``handle
   before setup``, judged against ``HOOK_ORDER``, the one order of every hook
   in ``harness._model.lifecycle``), a hook missing (``no finish``) or
   repeated (``extra handle``).  The full sequences differ between a forking
   child and a threading server; the deviations do not.
2. A hang is signed by its phase (what did not return) and the top frames of
   the stacks outside the harness; a crash by its reason.  A finding that only
   restates the hang or crash is not a second reason, and a resource left
   behind by a case that hung or crashed is its consequence (``LEAKS``).
3. Any other finding is signed by its check id and its normalised expected and
   observed values (its message when it has neither).

A reason's ``rank`` says what it can explain (``harness._report.problems``,
rule 4): 0 for hooks out of order; 1 for hooks missing or repeated, and for a
hang or crash (which explain only leaks); 2 for anything else.  Each reason
carries a one-line diagnosis in the words of the socketserver contract
(``DIAGNOSES``; the finding's own message when no sentence fits).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

from harness._model.lifecycle import (
    HANDLER_PATH,
    REQUEST_HEAD,
    REQUEST_TAIL,
    by_conn,
    entries,
    expected_paths,
)
from harness._model.records import LifecycleEvent
from harness._report.model import CaseView

#: What a hang's phase is called when the case body itself ran out of time.
CASE_BODY = "the case"
#: What a hang or crash explains: a case torn down by force leaves its resources behind.
LEAKS = "resources."
#: One-line diagnoses per check id: the socketserver contract in words.
DIAGNOSES: Mapping[str, str] = {
    "errors.handle_error_once": "handle_error() is not called exactly once per failed request",
    "errors.handle_error_args": "handle_error() gets the wrong request or client_address",
    "errors.handle_error_context": "handle_error() runs outside the handling of the exception",
    "errors.handle_error_before_shutdown": "a failed request is not shut down after handle_error()",
    "errors.interrupt_propagates": (
        "KeyboardInterrupt or SystemExit raised in a handler does not stop the server loop"
    ),
    "errors.reported": "an exception in a handler is not reported through handle_error()",
    "requests.lost": "a request the server accepted is never handled, in any process or thread",
    "requests.repeated": "one accepted request is handled more than once",
    "lifecycle.process": "hooks run in another process than the server kind allows",
    "lifecycle.request.nesting": "a hook runs outside the hook that should call it",
    "lifecycle.handler.attributes": "the handler's request, client_address or server is wrong",
    "concurrency.sync_overlap": "a synchronous server runs two handlers at once",
    "concurrency.overlap": "handlers of a concurrent server do not run at the same time",
    "resources.fds": "sockets or file descriptors stay open after server_close()",
    "resources.fds.flat": "each request leaves a file descriptor open",
    "resources.threads": "server_close() returns while handler threads are still running",
    "resources.children": "child processes are still running after server_close()",
    "resources.zombies": "finished child processes are never reaped",
    "clients.ok": "clients cannot complete their exchange with the server",
    "clients.io": "a client's socket call fails during the exchange",
    "replies.echo": "clients do not get their own bytes back",
    "implementation.raised": "the implementation raises an exception out of its own code",
    "events.overflow": "the server loops without end, producing events without bound",
    "teardown.server_close": "server_close() raises",
}
#: The order every expected hook path follows (each path is a subsequence of it).
HOOK_ORDER: tuple[str, ...] = (
    *REQUEST_HEAD,
    "process_request",
    "finish_request",
    *HANDLER_PATH,
    *REQUEST_TAIL,
)
_TRANSPORTS = ("tcp", "unix_stream", "udp", "unix_dgram", "tcp6", "udp6")
_KINDS = ("sync", "threading", "forking")
_ARROW = re.compile(r"\s*→\s*")
_NOISE: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"""b(['"])(?:\\.|(?!\1).)*\1…?"""), "b'…'"),  # byte values
    (re.compile(r"<[\w.]+ object at 0x[0-9a-fA-F]+>"), "<object>"),
    (re.compile(r"<socket\.socket [^>]*>"), "<socket>"),
    (
        re.compile(r"\[?'(?:\d{1,3}\.){3}\d{1,3}', \d+\]?|\[?'[0-9a-f:]*:[0-9a-f:]*', \d+\]?"),
        "ADDR",
    ),
    (re.compile(r"(?:\d{1,3}\.){3}\d{1,3}(?::\d+)?"), "ADDR"),
    (re.compile(r"(?:/[\w.@+-]+)+/?"), "ADDR"),  # a path: a Unix socket's address, mostly
    (re.compile(r"""[('"\[]+ADDR[)'"\]]+"""), "ADDR"),
    (re.compile(r"\b(?:" + "|".join((*_TRANSPORTS, *_KINDS)) + r")\b"), "T"),
    (re.compile(r"\b\w*(?:TCP|UDP|Unix|Threading|Forking)\w*"), "CLASS"),  # server classes
    # An exception's type says what went wrong; its text varies with the transport.
    (re.compile(r"\b(\w+(?:Error|Exception|Timeout)): [^;|]*"), r"\1"),
    (re.compile(r"0x[0-9a-fA-F]+"), "N"),
    (re.compile(r"\d+(?:\.\d+)?"), "N"),
    (re.compile(r"(\b[\w .:-]+?)(?:, \1)+\b"), r"\1, …"),  # lists of any length
)
#: Check families that say the same kind of thing (rule 5 merges within a family):
#: what the clients saw, whatever the scenario family that looked.
_FAMILIES = dict.fromkeys(("replies", "stream", "datagram", "wire", "echo", "packets"), "clients")
_FRAME = re.compile(r'File "([^"]+)", line \d+, in (\S+)')
_HARNESS_FILES = re.compile(
    r"^<|[/\\](harness|scenarios|hypothesis|site-packages|(threading|selectors|runpy)\.py)"
)
_EVENT_FIELDS = tuple(f.name for f in fields(LifecycleEvent))


@dataclass(frozen=True)
class Reason:
    """One reason a case failed: its signature, the sentence that says it, and its rank.

    ``rank`` orders the reasons that explain others (``harness._report.problems``,
    rule 4): 0 for hooks out of order; 1 for hooks missing or repeated, and for a
    hang or crash; 2 for anything else.  ``explains`` limits what a reason can
    explain to checks with that prefix ('' for any): a hang or crash explains
    only the resources its case could not release.
    """

    signature: str
    diagnosis: str
    check: str
    rank: int = 2
    explains: str = ""

    @property
    def family(self) -> str:
        """What kind of reason: ``hook order`` for deviations, else the check's family."""
        if self.rank == 0 or self.check.endswith("order"):
            return "hook order"
        family = self.check.split(".", 1)[0]
        return _FAMILIES.get(family, family)


def case_reasons(case: CaseView) -> list[Reason]:
    """The distinct reasons ``case`` failed, in the order of its findings."""
    out: dict[str, Reason] = {}
    if case.verdict == "hang":
        reason = hang_reason(case.reason, _text(case.evidence.get("stacks")))
        out[reason.signature] = reason
    elif case.verdict == "crash":
        sig = f"crash: {normalise(case.reason, case.params)}"
        diagnosis = f"the server process crashed: {case.reason}"
        out[sig] = Reason(sig, diagnosis, "crash", 1, LEAKS)
    elif case.verdict == "xpass":
        sig = f"xpass: {case.scenario}"
        out[sig] = Reason(sig, f"{case.scenario} passed although expected to fail", "xpass")
    restated = normalise(case.reason) if case.verdict in ("hang", "crash") else ""
    for finding in case.findings:
        if restated and restated in normalise(f"{finding.message} {finding.observed}"):
            continue  # the finding only restates the hang or crash: not a reason of its own
        for reason in reasons_of(finding, case.params):
            out.setdefault(reason.signature, reason)
    if not out:
        why = case.reason or case.verdict
        sig = f"{case.verdict}: {normalise(why, case.params)}"
        out[sig] = Reason(sig, why, case.verdict)
    return list(out.values())


def reasons_of(finding: Any, params: Mapping[str, Any] | None = None) -> list[Reason]:
    """The reasons one finding stands for: its deviations (rule 1), or itself (rule 3),
    with the values of the case's ``params`` left out of its texts."""
    check, expected, observed = finding.check, finding.expected, finding.observed
    if "→" in expected:
        want = _steps(expected)
        got = [] if observed.strip() in ("", "(nothing)") else _steps(observed)
        known = set(HOOK_ORDER) | set(want) | {"handle_error"}
        steps = deviation(want, got) if all(name in known for name in got) else []
        if steps:
            return [_deviation_reason(step, check) for step in steps]
    if expected or observed:
        sig = (
            f"{check}: expected {normalise(expected, params)}"
            f" observed {normalise(observed, params)}"
        )
    else:
        sig = f"{check}: {normalise(finding.message, params)}"
    return [Reason(sig, DIAGNOSES.get(check) or _first_line(finding.message), check)]


def _deviation_reason(step: str, check: str) -> Reason:
    rank = 0 if " before " in step else 1
    return Reason(f"hook order: {step}", order_diagnosis(step), check, rank)


def hang_reason(reason: str, stacks: str) -> Reason:
    """Rule 2: a hang signed by what did not return and where the implementation sat."""
    phase = reason.split(" did not ", 1)[0] if " did not " in reason else reason
    if phase.startswith("case") or not phase:
        phase = CASE_BODY
    frames = top_frames(stacks)
    where = f" in {' / '.join(frames)}" if frames else ""
    sig = f"hang: {normalise(phase)}{where}"
    return Reason(sig, f"{phase} never returns{where}", "hang", 1, LEAKS)


def top_frames(stacks: str, per_thread: int = 2, threads: int = 3) -> list[str]:
    """Function names of the innermost non-harness frames of each thread, deduplicated."""
    found: list[str] = []
    for chunk in re.split(r"\n(?=Thread 0x)", stacks):
        names = [fn for path, fn in _FRAME.findall(chunk) if not _HARNESS_FILES.search(path)]
        if names:
            found.append(" < ".join(reversed(names[-per_thread:])))
    return sorted(set(found))[:threads]


def deviation(expected: Sequence[str], observed: Sequence[str]) -> list[str]:
    """What differs between two hook sequences, as position-free statements.

    ``B before A``: hook B ran while hook A, which the expected path has and
    ``HOOK_ORDER`` puts before B, had not run yet (later or never) — told once
    per A, for the first such B.  ``no A``: A ran fewer times than expected;
    ``extra A``: more times.
    """
    want, got = Counter(expected), Counter(observed)
    out = [f"no {name}" for name in want if got[name] < want[name]]
    out += [f"extra {name}" for name in got if got[name] > want[name]]
    rank = {name: n for n, name in enumerate(HOOK_ORDER)}
    for a in dict.fromkeys(n for n in expected if n in rank):
        ran = observed.index(a) if a in observed else len(observed)
        early = [b for b in observed[:ran] if rank.get(b, -1) > rank[a]]
        if early:
            out.append(f"{early[0]} before {a}")
    return sorted(out)


def order_diagnosis(step: str) -> str:
    """``handle() runs before setup() has run``: one deviation as a contract sentence."""
    if step.startswith("no "):
        return f"{step[3:]}() is not called"
    if step.startswith("extra "):
        return f"{step[6:]}() is called more often than the contract says"
    b, _, a = step.partition(" before ")
    return f"{b}() runs before {a}() has run"


def deviations_in_log(case: CaseView) -> set[str]:
    """Hook-order deviations in the case's event log, whether or not a check looked."""
    raw = case.evidence.get("event_log")
    if not isinstance(raw, list):
        return set()
    events = [e for e in (_event(item) for item in raw) if e is not None]
    owner = next((e.pid for e in events if e.name == "get_request"), None)
    kind = _text(case.params.get("kind")) or "threading"
    found: set[str] = set()
    for conn_events in by_conn(events).values():
        if not any(e.name == "get_request" for e in conn_events):
            continue
        setup_raised = any(e.name == "setup" and e.phase == "raise" for e in conn_events)
        accepted = not any(
            e.name == "verify_request" and e.phase == "return" and not e.detail.get("result", True)
            for e in conn_events
        )
        steps = entries(conn_events)
        for role, want in expected_paths(kind, accepted, setup_raised).items():
            got = [e.name for e in steps if (e.pid == owner) == (role == "server")]
            found.update(f"hook order: {step}" for step in deviation(want, got))
    return found


def normalise(text: str, params: Mapping[str, Any] | None = None) -> str:
    """``text`` without what varies between cases of one bug: the case's parameter values
    (as whole words), numbers, addresses, paths, byte values, transports and kinds."""
    flat = " ".join(text.split())
    for value in (params or {}).values():
        if isinstance(value, str) and len(value) > 1:
            flat = re.sub(rf"(?<![\w.]){re.escape(value)}(?![\w])", "P", flat)
    for pattern, replacement in _NOISE:
        flat = pattern.sub(replacement, flat)
    return flat[:300]


def _steps(sequence: str) -> list[str]:
    """Hook names of an ``a → b raised X → c`` sequence (raise and MISSING marks dropped)."""
    return [t.split()[0] for t in _ARROW.split(sequence.strip()) if t.strip()]


def _event(item: Any) -> LifecycleEvent | None:
    if not isinstance(item, Mapping):
        return None
    try:
        values = {k: item[k] for k in _EVENT_FIELDS if k in item}
        if not isinstance(values.get("detail"), dict):
            values["detail"] = {}
        return LifecycleEvent(**values)
    except TypeError:
        return None


def _first_line(text: str) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return re.sub(r"conn#\d+:\s*", "", line)[:200]


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""
