"""summary.md: the matrix and the failures in Markdown, fit to paste into a pull request.

The matrix has one row per scenario (its cases' verdicts counted per
implementation); failures are de-duplicated: cases of one scenario and
implementation that failed the same way make one entry listing the cases.
GitHub comments hold at most 65536 characters, so long lists are cut with a
pointer to index.html.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from harness._report.text import markdown_text, one_line

if TYPE_CHECKING:
    from harness._report.model import CaseView, ReportView

#: Display order and marks of the verdicts (unknown verdicts come last, unmarked).
MARKS = {
    "fail": "❌",
    "hang": "⏳",
    "crash": "💥",
    "error": "🛑",
    "xpass": "❗",
    "xfail": "☑️",
    "pass": "✅",
    "unsupported": "➖",
}
MAX_ENTRIES = 25
MAX_CASES_PER_ENTRY = 12
MAX_CHARS = 60_000


def render_summary(view: ReportView) -> str:
    """The whole summary.md."""
    lines = [_headline(view), "", _run_line(view), ""]
    lines += [f"> ⚠️ {note}" for note in view.notes[:10]]
    lines += _matrix(view)
    lines += ["", _legend(), ""]
    lines += _failures(view)
    text = "\n".join(lines).rstrip() + "\n"
    if len(text) > MAX_CHARS:
        cut = text.rfind("\n", 0, MAX_CHARS)
        text = text[:cut] + "\n\n… cut to fit a comment; see index.html for the rest.\n"
    return text


def _headline(view: ReportView) -> str:
    loud = {i.name: view.must_failures(i.spec) for i in view.impls}
    failing = [name for name, n in loud.items() if n]
    if not view.impls:
        return "## sockspec: no results"
    if not failing:
        return f"## sockspec: no must failures in {len(view.impls)} implementation(s)"
    total = sum(loud.values())
    names = ", ".join(_code(n) for n in failing)
    return f"## sockspec: {total} must failure(s) in {names}"


def _run_line(view: ReportView) -> str:
    run = view.run
    parts = [
        f"{len(view.case_ids)} case(s) × {len(view.impls)} implementation(s)",
        f"profile {_code(str(run.get('profile', '?')))}",
        f"seed {run.get('seed', '?')}",
        f"{_seconds(run.get('duration'))}",
        f"exit status {run.get('exit_status', '?')}",
    ]
    if run.get("partial"):
        parts.append("**partial: the run was interrupted**")
    started = str(run.get("started", ""))[:19].replace("T", " ")
    prefix = f"{started} UTC · " if started else ""
    return f"<sub>{prefix}{' · '.join(parts)}</sub>"


def _matrix(view: ReportView) -> list[str]:
    """Scenarios with a problem (or a case not run) in full; the others folded away."""
    names = [_cell(i.name) for i in view.impls]
    head = ["| scenario | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    totals = [_counts_text(dict(i.counts)) for i in view.impls]
    loud: list[str] = []
    quiet: list[str] = []
    for scenario, ids in _scenarios(view).items():
        counts = [_scenario_counts(view, spec, ids) for spec in (i.spec for i in view.impls)]
        row = f"| {_cell(f'{_code(scenario)} ({len(ids)})')} | "
        row += " | ".join(_counts_text(c) for c in counts) + " |"
        fine = all(set(c) <= {"pass", "unsupported", "xfail"} for c in counts)
        (quiet if fine else loud).append(row)
    lines = [*head, "| **all** | " + " | ".join(totals) + " |", *loud]
    if quiet:
        summary = f"{len(quiet)} scenario(s) with no problem in any implementation"
        lines += ["", f"<details><summary>{summary}</summary>", "", *head, *quiet, "", "</details>"]
    return lines


def _scenarios(view: ReportView) -> dict[str, list[str]]:
    scenarios: dict[str, list[str]] = {}
    for case_id in view.case_ids:
        cell = next((c for c in view.row(case_id) if c is not None), None)
        if cell is not None:
            scenarios.setdefault(cell.scenario, []).append(case_id)
    return scenarios


def _scenario_counts(view: ReportView, spec: str, ids: list[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for case_id in ids:
        found = view.cell(spec, case_id)
        verdict = found.verdict if found is not None else "not run"
        counts[verdict] = counts.get(verdict, 0) + 1
    return counts


def _counts_text(counts: dict[str, int]) -> str:
    order = list(MARKS)
    ranked = sorted(counts.items(), key=lambda kv: order.index(kv[0]) if kv[0] in order else 99)
    parts = [f"{MARKS.get(v, '')} {n} {v}".strip() for v, n in ranked if n]
    return _cell(" · ".join(parts) or "–")


def _legend() -> str:
    marks = " ".join(f"{mark} {verdict}" for verdict, mark in MARKS.items())
    return f"<sub>{marks}. Only `must` failures fail a run; see index.html for every case.</sub>"


def _failures(view: ReportView) -> list[str]:
    entries = view.distinct_problems()
    if not entries:
        return ["No failures."]
    distinct = len(entries)
    cases = sum(len(e) for e in entries)
    lines = [f"### Failures: {cases} case(s), {distinct} distinct", ""]
    for entry in entries[:MAX_ENTRIES]:
        lines += [*_entry(entry), ""]
    rest = entries[MAX_ENTRIES:]
    if rest:
        lines.append(f"… and {len(rest)} more distinct failure(s):")
        lines += [f"- {_code(e[0].impl)} {_code(e[0].id)} {e[0].verdict}" for e in rest[:100]]
    return lines


def _entry(cases: list[CaseView]) -> list[str]:
    first = cases[0]
    head = (
        f"#### {first.verdict.upper()} ({first.strictness}) {_code(first.scenario)}"
        f" on {_code(first.impl)}"
    )
    lines = [head, ""]
    if first.title:
        lines.append(f"_{_plain(first.title)}_")
    shown = ", ".join(_code(c.id) for c in cases[:MAX_CASES_PER_ENTRY])
    more = len(cases) - MAX_CASES_PER_ENTRY
    lines.append(f"- case(s): {shown}" + (f" and {more} more" if more > 0 else ""))
    if first.reason:
        lines.append(f"- reason: {_plain(first.reason)}")
    for group in first.groups()[:5]:
        f = group.first
        times = f" ×{group.count}" if group.count > 1 else ""
        lines.append(f"- {_code(f.check)}{times}: {_plain(f.message)}")
        if f.expected or f.observed:
            lines.append(f"  - expected: {_code(f.expected)}")
            lines.append(f"  - observed: {_code(f.observed)}")
        for transcript in group.transcripts[:2]:
            lines.append(f"  - transcript: {_code(transcript)}")
    if len(first.groups()) > 5:
        lines.append(f"- … {len(first.groups()) - 5} more distinct finding(s)")
    if first.replay:
        lines.append(f"- replay: {_code(first.replay)}")
    return lines


def _code(text: str) -> str:
    """An inline code span that survives any backticks inside ``text``."""
    text = one_line(text) or " "
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _cell(text: str) -> str:
    """Text safe inside a table cell (no HTML either: names come from users)."""
    return re.sub(r"([|<>&])", r"\\\1", one_line(text))


def _plain(text: str) -> str:
    """One line of prose with Markdown and HTML specials escaped."""
    return markdown_text(text)


def _seconds(value: Any) -> str:
    try:
        return f"{float(value):.1f} s"
    except (TypeError, ValueError):
        return "? s"
