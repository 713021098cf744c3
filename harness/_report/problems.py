"""Triage: failing cases clustered into problems, one per root cause.

A *problem* is what went wrong, whatever the case it showed in: the cases that
share a reason (``harness._report.signatures`` says how a reason is signed).
Two more rules make reasons into problems:

4. Hooks running out of order break everything downstream of them, and a
   hook that never runs breaks what it should have done.  A reason of an
   implementation that shows *only* in cases whose event log also has one
   deviation of a lower rank (reported by a check in some case of that
   implementation) is a consequence of that deviation: it is listed with the
   deviation's problem, not as a problem of its own.  A reason that also shows
   without it is a problem of its own, and every case with both appears under
   both problems.
5. Reasons of one family (hook deviations; checks of one family such as
   ``concurrency``; every check of what the clients saw, ``Reason.family``)
   whose cases are all cases of a wider reason of that family, in one
   implementation, are one problem with it: a hook skipped takes the hooks it calls with it (``no
   shutdown_request`` + ``no close_request``), and one wrong threading model
   fails every concurrency check that looks.  Reasons of different families
   stay apart even when they share every case: a hang and a failed check are
   two problems.

Each problem carries its diagnosis, its cases across implementations, and a
representative: the smallest case that shows it (``smallness``).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from harness._report.model import CaseView, FindingView, ReportView
from harness._report.signatures import (
    HOOK_ORDER,
    Reason,
    case_reasons,
    deviations_in_log,
    reasons_of,
)

_MUST_FIRST = {"must": 0, "should": 1, "info": 2}
_TRANSPORTS = ("tcp", "unix_stream", "udp", "unix_dgram", "tcp6", "udp6")
_KINDS = ("sync", "threading", "forking")


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
    """The reason's sentence, or — when it is ``B before A`` (one or more A) and no A
    ever ran in its cases — ``A() is not called: B() runs without it``."""
    parts = [p.removeprefix("hook order: ") for p in reason.signature.split(" + ")]
    pairs = [p.partition(" before ") for p in parts]
    if not all(before for _, before, _ in pairs) or len({b for b, _, _ in pairs}) != 1:
        return reason.diagnosis
    missing = [a for _, _, a in pairs]
    if any(seen_with.get(f"hook order: no {a}", 0) < cases for a in missing):
        return reason.diagnosis
    names = ", ".join(f"{a}()" for a in _in_hook_order(missing))
    verb, them = ("is", "it") if len(missing) == 1 else ("are", "them")
    return f"{names} {verb} not called: {pairs[0][0]}() runs without {them}"


def _impl_problems(
    cases: Sequence[CaseView],
) -> list[tuple[Reason, list[CaseView], Counter[str]]]:
    """One implementation's problems: reasons, less the explained ones (rule 4), with
    reasons of one family merged into the widest that covers them (rule 5)."""
    reasons = {id(c): case_reasons(c) for c in cases}
    shown = {id(c): deviations_in_log(c) | _order_of(reasons[id(c)]) for c in cases}
    known = {r.signature: r for rs in reasons.values() for r in rs}
    explained = _explained(cases, reasons, shown, known)
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
    out = []
    for sigs in _families(members, described):
        parts = [described[s] for s in sigs]
        counts: Counter[str] = Counter()
        for sig in sigs:
            counts.update(seen_with.get(sig, Counter()))
        out.append((merge_reasons(parts), members[sigs[0]], counts))
    return out


def _families(
    members: Mapping[str, list[CaseView]], described: Mapping[str, Reason]
) -> list[list[str]]:
    """Rule 5: signatures grouped under the widest one of their family whose cases
    include all of theirs; the widest first in each group."""
    widest = sorted(members, key=lambda s: (-len(members[s]), described[s].rank, s))
    groups: list[list[str]] = []
    for sig in widest:
        mine = {id(c) for c in members[sig]}
        home = next(
            (
                g
                for g in groups
                if described[g[0]].family == described[sig].family
                and mine <= {id(c) for c in members[g[0]]}
            ),
            None,
        )
        if home is None:
            groups.append([sig])
        else:
            home.append(sig)
    return groups


def merge_reasons(parts: Sequence[Reason]) -> Reason:
    """Reasons that always show together, as one (their signatures joined by `` + ``)."""
    if len(parts) == 1:
        return parts[0]
    sentences = list(dict.fromkeys(r.diagnosis for r in parts))
    more = f" (and {len(sentences) - 3} more)" if len(sentences) > 3 else ""
    return Reason(
        " + ".join(r.signature for r in parts),
        "; ".join(sentences[:3]) + more,
        parts[0].check,
        min(r.rank for r in parts),
    )


def _explained(
    cases: Sequence[CaseView],
    reasons: Mapping[int, list[Reason]],
    shown: Mapping[int, set[str]],
    known: Mapping[str, Reason],
) -> dict[str, str]:
    """Rule 4: each reason seen only in cases showing a lower-ranked one that may
    explain it (``Reason.explains``) → that one.

    Only reasons found by a check somewhere in these cases can explain; a
    deviation merely derived from an event log cannot.  Chains resolve to the root.
    """
    ranks = {sig: r.rank for sig, r in known.items()}
    reported = Counter(r.signature for rs in reasons.values() for r in rs if r.rank < 2)
    common: dict[str, set[str]] = {}
    for case in cases:
        present = shown[id(case)] & set(reported)
        for reason in reasons[id(case)]:
            sig = reason.signature
            below = {
                d
                for d in present
                if ranks.get(d, 2) < reason.rank and reason.check.startswith(known[d].explains)
            }
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


def smallness(case: CaseView) -> tuple[Any, ...]:
    """Sort key of the smallest case: must first, fewest clients, simplest transport and
    kind, fastest — among cases of one order of magnitude of duration, the one failing the
    fewest checks (it shows this problem and little else)."""
    transport = _text(case.params.get("transport"))
    kind = _text(case.params.get("kind"))
    return (
        _MUST_FIRST.get(case.strictness, 3),
        clients_of(case),
        _TRANSPORTS.index(transport) if transport in _TRANSPORTS else len(_TRANSPORTS),
        _KINDS.index(kind) if kind in _KINDS else len(_KINDS),
        _order_of_magnitude(case.duration),
        len({f.check for f in case.findings}),
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


def problem_counts(problems: Iterable[Problem], specs: Iterable[str]) -> dict[str, int]:
    """Distinct problems per implementation."""
    counts = dict.fromkeys(specs, 0)
    for problem in problems:
        for spec in problem.impls:
            counts[spec] = counts.get(spec, 0) + 1
    return counts


def _order_of_magnitude(seconds: float) -> int:
    return math.ceil(math.log10(max(seconds, 1e-3)))


def _in_hook_order(names: Sequence[str]) -> list[str]:
    return sorted(names, key=lambda n: HOOK_ORDER.index(n) if n in HOOK_ORDER else len(HOOK_ORDER))


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""
