"""Compare two runs: what got fixed, what regressed, what is new and what is gone.

A case is an (implementation, case id) pair.  It *regressed* when it was
pass, xfail or unsupported and is now fail, hang, crash, error or xpass; it was
*fixed* for the opposite move.  Any other verdict change is *changed*; pairs in
one run only are *new* or *gone*.  Only regressions make the exit status 1,
so ``python -m harness compare OLD NEW`` can gate CI.

Inputs are checked: a results file of another schema version, or one without
a list of case records, is refused in one line (exit 2).  A run that was
stopped (``partial``) or left only its ``results.jsonl`` is said to be
partial, since its missing cases are not judged; a torn last line of a
``results.jsonl`` (the run was killed while writing it) is skipped.

Problems (``harness._report.problems``: one per root cause) are compared too,
per implementation and by signature: a problem is *fixed* when only the old
run has it, *new* when only the new run has it, and *remaining* when both do.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness._model.errors import UsageError
from harness._report.model import BAD, GOOD, build_view
from harness._report.problems import Problem, problems_of
from harness._report.results import SCHEMA

MAX_LISTED = 50


@dataclass(frozen=True)
class Change:
    """One (implementation, case) whose verdict differs between the runs (None: absent)."""

    impl: str
    case: str
    old: str | None
    new: str | None
    strictness: str


@dataclass(frozen=True)
class ProblemChange:
    """One problem of one implementation in either run: cases affected before and now."""

    impl: str
    signature: str
    diagnosis: str
    old_cases: int
    new_cases: int


@dataclass(frozen=True)
class Comparison:
    """The difference between two runs, each list in the new run's order."""

    regressed: tuple[Change, ...]
    fixed: tuple[Change, ...]
    new: tuple[Change, ...]
    gone: tuple[Change, ...]
    changed: tuple[Change, ...]
    unchanged: int
    partial: tuple[str, ...] = ()  # "old"/"new": which input was a partial run
    problems_fixed: tuple[ProblemChange, ...] = ()
    problems_new: tuple[ProblemChange, ...] = ()
    problems_remaining: tuple[ProblemChange, ...] = ()

    @property
    def exit_status(self) -> int:
        """1 when anything regressed, else 0."""
        return 1 if self.regressed else 0


def compare(old_doc: Mapping[str, Any], new_doc: Mapping[str, Any]) -> Comparison:
    """Compare two results.json documents (read defensively: odd records are ignored)."""
    old_view, new_view = build_view(old_doc), build_view(new_doc)
    old = {(c.impl, c.id): c for c in old_view.cases}
    new = {(c.impl, c.id): c for c in new_view.cases}
    buckets: dict[str, list[Change]] = {k: [] for k in ("regressed", "fixed", "changed", "new")}
    unchanged = 0
    for key, now in new.items():
        before = old.get(key)
        was = before.verdict if before is not None else None
        change = Change(now.impl, now.id, was, now.verdict, now.strictness)
        if before is None:
            buckets["new"].append(change)
        elif before.verdict == now.verdict:
            unchanged += 1
        elif before.verdict in GOOD and now.verdict in BAD:
            buckets["regressed"].append(change)
        elif before.verdict in BAD and now.verdict in GOOD:
            buckets["fixed"].append(change)
        else:
            buckets["changed"].append(change)
    gone = [
        Change(c.impl, c.id, c.verdict, None, c.strictness) for k, c in old.items() if k not in new
    ]
    fixed_p, new_p, remaining_p = compare_problems(problems_of(old_view), problems_of(new_view))
    return Comparison(
        problems_fixed=fixed_p,
        problems_new=new_p,
        problems_remaining=remaining_p,
        regressed=tuple(buckets["regressed"]),
        fixed=tuple(buckets["fixed"]),
        new=tuple(buckets["new"]),
        gone=tuple(gone),
        changed=tuple(buckets["changed"]),
        unchanged=unchanged,
        partial=tuple(
            side for side, doc in (("old", old_doc), ("new", new_doc)) if _is_partial(doc)
        ),
    )


def _is_partial(document: Mapping[str, Any]) -> bool:
    run = document.get("run")
    return not isinstance(run, Mapping) or bool(run.get("partial"))


def compare_problems(
    old: Sequence[Problem], new: Sequence[Problem]
) -> tuple[tuple[ProblemChange, ...], tuple[ProblemChange, ...], tuple[ProblemChange, ...]]:
    """(fixed, new, remaining) problems, each per implementation and signature."""

    def per_impl(problems: Sequence[Problem]) -> dict[tuple[str, str], tuple[str, int]]:
        return {
            (spec, p.signature): (p.diagnosis, len(p.in_impl(spec)))
            for p in problems
            for spec in p.impls
        }

    before, after = per_impl(old), per_impl(new)
    fixed = [
        ProblemChange(impl, sig, diagnosis, n, 0)
        for (impl, sig), (diagnosis, n) in before.items()
        if (impl, sig) not in after
    ]
    fresh: list[ProblemChange] = []
    remaining: list[ProblemChange] = []
    for (impl, sig), (diagnosis, n) in after.items():
        was = before.get((impl, sig))
        change = ProblemChange(impl, sig, diagnosis, was[1] if was else 0, n)
        (remaining if was else fresh).append(change)
    return tuple(fixed), tuple(fresh), tuple(remaining)


def render_comparison(
    comparison: Comparison, old_label: str = "OLD", new_label: str = "NEW"
) -> str:
    """The text ``compare`` prints: each non-empty list, then a one-line tally."""
    c = comparison
    lines = [f"sockspec compare: {old_label} → {new_label}"]
    labels = {"old": old_label, "new": new_label}
    lines += [
        f"note: {labels[side]} is a partial run (stopped or killed): "
        "cases it did not reach are not judged"
        for side in c.partial
    ]
    failing_new = sum(1 for ch in c.new if ch.new in BAD)
    lines += _problem_lines(c)
    sections: Sequence[tuple[str, tuple[Change, ...], int | None]] = (
        ("regressed", c.regressed, None),
        ("fixed", c.fixed, None),
        ("new", c.new, MAX_LISTED),
        ("gone", c.gone, MAX_LISTED),
        ("changed", c.changed, MAX_LISTED),
    )
    for title, changes, limit in sections:
        if not changes:
            continue
        extra = f", {failing_new} failing" if title == "new" and failing_new else ""
        lines.append(f"{title} ({len(changes)}{extra}):")
        shown = changes if limit is None else changes[:limit]
        lines += [_line(ch) for ch in shown]
        if len(shown) < len(changes):
            lines.append(f"  … and {len(changes) - len(shown)} more")
    tally = (
        f"{len(c.regressed)} regressed, {len(c.fixed)} fixed, {len(c.new)} new, "
        f"{len(c.gone)} gone, {len(c.changed)} changed, {c.unchanged} unchanged"
    )
    lines.append(f"{tally} — exit status {c.exit_status}")
    return "\n".join(lines) + "\n"


def load_document(path: Path) -> dict[str, Any]:
    """A results document from a results.json, a report directory, or a results.jsonl.

    A report directory of a killed run has only results.jsonl; its lines are used.
    Raises ``UsageError`` naming the path when nothing readable is there.
    """
    target = path
    if path.is_dir():
        target = path / "results.json"
        for stream in ("results.jsonl", "results.jsonl.gz"):
            if not target.exists() and (path / stream).exists():
                target = path / stream
    if not target.is_file():
        raise UsageError(
            f"no results at {str(path)!r}; expected a results.json file or a report directory"
        )
    try:
        if target.name.endswith(".jsonl.gz"):
            with gzip.open(target, "rt", encoding="utf-8", errors="replace") as packed:
                document = _jsonl(packed.read(), target)
        else:
            text = target.read_text(encoding="utf-8", errors="replace")
            document = _jsonl(text, target) if target.suffix == ".jsonl" else json.loads(text)
    except (OSError, ValueError, EOFError) as exc:
        raise UsageError(f"cannot read results {str(target)!r}: {exc}") from None
    _check_shape(document, target)
    return document


def _jsonl(text: str, target: Path) -> dict[str, Any]:
    """The complete lines of a results.jsonl; a torn last line (a killed run) is skipped."""
    lines = [line for line in text.splitlines() if line.strip()]
    records = []
    for n, line in enumerate(lines, 1):
        try:
            records.append(json.loads(line))
        except ValueError:
            if n == len(lines):
                break  # written while the run was killed
            raise ValueError(f"line {n} is not JSON") from None
    if not records:
        raise UsageError(f"{str(target)!r} holds no case results (the run recorded none)")
    return {"schema": SCHEMA, "run": {"partial": True}, "results": records}


def _check_shape(document: Any, target: Path) -> None:
    schema = document.get("schema") if isinstance(document, dict) else None
    if not isinstance(schema, str) or not schema.startswith("sockspec-results/"):
        raise UsageError(
            f"{str(target)!r} is not a sockspec results file (schema {schema!r}); "
            "expected the results.json of a sockspec run"
        )
    if schema != SCHEMA:
        raise UsageError(
            f"{str(target)!r} has schema {schema!r}, which this sockspec cannot read; "
            f"expected {SCHEMA!r}"
        )
    results = document.get("results")
    if not isinstance(results, list) or not all(_is_record(r) for r in results):
        raise UsageError(
            f"{str(target)!r} has no list of case results (each with id, impl and verdict)"
        )


def _is_record(record: Any) -> bool:
    return isinstance(record, dict) and all(
        isinstance(record.get(k), str) for k in ("id", "impl", "verdict")
    )


def _problem_lines(c: Comparison) -> list[str]:
    lines = [
        f"problems: {len(c.problems_fixed)} fixed, {len(c.problems_new)} new, "
        f"{len(c.problems_remaining)} remaining"
    ]
    for title, changes in (
        ("fixed", c.problems_fixed),
        ("new", c.problems_new),
        ("remaining", c.problems_remaining),
    ):
        for ch in changes[:MAX_LISTED]:
            counts = f"{ch.old_cases} → {ch.new_cases} case(s)"
            lines.append(f"  {title:9} {ch.impl}  {ch.diagnosis}  ({counts})")
        if len(changes) > MAX_LISTED:
            lines.append(f"  … and {len(changes) - MAX_LISTED} more {title}")
    return lines


def _line(change: Change) -> str:
    move = f"{change.old or '—'} → {change.new or '—'}"
    return f"  {move:24} {change.strictness:6} {change.impl}  {change.case}"
