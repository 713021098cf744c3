"""Triage: failing cases clustered into problems, one per root cause.

A *problem* is what went wrong, whatever the case it showed in.  Each reason a
bad case failed gets a *signature* made from the check and the normalised
expected vs observed values — never from where it happened: transport, kind,
parameters, addresses, ports, connection numbers, pids and byte values are
left out.  The rules:

1. A hook-order finding (expected and observed are ``a → b → c`` sequences,
   whatever the check that made it) is split into *deviations*, each a reason
   of its own: a hook that ran before a hook it must follow had run (``handle
   before setup``, judged against the one order of every hook in
   ``harness._model.lifecycle``), a hook missing (``no finish``) or repeated
   (``extra handle``).  The full sequences differ between a forking child and
   a threading server; the deviations do not.
2. A hang is signed by its phase (what did not return) and the top frames of
   the stacks outside the harness; a crash by its reason.
3. Any other finding is signed by its check id and its normalised expected and
   observed values (its message when it has neither).
4. Hooks running out of order break everything downstream of them, and a
   hook that never runs breaks what it should have done.  Reasons are ranked:
   hooks out of order (0), hooks missing or repeated (1), anything else (2).
   A reason of an implementation that shows *only* in cases whose event log
   also has one deviation of a lower rank (reported by a check in some case of
   that implementation) is a consequence of that deviation: it is listed with
   the deviation's problem, not as a problem of its own.  A reason that also
   shows without it is a problem of its own, and every case with both appears
   under both problems.
5. Hook deviations of an implementation that show in exactly the same cases
   are one problem (a hook skipped takes the hooks it calls with it: ``no
   shutdown_request`` + ``no close_request``).  Other reasons stay apart even
   when they share every case: a hang and a failed check are two problems.

Each problem carries a one-line diagnosis in the words of the socketserver
contract (``DIAGNOSES``; the finding's own message when no sentence fits), its
cases across implementations, and a representative: the smallest case that
shows it (``smallness``).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
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
from harness._report.model import CaseView, FindingView, ReportView

#: What a hang's phase is called when the case body itself ran out of time.
CASE_BODY = "the case"
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
_MUST_FIRST = {"must": 0, "should": 1, "info": 2}
_TRANSPORTS = ("tcp", "unix_stream", "udp", "unix_dgram", "tcp6", "udp6")
_KINDS = ("sync", "threading", "forking")
_ARROW = re.compile(r"\s*→\s*")
_NOISE: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"""b(['"])(?:\\.|(?!\1).)*\1…?"""), "b'…'"),  # byte values
    (
        re.compile(r"\[?'(?:\d{1,3}\.){3}\d{1,3}', \d+\]?|\[?'[0-9a-f:]*:[0-9a-f:]*', \d+\]?"),
        "ADDR",
    ),
    (re.compile(r"(?:\d{1,3}\.){3}\d{1,3}(?::\d+)?"), "ADDR"),
    (re.compile(r"(?:/[\w.@+-]+)+/?"), "PATH"),
    (re.compile(r"\b(?:" + "|".join((*_TRANSPORTS, *_KINDS)) + r")\b"), "T"),
    (re.compile(r"0x[0-9a-fA-F]+"), "N"),
    (re.compile(r"\d+(?:\.\d+)?"), "N"),
)
_FRAME = re.compile(r'File "([^"]+)", line \d+, in (\S+)')
_HARNESS_FILES = re.compile(
    r"^<|[/\\](harness|scenarios|hypothesis|site-packages|(threading|selectors|runpy)\.py)"
)
_EVENT_FIELDS = tuple(f.name for f in fields(LifecycleEvent))


@dataclass(frozen=True)
class Reason:
    """One reason a case failed: its signature, the sentence that says it, and its rank.

    ``rank`` orders the reasons that explain others (rule 4): 0 for hooks out of
    order, 1 for hooks missing or repeated, 2 for anything else.
    """

    signature: str
    diagnosis: str
    check: str
    rank: int = 2


@dataclass(frozen=True)
class Problem:
    """One root cause: every case that shows it, the smallest first."""

    signature: str
    diagnosis: str
    check: str
    cases: tuple[CaseView, ...]
    consequences: tuple[tuple[str, int], ...] = ()
    impls: tuple[str, ...] = field(default=())
    stored_transcript: str = ""

    @property
    def representative(self) -> CaseView:
        """The smallest case that shows the problem."""
        return self.cases[0]

    @property
    def others(self) -> tuple[CaseView, ...]:
        """The affected cases but the representative."""
        return self.cases[1:]

    def in_impl(self, spec: str) -> tuple[CaseView, ...]:
        """The affected cases of one implementation, smallest first."""
        return tuple(c for c in self.cases if c.impl == spec)

    def finding(self) -> FindingView | None:
        """The representative's finding that shows this problem, if one does."""
        parts = set(self.signature.split(" + "))
        for finding in self.representative.findings:
            if parts & {r.signature for r in reasons_of(finding, self.representative.params)}:
                return finding
        return None

    def transcript(self) -> str:
        """The representative's transcript for this problem ('' when it has none)."""
        if self.stored_transcript:
            return self.stored_transcript
        rep = self.representative
        for finding in rep.findings:
            mine = {r.signature for r in reasons_of(finding, rep.params)}
            if finding.transcript and mine & set(self.signature.split(" + ")):
                return finding.transcript
        return next((f.transcript for f in rep.findings if f.transcript), "")

    def to_json(self) -> dict[str, Any]:
        """The ``problems`` entry of results.json."""
        rep = self.representative
        return {
            "signature": self.signature,
            "diagnosis": self.diagnosis,
            "check": self.check,
            "count": len(self.cases),
            "impls": {spec: len(self.in_impl(spec)) for spec in self.impls},
            "representative": {
                "impl": rep.impl,
                "id": rep.id,
                "verdict": rep.verdict,
                "replay": rep.replay,
                "transcript": self.transcript(),
            },
            "cases": [[c.impl, c.id] for c in self.cases],
            "consequences": [{"signature": s, "cases": n} for s, n in self.consequences],
        }


def problems_of(view: ReportView) -> list[Problem]:
    """The view's problems: its document's ``problems`` section when it has one (made
    from the complete evidence), else clustered from its cases."""
    if not view.problem_records:
        return cluster(view.cases)
    problems = []
    for raw in view.problem_records:
        problem = _stored(raw, view)
        if problem is not None:
            problems.append(problem)
    return problems


def _stored(raw: Mapping[str, Any], view: ReportView) -> Problem | None:
    """A problem read back from results.json (None when none of its cases is there)."""
    pairs = raw.get("cases")
    cells = [
        view.cell(str(pair[0]), str(pair[1]))
        for pair in (pairs if isinstance(pairs, list) else [])
        if isinstance(pair, list) and len(pair) == 2
    ]
    cases = tuple(c for c in cells if c is not None)
    if not cases:
        return None
    rep = raw.get("representative")
    consequences = raw.get("consequences")
    return Problem(
        signature=_text(raw.get("signature")),
        diagnosis=_text(raw.get("diagnosis")) or _text(raw.get("signature")),
        check=_text(raw.get("check")),
        cases=cases,
        consequences=tuple(
            (_text(c.get("signature")), _count(c.get("cases")))
            for c in (consequences if isinstance(consequences, list) else [])
            if isinstance(c, Mapping)
        ),
        impls=tuple(dict.fromkeys(c.impl for c in cases)),
        stored_transcript=_text(rep.get("transcript")) if isinstance(rep, Mapping) else "",
    )


def cluster(cases: Iterable[CaseView]) -> list[Problem]:
    """The problems of the bad cases among ``cases``: ``must`` ones first, most
    widespread first."""
    bad = [c for c in cases if c.bad]
    members: dict[str, list[CaseView]] = {}
    described: dict[str, Reason] = {}
    consequences: dict[str, Counter[str]] = {}
    for impl in dict.fromkeys(c.impl for c in bad):
        for reason, found, seen_with in _impl_problems([c for c in bad if c.impl == impl]):
            described.setdefault(reason.signature, reason)
            members.setdefault(reason.signature, []).extend(found)
            consequences.setdefault(reason.signature, Counter()).update(seen_with)
    problems = [
        Problem(
            signature=sig,
            diagnosis=_diagnosis(described[sig], consequences[sig], len(found)),
            check=described[sig].check,
            cases=tuple(sorted(found, key=smallness)),
            consequences=tuple(consequences[sig].most_common()),
            impls=tuple(dict.fromkeys(c.impl for c in found)),
        )
        for sig, found in members.items()
    ]
    return sorted(
        problems,
        key=lambda p: (_MUST_FIRST.get(p.representative.strictness, 3), -len(p.cases), p.signature),
    )


def _diagnosis(reason: Reason, seen_with: Counter[str], cases: int) -> str:
    """The reason's sentence, or — for ``B before A`` where A never ran in any of its
    cases — ``A() is not called: B() runs without it``."""
    b, before, a = reason.signature.removeprefix("hook order: ").partition(" before ")
    single = reason.rank == 0 and before and " + " not in reason.signature
    if single and seen_with.get(f"hook order: no {a}", 0) >= cases:
        return f"{a}() is not called: {b}() runs without it"
    return reason.diagnosis


def _impl_problems(
    cases: Sequence[CaseView],
) -> list[tuple[Reason, list[CaseView], Counter[str]]]:
    """One implementation's problems: reasons, less the explained ones (rule 4), with
    hook deviations that show in exactly the same cases merged into one problem."""
    reasons = {id(c): case_reasons(c) for c in cases}
    shown = {id(c): deviations_in_log(c) | _order_of(reasons[id(c)]) for c in cases}
    ranks = {r.signature: r.rank for rs in reasons.values() for r in rs}
    explained = _explained(cases, reasons, shown, ranks)
    members: dict[str, list[CaseView]] = {}
    described: dict[str, Reason] = {}
    seen_with: dict[str, Counter[str]] = {}
    for case in cases:
        for reason in reasons[id(case)]:
            described[reason.signature] = reason
            cause = explained.get(reason.signature)
            if cause is not None:
                seen_with.setdefault(cause, Counter())[reason.signature] += 1
            else:
                members.setdefault(reason.signature, []).append(case)
    # Hook deviations that always show together are one problem (a hook skipped takes
    # the hooks it calls with it); other reasons stay apart even in the same cases.
    together: dict[tuple[object, ...], list[str]] = {}
    for sig, found in members.items():
        cases_key = frozenset(id(c) for c in found)
        key = (cases_key,) if described[sig].rank < 2 else (cases_key, sig)
        together.setdefault(key, []).append(sig)
    out = []
    for sigs in together.values():
        parts = sorted((described[s] for s in sigs), key=lambda r: (r.rank, r.signature))
        counts: Counter[str] = Counter()
        for sig in sigs:
            counts.update(seen_with.get(sig, Counter()))
        out.append((merge_reasons(parts), members[sigs[0]], counts))
    return out


def merge_reasons(parts: Sequence[Reason]) -> Reason:
    """Reasons that always show together, as one (their signatures joined by `` + ``)."""
    if len(parts) == 1:
        return parts[0]
    return Reason(
        " + ".join(r.signature for r in parts),
        "; ".join(dict.fromkeys(r.diagnosis for r in parts)),
        parts[0].check,
        min(r.rank for r in parts),
    )


def _explained(
    cases: Sequence[CaseView],
    reasons: Mapping[int, list[Reason]],
    shown: Mapping[int, set[str]],
    ranks: Mapping[str, int],
) -> dict[str, str]:
    """Rule 4: each reason seen only in cases showing a lower-ranked deviation → it.

    Only deviations that a check reported somewhere in these cases can explain;
    one merely derived from an event log cannot.  Chains resolve to the root.
    """
    reported = Counter(r.signature for rs in reasons.values() for r in rs if r.rank < 2)
    common: dict[str, set[str]] = {}
    for case in cases:
        present = shown[id(case)] & set(reported)
        for reason in reasons[id(case)]:
            sig = reason.signature
            below = {d for d in present if ranks.get(d, 2) < reason.rank}
            common[sig] = common[sig] & below if sig in common else below
    cause = {
        sig: min(sorted(found), key=lambda d: (ranks.get(d, 2), -reported[d]))
        for sig, found in common.items()
        if found
    }
    for sig in list(cause):
        root = cause[sig]
        while root in cause:
            root = cause[root]
        cause[sig] = root
    return cause


def _order_of(reasons: Iterable[Reason]) -> set[str]:
    return {r.signature for r in reasons if r.rank < 2}


def case_reasons(case: CaseView) -> list[Reason]:
    """The distinct reasons ``case`` failed, in the order of its findings."""
    out: dict[str, Reason] = {}
    if case.verdict == "hang":
        reason = hang_reason(case.reason, _text(case.evidence.get("stacks")))
        out[reason.signature] = reason
    elif case.verdict == "crash":
        sig = f"crash: {normalise(case.reason, case.params)}"
        out[sig] = Reason(sig, f"the server process crashed: {case.reason}", "crash")
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
    if "→" in expected and "→" in observed:
        steps = deviation(_steps(expected), _steps(observed))
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
    return Reason(sig, f"{phase} never returns{where}", "hang")


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


def smallness(case: CaseView) -> tuple[Any, ...]:
    """Sort key of the smallest case: must first, fewest clients, simplest transport and
    kind, then fastest."""
    transport = _text(case.params.get("transport"))
    kind = _text(case.params.get("kind"))
    return (
        _MUST_FIRST.get(case.strictness, 3),
        clients_of(case),
        _TRANSPORTS.index(transport) if transport in _TRANSPORTS else len(_TRANSPORTS),
        _KINDS.index(kind) if kind in _KINDS else len(_KINDS),
        case.duration,
        case.id,
    )


def clients_of(case: CaseView) -> int:
    """How many connections the case made: from its event log, else its wire log or params."""
    log = case.evidence.get("event_log")
    if isinstance(log, list):
        conns = {e.get("conn") for e in log if isinstance(e, Mapping)}
        conns.discard(None)
        if conns:
            return len(conns)
    wire = case.evidence.get("wire")
    if isinstance(wire, list) and wire:
        return len(wire)
    try:
        return int(case.params.get("clients", 1))
    except (TypeError, ValueError):
        return 1


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


def problem_counts(problems: Iterable[Problem], specs: Iterable[str]) -> dict[str, int]:
    """Distinct problems per implementation."""
    counts = dict.fromkeys(specs, 0)
    for problem in problems:
        for spec in problem.impls:
            counts[spec] = counts.get(spec, 0) + 1
    return counts


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


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""
