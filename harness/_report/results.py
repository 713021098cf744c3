"""results.json: the canonical, versioned record of a run.

Schema ``sockspec-results/1``::

    {
      "schema": "sockspec-results/1",
      "run": {"started", "finished", "duration", "argv", "python", "platform",
              "hostname", "profile", "select", "seed", "jobs", "partial",
              "exit_status", "sockspec"},
      "implementations": [{"spec", "features", "judged", "file"}],
      "summary": {"<impl>": {"pass": n, "fail": n, ...}},
      "results": [<case record>]
    }

A case record has ``id``, ``scenario``, ``impl``, ``verdict`` (pass, fail,
hang, crash, unsupported, error), ``strictness``, ``duration`` (seconds),
``params``, ``findings`` (check, message, expected, observed, conn,
evidence), ``evidence``, ``reason`` and ``seed``.  While a run is going,
every finished case is also appended to ``results.jsonl`` so that nothing
measured is lost if the run itself is killed.
"""

from __future__ import annotations

import json
import os
import platform
import socket
import sys
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from harness._model.records import CaseResult, Verdict

SCHEMA = "sockspec-results/1"
VERSION = "0.1.0"


@dataclass(frozen=True)
class RunInfo:
    """Metadata of a run."""

    started: datetime
    finished: datetime
    argv: tuple[str, ...]
    profile: str
    select: tuple[str, ...]
    seed: int
    jobs: int
    partial: bool
    exit_status: int
    implementations: tuple[dict[str, Any], ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)


def verdict_counts(results: Iterable[CaseResult]) -> dict[str, dict[str, int]]:
    """Verdict counts per implementation."""
    counts: dict[str, Counter[str]] = {}
    for result in results:
        counts.setdefault(result.impl, Counter())[result.verdict.value] += 1
    return {impl: {v.value: c[v.value] for v in Verdict} for impl, c in counts.items()}


def to_document(info: RunInfo, results: Sequence[CaseResult]) -> dict[str, Any]:
    """The results.json document."""
    return {
        "schema": SCHEMA,
        "run": {
            "started": info.started.isoformat(),
            "finished": info.finished.isoformat(),
            "duration": round((info.finished - info.started).total_seconds(), 3),
            "argv": list(info.argv),
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            "hostname": socket.gethostname(),
            "cpus": os.cpu_count(),
            "profile": info.profile,
            "select": list(info.select),
            "seed": info.seed,
            "jobs": info.jobs,
            "partial": info.partial,
            "exit_status": info.exit_status,
            "sockspec": VERSION,
            **info.extra,
        },
        "implementations": list(info.implementations),
        "summary": verdict_counts(results),
        "results": [r.to_json() for r in results],
    }


def write_results(directory: Path, info: RunInfo, results: Sequence[CaseResult]) -> Path:
    """Write ``results.json`` atomically into ``directory``; returns its path."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "results.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(to_document(info, results), indent=1, default=str))
    os.replace(tmp, path)
    return path


def append_line(directory: Path, result: CaseResult) -> None:
    """Append one finished case to ``results.jsonl`` (the crash-proof stream)."""
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / "results.jsonl", "a") as stream:
        stream.write(json.dumps(result.to_json(), default=str) + "\n")


def read_results(path: Path) -> tuple[dict[str, Any], list[CaseResult]]:
    """Load a results.json (or a report directory holding one)."""
    if path.is_dir():
        path = path / "results.json"
    document = json.loads(path.read_text())
    if document.get("schema") != SCHEMA:
        raise ValueError(
            f"{str(path)!r} is not a {SCHEMA} file (schema {document.get('schema')!r})"
        )
    return document, [CaseResult.from_json(r) for r in document["results"]]


def now() -> datetime:
    """The current time, timezone-aware."""
    return datetime.now(timezone.utc)
