"""summary.md: the problems, then the matrix, in Markdown fit to paste into a pull request.

It opens with "N distinct problems" per implementation, then each problem
(``harness._report.problems``: one root cause) with its diagnosis, the number
of cases it affects, its smallest case with transcript and replay command,
and the other cases folded away; then the matrix, one row per scenario (its
cases' verdicts counted per implementation).  GitHub comments hold at most
65536 characters: the summary always fits in ``MAX_CHARS``, shown in less
detail when it must be, and it says what was cut.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from harness._report.problems import Problem, problem_counts, problems_of
from harness._report.text import markdown_text, one_line

if TYPE_CHECKING:
    from harness._report.model import ReportView

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
MAX_CHARS = 60_000
MAX_TEXT = 400


@dataclass(frozen=True)
class Detail:
    """How much of each problem the summary shows; smaller levels are tried until it fits."""

    problems: int  # problems shown in full; the rest one line each (up to 100)
    cases: int  # other cases listed per problem
    transcripts: bool


#: From the most detail to the least; the last one is followed by a hard cut.
DETAIL_LEVELS = (Detail(30, 40, True), Detail(15, 12, True), Detail(8, 5, False))


def render_summary(view: ReportView) -> str:
    """The whole summary.md, at most ``MAX_CHARS`` characters."""
    problems = problems_of(view)
    text = ""
    for detail in DETAIL_LEVELS:
        text = _render(view, problems, detail)
        if len(text) <= MAX_CHARS:
            return text
    cut = text.rfind("\n", 0, MAX_CHARS - 300)
    shown = text[:cut]
    note = (
        f"\n\n… cut to fit a comment: {len(text) - len(shown):,} of {len(text):,} characters "
        f"left out (the end of the {_last_heading(shown)} section); see index.html for the rest.\n"
    )
    return shown + note


def _render(view: ReportView, problems: list[Problem], detail: Detail) -> str:
    lines = [_headline(view, problems), "", _run_line(view), ""]
    lines += [f"> ⚠️ {_plain(note)}" for note in view.notes[:10]]
    lines += _problem_counts(view, problems)
    lines += _problems(view, problems, detail)
    lines += ["", "### Matrix", ""]
    lines += _matrix(view)
    lines += ["", _legend(), ""]
    return "\n".join(lines).rstrip() + "\n"


def _last_heading(text: str) -> str:
    found = re.findall(r"^#{2,4} (.+)$", text, flags=re.MULTILINE)
    return found[-1].strip() if found else "last"


def _headline(view: ReportView, problems: list[Problem]) -> str:
    if not view.impls:
        return "## sockspec: no results"
    if not problems:
        return f"## sockspec: no problems in {len(view.impls)} implementation(s)"
    counts = problem_counts(problems, (i.spec for i in view.impls))
    names = ", ".join(_code(i.name) for i in view.impls if counts.get(i.spec))
    loud = sum(view.must_failures(i.spec) for i in view.impls)
    return f"## sockspec: {len(problems)} distinct problem(s) in {names} ({loud} must failure(s))"


def _problem_counts(view: ReportView, problems: list[Problem]) -> list[str]:
    """One line per implementation: its distinct problems and failing cases."""
    counts = problem_counts(problems, (i.spec for i in view.impls))
    lines = []
    for impl in view.impls:
        bad = sum(1 for c in view.cases if c.impl == impl.spec and c.bad)
        lines.append(
            f"- {_code(impl.name)}: **{counts.get(impl.spec, 0)} distinct problem(s)**"
            f" in {bad} failing case(s)"
        )
    return [*lines, ""]


def _problems(view: ReportView, problems: list[Problem], detail: Detail) -> list[str]:
    if not problems:
        return []
    names = {i.spec: i.name for i in view.impls}
    lines = ["### Problems", ""]
    for n, problem in enumerate(problems[: detail.problems], 1):
        lines += [*_problem(n, problem, names, detail), ""]
    rest = problems[detail.problems :]
    if rest:
        lines.append(f"{len(rest)} more problem(s), one line each (see index.html):")
        lines += [
            f"- {_plain(p.diagnosis[:MAX_TEXT])} — {len(p.cases)} case(s), e.g."
            f" {_code(p.representative.id)}"
            for p in rest[:100]
        ]
        if len(rest) > 100:
            lines.append(f"- … and {len(rest) - 100} more")
    return lines


def _problem(n: int, problem: Problem, names: dict[str, str], detail: Detail) -> list[str]:
    rep = problem.representative
    per_impl = ", ".join(
        f"{_code(names.get(spec, spec))} {len(problem.in_impl(spec))}" for spec in problem.impls
    )
    lines = [
        f"#### {n}. {_plain(problem.diagnosis[:MAX_TEXT])}",
        "",
        f"- affects {len(problem.cases)} case(s): {per_impl}",
        f"- smallest case: {_code(rep.id)} on {_code(names.get(rep.impl, rep.impl))}"
        f" ({rep.verdict}, {rep.strictness}, {rep.duration * 1000:.0f} ms)",
    ]
    finding = problem.finding()
    if finding is not None and (finding.expected or finding.observed):
        lines.append(f"- expected: {_code(finding.expected[:MAX_TEXT])}")
        lines.append(f"- observed: {_code(finding.observed[:MAX_TEXT])}")
    side_by_side = _text_of(finding.evidence.get("side_by_side")) if finding else ""
    if side_by_side and detail.transcripts:  # --oracle: the oracle's lines beside the target's
        fence = "~~~~" if "~~~" in side_by_side else "~~~"
        lines += ["", fence, side_by_side[: MAX_TEXT * 4], fence, ""]
    transcript = problem.transcript()
    if transcript and detail.transcripts:
        lines.append(f"- transcript: {_code(transcript[:MAX_TEXT])}")
    if rep.replay:
        lines.append(f"- replay: {_code(rep.replay)}")
    if problem.consequences:
        seen = ", ".join(f"{_code(sig[:120])} ×{count}" for sig, count in problem.consequences[:3])
        more = len(problem.consequences) - 3
        lines.append(f"- seen with it: {seen}" + (f" and {more} more" if more > 0 else ""))
    others = problem.others
    if others:
        shown = ", ".join(
            f"{_code(c.id)}"
            + (f" ({_code(names.get(c.impl, c.impl))})" if len(problem.impls) > 1 else "")
            for c in others[: detail.cases]
        )
        more = len(others) - detail.cases
        tail = f" and {more} more" if more > 0 else ""
        lines += [
            "",
            f"<details><summary>{len(others)} other case(s)</summary>",
            "",
            shown + tail,
            "",
            "</details>",
        ]
    return lines


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


def _text_of(value: object) -> str:
    return value if isinstance(value, str) else ""


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
