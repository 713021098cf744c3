"""The report view model: results.json read defensively into a read-only view.

The renderers (``markdown``, ``junit``, ``html``) consume the view built here and
never the raw document, so that odd input — unknown verdicts or evidence keys,
missing fields — is dealt with in one place.  This module imports no renderer;
``harness._report.write`` ties the two together.
"""

from __future__ import annotations

import json
import re
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from harness._model.records import CaseResult, Strictness, Verdict, replay_command
from harness._report.text import clean_data

#: Verdicts that make a cell a problem; ``compare`` counts a move into them as a regression.
BAD = frozenset({"fail", "hang", "crash", "error", "xpass"})
#: Verdicts that are fine as they are.
GOOD = frozenset({"pass", "xfail", "unsupported"})
_FAILING = frozenset({"fail", "hang", "crash"})


@dataclass(frozen=True)
class FindingView:
    """One finding of a case, with every field present and a string where text is expected."""

    check: str
    message: str
    expected: str
    observed: str
    conn: int | None
    evidence: Mapping[str, Any]

    @property
    def transcript(self) -> str:
        """The lifecycle transcript of the connection involved, or ''."""
        return _text(self.evidence.get("transcript"))


@dataclass(frozen=True)
class FindingGroup:
    """Findings that differ only by connection: Hypothesis-style de-duplication."""

    first: FindingView
    count: int
    conns: tuple[int, ...]
    transcripts: tuple[str, ...]

    @property
    def key(self) -> tuple[str, str, str, str]:
        """What the grouped findings share: check, message, expected and observed."""
        return _finding_key(self.first)


@dataclass(frozen=True)
class CaseView:
    """One implementation × case, read defensively from a results.json record."""

    id: str
    scenario: str
    impl: str
    verdict: str
    strictness: str
    duration: float
    params: Mapping[str, Any]
    findings: tuple[FindingView, ...]
    evidence: Mapping[str, Any]
    reason: str
    seed: int
    title: str
    invariant: str
    replay: str
    impl_slug: str = ""
    case_slug: str = ""

    @property
    def family(self) -> str:
        """The first dotted part of the scenario id (``lifecycle``, ``echo``...)."""
        return self.scenario.split(".", 1)[0] or "(none)"

    @property
    def bad(self) -> bool:
        """True for fail, hang, crash, error and xpass."""
        return self.verdict in BAD

    @property
    def tone(self) -> str:
        """How loud the cell is: loud, muted, broken, surprise, ok, expected, skip, unknown."""
        if self.verdict in _FAILING:
            return "loud" if self.strictness == "must" else "muted"
        return {
            "error": "broken",
            "xpass": "surprise",
            "pass": "ok",
            "xfail": "expected",
            "unsupported": "skip",
        }.get(self.verdict, "unknown")

    @property
    def page(self) -> str:
        """The case page, relative to the report directory."""
        return f"cases/{self.impl_slug}/{self.case_slug}.html"

    def groups(self) -> tuple[FindingGroup, ...]:
        """The distinct findings, most frequent first."""
        return group_findings(self.findings)


@dataclass(frozen=True)
class ImplView:
    """An implementation: its spec, a short display name, a file-safe slug and its counts."""

    spec: str
    name: str
    slug: str
    counts: Mapping[str, int]


@dataclass(frozen=True)
class ReportView:
    """Everything a report shows, in display order."""

    run: Mapping[str, Any]
    impls: tuple[ImplView, ...]
    cases: tuple[CaseView, ...]
    case_ids: tuple[str, ...]
    notes: tuple[str, ...] = ()
    #: The document's ``problems`` section, as stored (see ``harness._report.problems``).
    problem_records: tuple[Mapping[str, Any], ...] = ()
    #: Where the bulky evidence left out of results.json is ('' when it is inline).
    evidence_file: str = ""
    _cells: Mapping[tuple[str, str], CaseView] = field(default_factory=dict, repr=False)

    def cell(self, impl: str, case_id: str) -> CaseView | None:
        """The result of ``case_id`` for ``impl``, or None when it was not run."""
        return self._cells.get((impl, case_id))

    def families(self) -> list[tuple[str, list[str]]]:
        """Case ids grouped by family, both in order of first appearance."""
        groups: dict[str, list[str]] = {}
        for case_id in self.case_ids:
            groups.setdefault(self._family_of(case_id), []).append(case_id)
        return list(groups.items())

    def row(self, case_id: str) -> list[CaseView | None]:
        """The cells of one matrix row, one per implementation."""
        return [self.cell(impl.spec, case_id) for impl in self.impls]

    def must_failures(self, impl: str) -> int:
        """Count of must-strictness fail/hang/crash for ``impl``."""
        return sum(1 for c in self.cases if c.impl == impl and c.tone == "loud")

    def _family_of(self, case_id: str) -> str:
        for impl in self.impls:
            found = self.cell(impl.spec, case_id)
            if found is not None:
                return found.family
        return case_id.split(".", 1)[0]


def group_findings(findings: Iterable[FindingView]) -> tuple[FindingGroup, ...]:
    """Group findings equal but for their connection number."""
    groups: dict[tuple[str, str, str, str], list[FindingView]] = {}
    for finding in findings:
        groups.setdefault(_finding_key(finding), []).append(finding)
    out = []
    for members in groups.values():
        conns = tuple(f.conn for f in members if f.conn is not None)
        transcripts: dict[str, str] = {}
        for f in members:
            if f.transcript:
                transcripts.setdefault(_no_conn(f.transcript), f.transcript)
        out.append(FindingGroup(members[0], len(members), conns, tuple(transcripts.values())))
    return tuple(sorted(out, key=lambda g: -g.count))


def build_view(document: Any) -> ReportView:
    """The view of a results.json document; tolerates anything, noting what it skipped."""
    doc = document if isinstance(document, Mapping) else {}
    notes: list[str] = []
    if doc.get("schema") != "sockspec-results/1":
        notes.append(f"unexpected schema {doc.get('schema')!r}; showing what could be read")
    got_run, got_results = doc.get("run"), doc.get("results")
    run: Mapping[str, Any] = got_run if isinstance(got_run, Mapping) else {}
    raw: list[Any] = got_results if isinstance(got_results, list) else []
    run_seed = _int(run.get("seed"))
    cases: list[CaseView] = []
    for n, record in enumerate(raw):
        if isinstance(record, Mapping):
            cases.append(_case(record, run_seed))
        else:
            notes.append(f"results[{n}] is not an object ({type(record).__name__}); skipped")
    specs = _impl_specs(doc.get("implementations"), cases)
    impl_slugs = _slugs((_impl_name(s) for s in specs), limit=60)
    case_ids = list(dict.fromkeys(c.id for c in cases))
    case_slugs = dict(zip(case_ids, _slugs(case_ids, limit=120), strict=True))
    slug_of = dict(zip(specs, impl_slugs, strict=True))
    cases = [_with_slugs(c, slug_of[c.impl], case_slugs[c.id]) for c in cases]
    cells: dict[tuple[str, str], CaseView] = {}
    for case in cases:
        if (case.impl, case.id) in cells:
            notes.append(f"{case.impl} {case.id} appears twice; the last record is shown")
        cells[(case.impl, case.id)] = case
    shown = tuple(cells.values())
    impls = tuple(
        ImplView(spec, _impl_name(spec), slug_of[spec], _counts(shown, spec)) for spec in specs
    )
    got_problems = doc.get("problems")
    stored = tuple(
        p
        for p in (got_problems if isinstance(got_problems, list) else [])
        if isinstance(p, Mapping)
    )
    evidence_file = _text(doc.get("evidence_file"))
    return ReportView(
        run, impls, shown, tuple(case_ids), tuple(notes), stored, evidence_file, cells
    )


def load_view(path: Path) -> ReportView:
    """Read a results.json file (or a report directory holding one) into a view."""
    if path.is_dir():
        path = path / "results.json"
    return build_view(clean_data(json.loads(path.read_text(encoding="utf-8", errors="replace"))))


def _case(record: Mapping[str, Any], run_seed: int) -> CaseView:
    case_id = _text(record.get("id")) or "(no id)"
    scenario = _text(record.get("scenario")) or case_id.split("[", 1)[0]
    impl = _text(record.get("impl")) or "(unknown)"
    evidence = record.get("evidence")
    evidence = dict(evidence) if isinstance(evidence, Mapping) else {}
    raw_findings = record.get("findings")
    findings = tuple(_finding(f) for f in (raw_findings if isinstance(raw_findings, list) else []))
    params = record.get("params")
    return CaseView(
        id=case_id,
        scenario=scenario,
        impl=impl,
        verdict=(_text(record.get("verdict")) or "unknown").lower(),
        strictness=(_text(record.get("strictness")) or "must").lower(),
        duration=_float(record.get("duration")),
        params=dict(params) if isinstance(params, Mapping) else {},
        findings=findings,
        evidence=evidence,
        reason=_text(record.get("reason")),
        seed=_int(record.get("seed")),
        title=_text(record.get("title")),
        invariant=_text(record.get("invariant")),
        replay=_replay(case_id, scenario, impl, evidence, run_seed),
    )


def _finding(raw: Any) -> FindingView:
    f = raw if isinstance(raw, Mapping) else {"message": _text(raw)}
    evidence = f.get("evidence")
    conn = f.get("conn")
    return FindingView(
        check=_text(f.get("check")) or "(check?)",
        message=_text(f.get("message")),
        expected=_text(f.get("expected")),
        observed=_text(f.get("observed")),
        conn=conn if isinstance(conn, int) and not isinstance(conn, bool) else None,
        evidence=dict(evidence) if isinstance(evidence, Mapping) else {},
    )


def _replay(case_id: str, scenario: str, impl: str, evidence: dict[str, Any], run_seed: int) -> str:
    # Crash and hang records made by the supervisor carry no base_seed: use the run's.
    seeded = {"base_seed": run_seed, **evidence}
    record = CaseResult(case_id, scenario, impl, Verdict.ERROR, Strictness.MUST, 0.0)
    try:
        return replay_command(replace(record, evidence=seeded))
    except Exception:
        return ""


def _impl_specs(declared: Any, cases: list[CaseView]) -> list[str]:
    specs: list[str] = []
    for item in declared if isinstance(declared, list) else []:
        spec = item.get("spec") if isinstance(item, Mapping) else item
        if isinstance(spec, str) and spec:
            specs.append(spec)
    specs.extend(c.impl for c in cases)
    return list(dict.fromkeys(specs))


def _counts(cases: Iterable[CaseView], spec: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    for case in cases:
        if case.impl == spec:
            counts[case.verdict] = counts.get(case.verdict, 0) + 1
    return counts


def _with_slugs(case: CaseView, impl_slug: str, case_slug: str) -> CaseView:
    return replace(case, impl_slug=impl_slug, case_slug=case_slug)


def _impl_name(spec: str) -> str:
    """``/tmp/mutant_x.py`` → ``mutant_x``; dotted modules and builtin names stay."""
    if "/" in spec or "\\" in spec or spec.endswith(".py"):
        base = re.split(r"[/\\]", spec.rstrip("/\\"))[-1]
        return base[:-3] if base.endswith(".py") else base
    return spec


def _slugs(names: Iterable[str], limit: int) -> list[str]:
    """File-name-safe, unique slugs in the order of ``names``."""
    seen: set[str] = set()
    out = []
    for name in names:
        slug = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.") or "x"
        if len(slug) > limit:
            slug = f"{slug[: limit - 9]}-{zlib.crc32(name.encode()):08x}"
        base, n = slug, 1
        while slug.lower() in seen:
            n += 1
            slug = f"{base}-{n}"
        seen.add(slug.lower())
        out.append(slug)
    return out


def _finding_key(f: FindingView) -> tuple[str, str, str, str]:
    return (f.check, _no_conn(f.message), f.expected, f.observed)


def _no_conn(text: str) -> str:
    return re.sub(r"conn#\d+", "conn#N", text)


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, default=str)
    except (TypeError, ValueError):
        return str(value)


def _float(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0


def _int(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def why(exc: BaseException) -> str:
    """``Type: message`` of ``exc``, for one-line report warnings."""
    return f"{type(exc).__name__}: {exc}"
