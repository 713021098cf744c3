"""Run progress: a live line on a terminal, plain lines otherwise."""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, TextIO

from ._records import CaseResult, Verdict

if TYPE_CHECKING:
    from ._runner import RunOutcome

_MARK = {
    Verdict.PASS: ".",
    Verdict.FAIL: "F",
    Verdict.HANG: "H",
    Verdict.CRASH: "C",
    Verdict.UNSUPPORTED: "u",
    Verdict.ERROR: "E",
    Verdict.XFAIL: "x",
    Verdict.XPASS: "X",
}


class LineProgress:
    """Progress for a terminal (one updating line) or a log (a line per problem)."""

    def __init__(self, stream: TextIO, live: bool) -> None:
        self.stream = stream
        self.live = live
        self.total = 0
        self.done = 0
        self.bad = 0
        self.started = time.monotonic()
        self._lock = threading.Lock()

    def start(self, total: int) -> None:
        """Called once with the number of cases."""
        self.total = total
        self.started = time.monotonic()
        if not self.live:
            self.stream.write(f"sockspec: running {total} case(s)\n")

    def case_done(self, result: CaseResult) -> None:
        """Called after each case."""
        with self._lock:
            self.done += 1
            problem = result.verdict in (Verdict.FAIL, Verdict.HANG, Verdict.CRASH, Verdict.ERROR)
            self.bad += problem
            if self.live:
                self._redraw(result)
            elif problem:
                self.stream.write(
                    f"{result.verdict.value.upper():5} {result.impl} {result.id}"
                    f"{' — ' + result.reason if result.reason else ''}\n"
                )
            self.stream.flush()

    def _redraw(self, result: CaseResult) -> None:
        elapsed = time.monotonic() - self.started
        left = elapsed / self.done * (self.total - self.done) if self.done else 0.0
        width = 30
        filled = int(width * self.done / max(1, self.total))
        bar = "#" * filled + "-" * (width - filled)
        self.stream.write(
            f"\r[{bar}] {self.done}/{self.total}  problems {self.bad}  "
            f"~{left:4.0f}s left  {_MARK[result.verdict]} {result.id[:50]:50}"
        )

    def finish(self, outcome: RunOutcome) -> None:
        """Print the summary and where the report is."""
        if self.live:
            self.stream.write("\n")
        counts: dict[str, dict[str, int]] = {}
        for r in outcome.results:
            counts.setdefault(r.impl, {}).setdefault(r.verdict.value, 0)
            counts[r.impl][r.verdict.value] += 1
        for impl, c in counts.items():
            parts = ", ".join(f"{n} {v}" for v, n in sorted(c.items()))
            self.stream.write(f"{impl}: {parts}\n")
        took = time.monotonic() - self.started
        partial = " (partial: interrupted)" if outcome.partial else ""
        self.stream.write(
            f"report: {outcome.report_dir}/results.json{partial} — {took:.1f}s, "
            f"exit status {outcome.exit_status}\n"
        )
        self.stream.flush()


def make_progress(stream: TextIO) -> LineProgress:
    """Progress suited to ``stream``: live when it is a terminal."""
    return LineProgress(stream, live=stream.isatty())
