"""results.json: the canonical, versioned record of a run.

Schema ``sockspec-results/1``::

    {
      "schema": "sockspec-results/1",
      "run": {"started", "finished", "duration", "argv", "python", "platform",
              "hostname", "profile", "select", "seed", "jobs", "partial",
              "exit_status", "sockspec"},
      "implementations": [{"spec", "features", "file"}],
      "summary": {"<impl>": {"pass": n, "fail": n, ...}},
      "problems": [<problem>],
      "evidence_file": "results.jsonl.gz",
      "results": [<case record>]
    }

A case record has ``id``, ``scenario``, ``impl``, ``verdict`` (pass, fail,
hang, crash, unsupported, error), ``strictness``, ``duration`` (seconds),
``params``, ``findings`` (check, message, expected, observed, conn,
evidence), ``evidence``, ``reason`` and ``seed``.  While a run is going,
every finished case is also appended to ``results.jsonl`` so that nothing
measured is lost if the run itself is killed.

Evidence is stored once per case.  When the run ends, ``results.jsonl`` — the
complete record, bulky evidence included — is compressed to
``results.jsonl.gz`` (one JSON record per line; ``zcat`` streams it), and the
records of results.json keep the small evidence keys and the tails of
server output, stacks and traceback (``TAILED_EVIDENCE``); the rest of
``BULKY_EVIDENCE`` (event log, wire log, timeline, and those texts whole) is in
the file named by ``evidence_file`` only.  A document without ``evidence_file``
has all its evidence inline.

A problem (``harness._report.problems``) is one root cause across cases and
implementations: ``signature`` (what went wrong, normalised), ``diagnosis``
(one line in the words of the socketserver contract), ``check``, ``count``
(cases affected), ``impls`` (cases per implementation), ``representative``
(the smallest case showing it: ``impl``, ``id``, ``verdict``, ``replay``,
``transcript``), ``cases`` (``[impl, id]`` pairs, smallest first) and
``consequences`` (symptoms seen only with it: ``signature``, ``cases``).
"""

from __future__ import annotations

import gzip
import json
import os
import platform
import shutil
import socket
import sys
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from harness._model.records import CaseResult, Verdict
from harness._report.model import build_view
from harness._report.problems import cluster

SCHEMA = "sockspec-results/1"
STREAM = "results.jsonl"
#: The compressed stream, written when the run ends: where bulky evidence lives.
SEALED_STREAM = "results.jsonl.gz"
#: Evidence keys kept whole only in the stream (``evidence_file``): results.json leaves
#: out the first three and keeps the last characters of the others (``TAILED_EVIDENCE``:
#: the output of every failing case briefly, the rarer stacks and tracebacks at length).
BULKY_EVIDENCE = frozenset({"event_log", "wire", "timeline", "output", "stacks", "traceback"})
TAILED_EVIDENCE: dict[str, int] = {"output": 1000, "stacks": 4000, "traceback": 4000}
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


def to_document(
    info: RunInfo, results: Sequence[CaseResult], evidence_file: str | None = None
) -> dict[str, Any]:
    """The results.json document; with ``evidence_file`` its records leave out the bulky
    evidence that file holds."""
    records = [r.to_json() for r in results]
    problems = cluster(build_view({"schema": SCHEMA, "results": records}).cases)
    if evidence_file:
        records = [_slim(record) for record in records]
    document = {
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
        "problems": [p.to_json() for p in problems],
        "results": records,
    }
    if evidence_file:
        document["evidence_file"] = evidence_file
    return document


def _slim(record: dict[str, Any]) -> dict[str, Any]:
    slim: dict[str, Any] = {}
    for key, value in (record.get("evidence") or {}).items():
        if key in TAILED_EVIDENCE and isinstance(value, str):
            slim[key] = value[-TAILED_EVIDENCE[key] :]
        elif key not in BULKY_EVIDENCE:
            slim[key] = value
    return {**record, "evidence": slim}


def write_results(directory: Path, info: RunInfo, results: Sequence[CaseResult]) -> Path:
    """Write ``results.json`` atomically into ``directory``; returns its path.

    When the run's stream is there it is sealed first (``seal_stream``) and
    results.json points to it for the bulky evidence.
    """
    directory.mkdir(parents=True, exist_ok=True)
    sealed = seal_stream(directory)
    path = directory / "results.json"
    tmp = path.with_suffix(".json.tmp")
    document = to_document(info, results, sealed.name if sealed else None)
    tmp.write_text(json.dumps(document, indent=1, default=str))
    os.replace(tmp, path)
    return path


def seal_stream(directory: Path) -> Path | None:
    """Compress ``results.jsonl`` into ``results.jsonl.gz`` (then remove it); the sealed
    path, or None when this run streamed nothing."""
    plain = directory / STREAM
    sealed = directory / SEALED_STREAM
    if not plain.exists():
        return None  # nothing streamed by this run (a sealed file there is an older run's)
    tmp = sealed.with_name(sealed.name + ".tmp")
    with open(plain, "rb") as source, gzip.open(tmp, "wb", compresslevel=6) as target:
        shutil.copyfileobj(source, target)
    os.replace(tmp, sealed)
    plain.unlink()
    return sealed


def stream_records(directory: Path) -> Iterator[dict[str, Any]]:
    """The records of a run's stream (sealed or not), skipping unreadable lines."""
    sealed, plain = directory / SEALED_STREAM, directory / STREAM
    path = sealed if sealed.exists() else plain
    if not path.exists():
        return
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", encoding="utf-8", errors="replace") as lines:
            for line in lines:
                try:
                    record = json.loads(line)
                except ValueError:
                    continue  # a line cut short by a killed run
                if isinstance(record, dict):
                    yield record
    except (OSError, EOFError):
        return  # a stream cut short: what was read stands


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
