"""Which cases judge a mutant: those that execute its line, smallest and most varied first.

Coverage, one context per case (``tracer``), says which cases run each line.
Three kinds of line need more than that:

* a line run only while the module is imported (class attributes, defaults,
  ``def`` lines) changes what every case sees: it is judged by every case;
* a line no traced case runs (a forked child's path, which leaves with
  ``os._exit`` before coverage can save) is judged by every forking case;
* otherwise the cases that ran it, or ran the first line of the statement it
  belongs to: a line inside a multi-line condition (``and hasattr(...)``) runs
  only when the clauses before it do not settle the outcome, yet a mutant of it
  changes what the other cases see as well.

Cases are ordered so that the first batches are cheap and varied: one case of
each scenario in turn (round robin), fewer clients first.  A mutant is killed
by the first batch that fails, so most mutants never run the later ones.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

#: Batch sizes for judging one mutant: small first, the rest in one go.
BATCHES: tuple[int, ...] = (6, 24, 96)


@dataclass(frozen=True)
class LineCases:
    """What coverage says about the lines of one file."""

    by_line: Mapping[int, frozenset[str]]  # line -> ids of the cases that ran it
    all_cases: tuple[str, ...]  # every traced case, in catalogue order
    starts: Mapping[int, int] = field(default_factory=dict)  # line -> its statement's first

    @classmethod
    def from_coverage(
        cls, data_file: str, source: str, all_cases: Sequence[str], text: str = ""
    ) -> LineCases:
        """Read the contexts of ``source`` out of a coverage data file; ``text`` is its
        source, for the statements that span several lines."""
        import coverage  # optional: the mutation extra

        data = coverage.CoverageData(data_file)
        data.read()
        wanted = next((f for f in data.measured_files() if f.endswith(source)), None)
        by_line = {} if wanted is None else data.contexts_by_lineno(wanted)
        return cls(
            {line: frozenset(c for c in ctxs) for line, ctxs in by_line.items()},
            tuple(all_cases),
            statement_starts(text) if text else {},
        )

    def cases_for(self, line: int) -> tuple[str, tuple[str, ...]]:
        """(why, ids) for ``line``: see the module docstring; ids ordered for batching."""
        start = self.starts.get(line, line)
        if line not in self.by_line and start in self.by_line and start != line:
            line = start  # a continuation line the traced cases never reached
        if line not in self.by_line:
            forking = [c for c in self.all_cases if "-forking" in c]
            return "not run by any traced case: judged by the forking cases", _order(forking)
        ran = (self.by_line[line] | self.by_line.get(start, frozenset())) - {""}
        if not ran:
            return "run only at import: judged by every case", _order(self.all_cases)
        return f"run by {len(ran)} case(s)", _order(c for c in self.all_cases if c in ran)


def statement_starts(text: str) -> dict[int, int]:
    """For each line inside a statement's header that spans several lines, that
    statement's first line (a compound statement's header ends where its body begins)."""
    starts: dict[int, int] = {}
    for node in ast.walk(ast.parse(text)):
        if not isinstance(node, ast.stmt) or node.end_lineno is None:
            continue
        body = getattr(node, "body", None)
        last = body[0].lineno - 1 if isinstance(body, list) and body else node.end_lineno
        for line in range(node.lineno + 1, last + 1):
            starts[line] = node.lineno
    return starts


def _clients(case_id: str) -> int:
    found = re.search(r"clients=(\d+)", case_id)
    return int(found.group(1)) if found else 1


def _order(case_ids: Iterable[str]) -> tuple[str, ...]:
    """Round robin over scenarios, fewest clients first within each."""
    by_scenario: dict[str, list[str]] = {}
    for case_id in case_ids:
        by_scenario.setdefault(case_id.split("[", 1)[0], []).append(case_id)
    queues = [sorted(ids, key=_clients) for ids in by_scenario.values()]
    out: list[str] = []
    while any(queues):
        for queue in queues:
            if queue:
                out.append(queue.pop(0))
    return tuple(out)


def batches(ids: Sequence[str]) -> list[list[str]]:
    """Split ordered case ids into the judging batches (``BATCHES``, then the rest)."""
    out: list[list[str]] = []
    start = 0
    for size in BATCHES:
        if start >= len(ids):
            break
        out.append(list(ids[start : start + size]))
        start += size
    if start < len(ids):
        out.append(list(ids[start:]))
    return out
