"""Write every report of a run from its results.json.

``write_reports(report_dir)`` reads ``report_dir/results.json`` (the canonical
record) into the view model and writes ``summary.md``, ``junit.xml``,
``index.html`` and one page per implementation × case under ``cases/``, all
linking one ``report.css``.  The case pages take their bulky evidence from the
run's stream (``results.jsonl.gz``) when results.json leaves it there.  Reports
never fail a run: a report that cannot be written is told in one line and the
others are still written.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import replace
from pathlib import Path
from typing import TextIO

from harness._report.html import STYLESHEET, render_case, render_fallback, render_index
from harness._report.junit import render_junit
from harness._report.markdown import render_summary
from harness._report.model import CaseView, ReportView, load_view, why
from harness._report.results import BULKY_EVIDENCE, stream_records


def write_reports(report_dir: Path, stream: TextIO | None = None) -> dict[str, Path]:
    """Write summary.md, junit.xml, index.html and the case pages from results.json.

    Returns the paths written, keyed ``summary``, ``junit`` and ``html``.  Never
    raises: each report that fails is told as one line on ``stream`` (stderr).
    """
    out = stream if stream is not None else sys.stderr

    def warn(line: str) -> None:
        try:
            out.write(f"sockspec: report: {line}\n")
            out.flush()
        except Exception:  # a closed stream must not break the run either
            pass

    try:
        view = load_view(report_dir / "results.json")
    except Exception as exc:
        warn(f"cannot read {report_dir / 'results.json'}: {why(exc)}")
        return {}
    written: dict[str, Path] = {}
    writers: list[tuple[str, str, Callable[[], str]]] = [
        ("summary", "summary.md", lambda: render_summary(view)),
        ("junit", "junit.xml", lambda: render_junit(view)),
    ]
    for key, name, render in writers:
        try:
            written[key] = _write(report_dir / name, render())
        except Exception as exc:
            warn(f"{name} not written: {why(exc)}")
    try:
        shutil.copyfile(STYLESHEET, report_dir / STYLESHEET.name)
        _write_case_pages(view, report_dir, warn)
        files = [p.name for p in written.values()] + ["results.json"]
        written["html"] = _write(report_dir / "index.html", render_index(view, files))
    except Exception as exc:
        warn(f"index.html not written: {why(exc)}")
    return written


def _write_case_pages(view: ReportView, report_dir: Path, warn: Callable[[str], None]) -> None:
    failed: list[str] = []

    def page(case: CaseView) -> None:
        try:
            text = render_case(view, case)
        except Exception as exc:
            failed.append(f"{case.impl} {case.id}: {why(exc)}")
            text = render_fallback(case, why(exc))
        _write(report_dir / case.page, text)

    # Stream first, one record at a time: the bulky evidence is never all in memory.
    done: set[tuple[str, str]] = set()
    for case in _stream_cases(view, report_dir):
        page(case)
        done.add((case.impl, case.id))
    for case in view.cases:
        if (case.impl, case.id) not in done:
            page(case)
    if failed:
        warn(f"{len(failed)} case page(s) rendered plainly; first: {failed[0]}")


def _stream_cases(view: ReportView, report_dir: Path) -> Iterator[CaseView]:
    """The view's cases that the stream holds, with the bulky evidence results.json
    leaves out (a repeated record comes again: its page is rewritten, the last wins)."""
    if not view.evidence_file:
        return
    for record in stream_records(report_dir):
        case = view.cell(str(record.get("impl")), str(record.get("id")))
        evidence = record.get("evidence")
        if case is None or not isinstance(evidence, Mapping):
            continue
        bulky = {k: v for k, v in evidence.items() if k in BULKY_EVIDENCE}
        yield replace(case, evidence={**case.evidence, **bulky})


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    return path
