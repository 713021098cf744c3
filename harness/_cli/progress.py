"""Run progress: a live rich bar on a terminal, plain lines otherwise.

``make_progress(stream)`` picks one.  Both print each failing case as it
happens (``FAIL  impl case — reason``) and, at the end, "N distinct problems"
per implementation, the problems (one per root cause, with the smallest case
and its replay command), the verdict counts and where the reports are.
Progress never breaks a run: the live display is stopped at exit even if the
run dies between start and finish.
"""

from __future__ import annotations

import atexit
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, TextIO

from harness._model.records import CaseResult, Verdict
from harness._report.model import build_view
from harness._report.problems import Problem, cluster, problem_counts
from harness._report.text import one_line

if TYPE_CHECKING:
    from rich.progress import TaskID

    from harness._control.runner import RunOutcome

PROBLEMS = frozenset({Verdict.FAIL, Verdict.HANG, Verdict.CRASH, Verdict.ERROR})
#: Printed as they happen too, under their own name, but not counted as failures.
SHOWN = PROBLEMS | {Verdict.XFAIL}
REPORT_FILES = ("summary.md", "index.html", "junit.xml")
MAX_SHOWN = 10


class RunProgress(Protocol):
    """What the CLI drives: ``start`` once, ``case_done`` per case, ``finish`` at the end."""

    def start(self, total: int) -> None:
        """Called once with the number of cases."""

    def case_done(self, result: CaseResult) -> None:
        """Called after each case (from any worker thread)."""

    def finish(self, outcome: RunOutcome) -> None:
        """Called once after the run, with its outcome."""


class LineProgress:
    """Plain lines for logs: one at the start, one per problem, then the summary."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.started = time.monotonic()
        self._lock = threading.Lock()

    def start(self, total: int) -> None:
        """Called once with the number of cases."""
        self.started = time.monotonic()
        self.stream.write(f"sockspec: running {total} case(s)\n")
        self.stream.flush()

    def note(self, text: str) -> None:
        """A line about the run (which families are judged)."""
        self.stream.write(text + "\n")
        self.stream.flush()

    def case_done(self, result: CaseResult) -> None:
        """Called after each case: prints a line when it is a problem (or an xfail)."""
        if result.verdict in SHOWN:
            with self._lock:
                self.stream.write(problem_line(result) + "\n")
                self.stream.flush()

    def finish(self, outcome: RunOutcome) -> None:
        """Print the counts per implementation and where the reports are."""
        self.stream.write("\n".join(summary_lines(outcome, time.monotonic() - self.started)))
        self.stream.write("\n")
        self.stream.flush()


class LiveProgress:
    """A rich progress bar: cases done, failures so far, time elapsed and left."""

    def __init__(self, stream: TextIO) -> None:
        # Imported here: rich costs ~70 ms of CPU to import, and most runs (CI, scripts,
        # the project's own tests) are not on a terminal and never show the bar.
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.console = Console(file=stream, force_terminal=True, highlight=False)
        self.bar = Progress(
            TextColumn("[bold]sockspec"),
            BarColumn(bar_width=24),
            MofNCompleteColumn(),
            TextColumn("{task.fields[failed]}"),
            TimeElapsedColumn(),
            TextColumn("left"),
            TimeRemainingColumn(),
            TextColumn("[dim]{task.fields[last]}"),
            console=self.console,
        )
        self.task: TaskID | None = None
        self.failed = 0
        self.started = time.monotonic()
        self._lock = threading.Lock()
        self._running = False

    def start(self, total: int) -> None:
        """Show the bar."""
        self.started = time.monotonic()
        self.task = self.bar.add_task("cases", total=total, failed=_failed(0), last="")
        self.bar.start()
        self._running = True
        atexit.register(self._stop)

    def note(self, text: str) -> None:
        """A line about the run, above the bar."""
        self.bar.console.print(text, markup=False, highlight=False, soft_wrap=True)

    def case_done(self, result: CaseResult) -> None:
        """Advance the bar; print problems above it."""
        with self._lock:
            if result.verdict in SHOWN:
                self.failed += result.verdict in PROBLEMS
                style = "red" if result.verdict in PROBLEMS else "yellow"
                self.bar.console.print(
                    problem_line(result), markup=False, style=style, soft_wrap=True
                )
            if self.task is not None:
                last = one_line(f"{result.verdict.value} {result.id}")[:60]
                self.bar.update(self.task, advance=1, failed=_failed(self.failed), last=last)

    def finish(self, outcome: RunOutcome) -> None:
        """Stop the bar, then print the counts per implementation and where the reports are."""
        self._stop()
        atexit.unregister(self._stop)
        took = time.monotonic() - self.started
        for line in summary_lines(outcome, took):
            self.console.print(line, markup=False, highlight=False, soft_wrap=True)

    def _stop(self) -> None:
        if self._running:
            self._running = False
            self.bar.stop()


def make_progress(stream: TextIO) -> LiveProgress | LineProgress:
    """Progress suited to ``stream``: a live bar when it is a terminal, plain lines otherwise."""
    try:
        live = stream.isatty()
    except (AttributeError, ValueError):
        live = False
    return LiveProgress(stream) if live else LineProgress(stream)


def problem_line(result: CaseResult) -> str:
    """``FAIL  impl case — reason``."""
    reason = f" — {one_line(result.reason)}" if result.reason else ""
    what = one_line(f"{result.impl} {result.id}")
    return f"{result.verdict.value.upper():5} {what}{reason}"


def problem_lines(results: Sequence[CaseResult]) -> list[str]:
    """``impl: N distinct problem(s)`` per implementation, then the problems: diagnosis,
    cases affected, the smallest case and the command that replays it."""
    view = build_view({"schema": "sockspec-results/1", "results": [r.to_json() for r in results]})
    problems = cluster(view.cases)
    counts = problem_counts(problems, (i.spec for i in view.impls))
    lines = [
        f"{one_line(impl.spec)}: {counts.get(impl.spec, 0)} distinct problem(s)"
        for impl in view.impls
    ]
    for n, problem in enumerate(problems[:MAX_SHOWN], 1):
        lines += _problem(n, problem)
    if len(problems) > MAX_SHOWN:
        lines.append(f"  … and {len(problems) - MAX_SHOWN} more problem(s): see summary.md")
    return lines


def _problem(n: int, problem: Problem) -> list[str]:
    rep = problem.representative
    lines = [
        f"  {n}. {one_line(problem.diagnosis)} — {len(problem.cases)} case(s)",
        f"     smallest: {rep.verdict.upper()} {one_line(f'{rep.impl} {rep.id}')}",
    ]
    if rep.replay:
        lines.append(f"     replay: {one_line(rep.replay)}")
    return lines


def summary_lines(outcome: RunOutcome, took: float) -> list[str]:
    """Distinct problems and the problems, verdict counts per implementation, then
    results.json and every report written."""
    counts: dict[str, dict[str, int]] = {}
    for r in outcome.results:
        per = counts.setdefault(r.impl, {})
        per[r.verdict.value] = per.get(r.verdict.value, 0) + 1
    lines = problem_lines(outcome.results)
    lines += [
        f"{one_line(impl)}: " + ", ".join(f"{n} {v}" for v, n in sorted(c.items()))
        for impl, c in counts.items()
    ]
    partial = f" (partial: {outcome.stopped_by or 'interrupted'})" if outcome.partial else ""
    lines.append(
        f"report: {outcome.report_dir}/results.json{partial} — {took:.1f}s, "
        f"exit status {outcome.exit_status}"
    )
    lines += [f"  {name}: {p}" for name, p in _reports(outcome.report_dir)]
    return lines


def _reports(report_dir: Path) -> list[tuple[str, Path]]:
    return [(name, report_dir / name) for name in REPORT_FILES if (report_dir / name).exists()]


def _failed(n: int) -> str:
    return f"[red]{n} failed" if n else "0 failed"
