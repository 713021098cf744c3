"""The mutation report: a score per file and every survivor, as JSON and Markdown."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from harness._mutation.judge import Judgement
from harness._mutation.mutants import Mutant


@dataclass(frozen=True)
class Row:
    """One mutant with its judgement and triage."""

    mutant: Mutant
    selection: str  # why these cases were chosen
    judgement: Judgement
    triage: tuple[str, str] | None  # ("equivalent" | "out_of_scope", reason)

    @property
    def outcome(self) -> str:
        """killed, survived, timeout, broken, equivalent or out_of_scope."""
        if self.judgement.status == "survived" and self.triage is not None:
            return self.triage[0]
        return self.judgement.status


def score(rows: Sequence[Row]) -> dict[str, Any]:
    """Counts per outcome, and killed / (all − equivalent − out of scope)."""
    counts = Counter(row.outcome for row in rows)
    judged = len(rows) - counts["equivalent"] - counts["out_of_scope"]
    return {
        "mutants": len(rows),
        **{
            k: counts[k]
            for k in ("killed", "survived", "timeout", "broken", "equivalent", "out_of_scope")
        },
        "score": round(counts["killed"] / judged, 4) if judged else None,
        "equivalent_share": round(counts["equivalent"] / len(rows), 4) if rows else None,
    }


def write_report(directory: Path, label: str, source: str, rows: Sequence[Row]) -> Path:
    """Write ``mutation.json`` and ``summary.md`` into ``directory``; return the summary."""
    directory.mkdir(parents=True, exist_ok=True)
    document = {
        "schema": "sockspec-mutation/1",
        "target": label,
        "source": source,
        "score": score(rows),
        "files": {name: score(group) for name, group in _by_file(rows).items()},
        "mutants": [
            {
                "key": r.mutant.key,
                "operator": r.mutant.operator,
                "file": r.mutant.file,
                "line": r.mutant.line,
                "before": r.mutant.before,
                "after": r.mutant.after,
                "selection": r.selection,
                "outcome": r.outcome,
                "judgement": asdict(r.judgement),
                "triage_reason": r.triage[1] if r.triage else None,
            }
            for r in rows
        ],
    }
    (directory / "mutation.json").write_text(json.dumps(document, indent=1), encoding="utf-8")
    summary = directory / "summary.md"
    summary.write_text(render_summary(label, source, rows), encoding="utf-8")
    return summary


def render_summary(label: str, source: str, rows: Sequence[Row]) -> str:
    """The Markdown summary: the score line, then survivors and timeouts with their diffs."""
    s = score(rows)
    pct = "n/a" if s["score"] is None else f"{100 * s['score']:.1f}%"
    lines = [
        f"# Mutation score of {label}: {pct}",
        "",
        f"`{source}`: {s['mutants']} mutants (cosmic-ray operators): {s['killed']} killed, "
        f"{s['survived']} survived, {s['timeout']} timeout, {s['broken']} broken harness runs, "
        f"{s['equivalent']} equivalent, "
        f"{s['out_of_scope']} out of scope.",
        "",
    ]
    files = _by_file(rows)
    if len(files) > 1:  # a package: the score of each module
        lines += [
            "| file | mutants | killed | survived | triaged | score |",
            "|---|---|---|---|---|---|",
        ]
        for name, group in files.items():
            f = score(group)
            pct = "n/a" if f["score"] is None else f"{100 * f['score']:.1f}%"
            counts = (f["mutants"], f["killed"], f["survived"], f["equivalent"] + f["out_of_scope"])
            lines.append(f"| `{name}` | " + " | ".join(map(str, counts)) + f" | {pct} |")
        lines.append("")
    open_rows = [r for r in rows if r.outcome in ("survived", "timeout", "broken")]
    if open_rows:
        lines += [
            "## Survivors",
            "",
            "| key | where | edit | selection | why |",
            "|---|---|---|---|---|",
        ]
        for r in sorted(open_rows, key=lambda r: (r.mutant.file, r.mutant.line)):
            edit = f"`{r.mutant.before}` → `{r.mutant.after}`".replace("|", "\\|")
            how = r.judgement.how.replace("|", "\\|")
            lines.append(
                f"| `{r.mutant.key}` | {r.mutant.where} | {edit} | {r.selection} | {how} |"
            )
        lines.append("")
    triaged = [r for r in rows if r.outcome in ("equivalent", "out_of_scope")]
    if triaged:
        lines += ["## Triaged", "", "| key | where | outcome | reason |", "|---|---|---|---|"]
        for r in sorted(triaged, key=lambda r: (r.mutant.file, r.mutant.line)):
            reason = (r.triage[1] if r.triage else "").replace("|", "\\|")
            lines.append(f"| `{r.mutant.key}` | {r.mutant.where} | {r.outcome} | {reason} |")
        lines.append("")
    return "\n".join(lines)


def _by_file(rows: Sequence[Row]) -> dict[str, list[Row]]:
    """Rows grouped by the file they mutate, in file order."""
    groups: dict[str, list[Row]] = {}
    for row in sorted(rows, key=lambda r: r.mutant.file):
        groups.setdefault(row.mutant.file or "", []).append(row)
    return groups
