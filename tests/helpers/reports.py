"""A sample run with every verdict and evidence kind, written as results.json and reports."""

from __future__ import annotations

import io
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from harness._model.records import CaseResult, Finding, Strictness, Verdict
from harness._report.results import RunInfo, to_document
from harness._report.write import write_reports

MUTANT = "/tmp/x/mutant_finish_skipped.py"
EXPECTED = "setup → handle → finish → close_request"
OBSERVED = "setup → handle → close_request"
TRANSCRIPT = "conn#1 setup → handle raised InjectedError → finish MISSING → close_request"


def sample_case(
    impl: str,
    case_id: str,
    verdict: Verdict,
    strictness: Strictness = Strictness.MUST,
    **kw: Any,
) -> CaseResult:
    return CaseResult(case_id, case_id.split("[")[0], impl, verdict, strictness, 0.25, seed=7, **kw)


def failing_evidence() -> dict[str, Any]:
    t = 100.0
    events = [
        {
            "seq": n,
            "name": name,
            "phase": phase,
            "conn": 1,
            "t": t + n / 1000,
            "pid": 10,
            "thread_id": 1,
            "thread_name": "worker-1",
            "daemon": True,
            "server": 1,
            "exc_type": "InjectedError" if phase == "raise" else None,
            "exc": "Traceback...\nInjectedError: boom" if phase == "raise" else None,
            "detail": {},
        }
        for n, (name, phase) in enumerate(
            [
                ("get_request", "return"),
                ("setup", "call"),
                ("setup", "return"),
                ("handle", "call"),
                ("handle", "raise"),
                ("close_request", "call"),
            ]
        )
    ]
    return {
        "base_seed": 3,
        "events": len(events),
        "timeline": [
            {
                "conn": 1,
                "pid": 10,
                "thread": "worker-1",
                "start": 0.001,
                "end": 0.004,
                "raised": "InjectedError",
            },
            {
                "conn": 2,
                "pid": 10,
                "thread": "worker-2",
                "start": 0.002,
                "end": 0.009,
                "raised": None,
            },
        ],
        "event_log": events,
        "wire": [
            {
                "client": 0,
                "local": ["127.0.0.1", 5000],
                "ops": ["Send", "RecvAll"],
                "sent": {"len": 5, "head": b"hello".hex()},
                "received": {"len": 0, "head": ""},
                "ok": False,
                "error": "ConnectionResetError: reset",
                "start": 0.0,
                "end": 0.01,
            },
        ],
        "output": "Traceback (most recent call last):\nInjectedError: boom\x00\x1b[0m",
        "pcap": "captures/case1.pcap",
        "mystery_key": {"anything": [1, 2, 3]},
    }


def sample_results() -> list[CaseResult]:
    """Three implementations, every verdict, one case not run for one implementation."""
    finding = Finding(
        "lifecycle.order",
        "conn#1: hooks out of order",
        EXPECTED,
        OBSERVED,
        1,
        {"transcript": TRANSCRIPT},
    )
    twin = Finding(
        "lifecycle.order",
        "conn#2: hooks out of order",
        EXPECTED,
        OBSERVED,
        2,
        {"transcript": TRANSCRIPT.replace("conn#1", "conn#2")},
    )
    echo, order = "echo.basic[tcp]", "lifecycle.order[tcp-sync]"
    udp, stop = "echo.basic[udp]", "shutdown.prompt[tcp]"
    return [
        sample_case("stdlib", echo, Verdict.PASS, evidence={"timeline": []}),
        sample_case("stdlib", udp, Verdict.UNSUPPORTED, reason="no UDP here"),
        sample_case("stdlib", order, Verdict.PASS),
        sample_case("stdlib", stop, Verdict.XFAIL, reason="known: slow shutdown"),
        sample_case(MUTANT, echo, Verdict.PASS),
        sample_case(MUTANT, udp, Verdict.XPASS),
        sample_case(
            MUTANT, order, Verdict.FAIL, findings=(finding, twin), evidence=failing_evidence()
        ),
        sample_case(
            MUTANT,
            stop,
            Verdict.HANG,
            reason="shutdown() did not return within 5s",
            evidence={"stacks": "Thread 0x1 (most recent call first):\n  File wait"},
        ),
        sample_case(
            "reference",
            echo,
            Verdict.CRASH,
            reason="worker process killed by SIGSEGV",
            evidence={"output": "Fatal Python error"},
        ),
        sample_case(
            "reference",
            udp,
            Verdict.FAIL,
            Strictness.SHOULD,
            findings=(Finding("echo.bytes", "echo differs", "b'ab'", "b'a'"),),
        ),
        sample_case(
            "reference",
            order,
            Verdict.ERROR,
            reason="scenario raised KeyError",
            evidence={"traceback": "KeyError: 'x'"},
        ),
    ]


def sample_document() -> dict[str, Any]:
    """A results.json document built from records, as the runner builds it."""
    return to_document(sample_info(), sample_results())


def sample_info() -> RunInfo:
    """The run metadata of the sample documents."""
    started = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
    return RunInfo(
        started,
        started + timedelta(seconds=3),
        ("sockspec", "run"),
        "default",
        (),
        3,
        2,
        False,
        2,
        ({"spec": "stdlib"}, {"spec": MUTANT}, {"spec": "reference"}),
    )


def write_sample(directory: Path, document: Any = None) -> dict[str, Path]:
    """Write ``document`` (the sample by default) as results.json and every report."""
    directory.mkdir(parents=True, exist_ok=True)
    doc = sample_document() if document is None else document
    (directory / "results.json").write_text(json.dumps(doc))
    return write_reports(directory, io.StringIO())
