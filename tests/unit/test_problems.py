"""Triage: failing cases clustered into one problem per root cause, on constructed results."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from helpers.reports import sample_info

from harness._model.records import CaseResult, Finding, Strictness, Verdict
from harness._report.compare import compare, render_comparison
from harness._report.markdown import MAX_CHARS, render_summary
from harness._report.model import CaseView, build_view
from harness._report.problems import cluster, problem_counts
from harness._report.results import stream_records, to_document
from harness._report.signatures import deviation, normalise

IMPL = "/tmp/x/mutant_two_bugs.py"
HANDLER = ["handler_init", "setup", "handle", "finish"]
SERVER = ["get_request", "verify_request", "process_request", "finish_request"]
TAIL = ["shutdown_request", "close_request"]
SWAPPED = ["handler_init", "handle", "setup", "finish"]


def order(transport: str, kind: str, conn: int = 1, handler: list[str] = SWAPPED) -> Finding:
    """A hook-order finding as the lifecycle check words it for ``kind``."""
    if kind == "forking":  # the child's path: a different sequence, the same deviation
        want, got = ["finish_request", *HANDLER, *TAIL], ["finish_request", *handler, *TAIL]
    else:
        want, got = [*SERVER, *HANDLER, *TAIL], [*SERVER, *handler, *TAIL]
    return Finding(
        "lifecycle.order",
        f"conn#{conn}: server hooks out of order, missing or repeated",
        " → ".join(want),
        " → ".join(got),
        conn,
        {"transcript": f"conn#{conn} " + " → ".join(got)},
    )


def echo(port: int, payload: bytes) -> Finding:
    """A client-visible symptom: its bytes and address differ from case to case."""
    return Finding(
        "replies.echo",
        f"client 0 at ('127.0.0.1', {port}) got nothing back",
        f"client 0: {len(payload)} bytes {payload!r}",
        "0 bytes b''",
    )


def handle_error_twice(conn: int) -> Finding:
    return Finding(
        "errors.handle_error_once",
        f"conn#{conn}: handle_error called 2 time(s)",
        "handle_error called once",
        "handle_error called 2 times",
        conn,
    )


def case(
    case_id: str,
    *findings: Finding,
    impl: str = IMPL,
    verdict: Verdict = Verdict.FAIL,
    strictness: Strictness = Strictness.MUST,
    duration: float = 0.5,
    clients: int = 1,
    **evidence: Any,
) -> CaseResult:
    transport, kind = case_id.split("[", 1)[1].rstrip("]").split("-")[:2]
    return CaseResult(
        case_id,
        case_id.split("[", 1)[0],
        impl,
        verdict,
        strictness,
        duration,
        params={"transport": transport, "kind": kind, "clients": clients},
        findings=findings,
        evidence={"base_seed": 1, **evidence},
    )


def views(*results: CaseResult) -> list[CaseView]:
    doc = {"schema": "sockspec-results/1", "results": [r.to_json() for r in results]}
    return list(build_view(doc).cases)


ONE_BUG = [
    case(f"echo.basic[{t}-{k}]", order(t, k, conn=n + 1), echo(40000 + n, bytes([n]) * 8))
    for n, (t, k) in enumerate(
        (t, k)
        for t in ("tcp", "udp", "unix_stream", "tcp6")
        for k in ("sync", "threading", "forking")
    )
]


def test_one_bug_on_every_transport_and_kind_is_one_problem() -> None:
    problems = cluster(views(*ONE_BUG))
    assert len(problems) == 1
    (problem,) = problems
    assert problem.signature == "hook order: handle before setup"
    assert problem.diagnosis == "handle() runs before setup() has run"
    assert len(problem.cases) == 12
    # The echo symptom differs in bytes and ports from case to case, yet it is one
    # consequence, folded into the problem that explains it.
    assert [n for _, n in problem.consequences] == [12]


def test_two_bugs_are_two_problems_and_a_case_with_both_is_under_both() -> None:
    both = case("errors.handler[tcp-sync]", order("tcp", "sync"), handle_error_twice(3))
    alone = [case(f"errors.handler[udp-{k}]", handle_error_twice(1)) for k in ("sync", "forking")]
    problems = cluster(views(*ONE_BUG, both, *alone))
    assert len(problems) == 2
    by_check = {p.check: p for p in problems}
    assert both.id in {c.id for c in by_check["lifecycle.order"].cases}
    assert both.id in {c.id for c in by_check["errors.handle_error_once"].cases}
    assert len(by_check["errors.handle_error_once"].cases) == 3
    assert problem_counts(problems, [IMPL]) == {IMPL: 2}


def test_a_hang_and_a_fail_in_the_same_case_are_two_problems() -> None:
    stacks = (
        'Thread 0x1 "Thread-3 (process_request_thread)":\n'
        '  File "/tmp/x/mutant.py", line 9, in finish_request\n'
        '  File "/tmp/x/mutant.py", line 7, in join\n'
    )
    hung = case(
        "shutdown.busy[tcp-threading]",
        handle_error_twice(1),
        verdict=Verdict.HANG,
        stacks=stacks,
    )
    problems = cluster(views(replace_reason(hung, "server_close() did not return within 5s")))
    assert sorted(p.check for p in problems) == ["errors.handle_error_once", "hang"]
    hang = next(p for p in problems if p.check == "hang")
    assert hang.signature == "hang: server_close() in join < finish_request"
    assert hang.diagnosis.startswith("server_close() never returns")


def replace_reason(result: CaseResult, reason: str) -> CaseResult:
    data = result.to_json()
    data["reason"] = reason
    return CaseResult.from_json(data)


def test_the_representative_is_the_smallest_case() -> None:
    f = handle_error_twice(1)
    results = [
        case("a.x[udp-sync]", f, clients=1, duration=0.1),  # simple, but a datagram transport
        case("a.x[tcp-forking]", f, clients=1, duration=0.1),
        case("a.x[tcp-sync]", f, clients=5, duration=0.01),  # more clients
        case("a.x[tcp-threading]", f, clients=1, duration=0.2),
        case("b.x[tcp-sync]", f, clients=1, strictness=Strictness.SHOULD, duration=0.01),
        case("c.x[tcp-threading]", f, clients=1, duration=0.05),
    ]
    (problem,) = cluster(views(*results))
    assert problem.representative.id == "c.x[tcp-threading]"  # must, 1 client, tcp, fastest
    assert [c.id for c in problem.cases][1:3] == ["a.x[tcp-threading]", "a.x[tcp-forking]"]
    assert problem.cases[-1].id == "b.x[tcp-sync]"  # should comes after every must


def test_the_same_problem_in_two_implementations_counts_cases_across_them() -> None:
    other = [case(c.id, *c.findings, impl="/tmp/x/other.py") for c in ONE_BUG[:3]]
    (problem,) = cluster(views(*ONE_BUG, *other))
    assert len(problem.cases) == 15
    assert problem.impls == (IMPL, "/tmp/x/other.py")
    assert problem.to_json()["impls"] == {IMPL: 12, "/tmp/x/other.py": 3}


def test_a_symptom_also_seen_without_the_deviation_is_a_problem_of_its_own() -> None:
    lone = case("echo.basic[tcp-sync-size=9]", echo(1234, b"x" * 8))
    problems = cluster(views(*ONE_BUG, lone))
    assert sorted(p.check for p in problems) == ["lifecycle.order", "replies.echo"]
    assert len(next(p for p in problems if p.check == "replies.echo").cases) == 13


def test_deviations_are_told_without_positions() -> None:
    assert deviation(["setup", "handle", "finish"], ["handle", "setup", "finish"]) == [
        "handle before setup"
    ]
    assert deviation(["setup", "handle", "finish"], ["setup", "handle"]) == ["no finish"]
    assert deviation(["setup", "handle"], ["setup", "handle", "handle"]) == ["extra handle"]


def test_normalise_drops_what_varies_between_cases_of_one_bug() -> None:
    a = normalise("client 0 at ('127.0.0.1', 40312) on tcp got b'\\x01\\x02' (pid 4121)")
    b = normalise("client 3 at ('::1', 51515) on udp6 got b'zz' (pid 17)")
    assert a == b


def test_passing_runs_have_no_problems() -> None:
    passing = case("echo.basic[tcp-sync]", verdict=Verdict.PASS)
    assert cluster(views(passing)) == []


def test_results_json_has_a_problems_section() -> None:
    doc = to_document(sample_info(), [*ONE_BUG, case("x.y[tcp-sync]", handle_error_twice(1))])
    problems = doc["problems"]
    assert [p["check"] for p in problems] == ["lifecycle.order", "errors.handle_error_once"]
    first = problems[0]
    assert set(first) >= {"signature", "diagnosis", "representative", "cases", "count"}
    assert first["count"] == 12 and len(first["cases"]) == 12
    assert first["representative"]["replay"].startswith("python -m harness run")
    assert "handle → setup" in first["representative"]["transcript"]


def test_results_json_leaves_bulky_evidence_to_the_stream() -> None:
    bulky = case(
        "x.y[tcp-sync]", handle_error_twice(1), event_log=[{"name": "x"}], output="o" * 9000
    )
    doc = to_document(sample_info(), [bulky], evidence_file="results.jsonl.gz")
    evidence = doc["results"][0]["evidence"]
    assert "event_log" not in evidence and len(evidence["output"]) == 1000
    assert doc["evidence_file"] == "results.jsonl.gz"


def test_stream_records_reads_a_sealed_stream_and_skips_a_cut_line(tmp_path: Path) -> None:
    import gzip

    with gzip.open(tmp_path / "results.jsonl.gz", "wt") as out:
        out.write(json.dumps({"id": "a"}) + "\n" + '{"id": "b", "cut')
    assert [r["id"] for r in stream_records(tmp_path)] == ["a"]


def test_summary_of_a_huge_run_fits_a_comment_and_says_what_was_cut() -> None:
    results = []
    for n in range(400):  # 400 distinct problems, each with long texts and many cases
        message = f"check {n} failed: " + "why " * 200
        finding = Finding(f"family{n}.check", message, "e" * 900 + str(n), "o" * 900 + str(n))
        for m in range(6):
            results.append(case(f"s{n}.case[tcp-sync-n={m}-{'p' * 150}]", finding))
    doc = {"schema": "sockspec-results/1", "results": [r.to_json() for r in results]}
    text = render_summary(build_view(doc))
    assert len(text) <= MAX_CHARS
    assert "400 distinct problem(s)" in text.splitlines()[0]
    assert "more problem(s), one line each" in text or "cut to fit a comment" in text


def test_compare_reports_fixed_new_and_remaining_problems() -> None:
    old_doc = to_document(sample_info(), [*ONE_BUG, case("x.y[tcp-sync]", handle_error_twice(1))])
    fresh = case("z.w[tcp-sync]", Finding("resources.fds", "a socket left open", "0", "1"))
    new_doc = to_document(sample_info(), [*ONE_BUG, fresh])
    result = compare(old_doc, new_doc)
    assert [p.signature.split(":")[0] for p in result.problems_fixed] == [
        "errors.handle_error_once"
    ]
    assert [p.signature.split(":")[0] for p in result.problems_new] == ["resources.fds"]
    assert [p.signature for p in result.problems_remaining] == ["hook order: handle before setup"]
    text = render_comparison(result)
    assert "problems: 1 fixed, 1 new, 1 remaining" in text


def test_parameter_values_are_left_out_of_the_signature() -> None:
    results = [
        case(
            f"lifecycle.handler.order[tcp-sync-fault={hook}]",
            Finding(
                "errors.handle_error_once",
                "conn#1: handle_error called 0 time(s)",
                f"1 call(s) after {hook} raised InjectedError",
                "0 call(s)",
                1,
            ),
        )
        for hook in ("setup", "handle", "finish")
    ]
    for result in results:
        result.params["fault"] = result.id.rsplit("=", 1)[1].rstrip("]")
    (problem,) = cluster(views(*results))
    assert problem.diagnosis == "handle_error() is not called exactly once per failed request"


def test_checks_of_one_family_failing_in_the_same_cases_are_one_problem() -> None:
    def concurrency(check: str) -> Finding:
        return Finding(f"concurrency.{check}", f"{check} broke", "one thing", "another")

    results = [
        case(f"c.x[tcp-sync-n={n}]", concurrency("sync_overlap"), concurrency("sync_thread"))
        for n in range(3)
    ]
    results.append(case("c.y[tcp-sync]", concurrency("sync_overlap")))
    (problem,) = cluster(views(*results))
    assert len(problem.cases) == 4  # sync_thread's three cases are all sync_overlap's too
    assert " + " in problem.signature
