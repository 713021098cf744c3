"""The fuzz suite: short-budget cases pass; the fuzz-only mutant is found, shrunk and replayed."""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from helpers.cli import CliRun
from mutants import by_name
from mutants.fuzz import MUTANTS as FUZZ_ONLY

from harness._execution.discovery import discover
from harness._fuzz.engine import MAX_LOAD_ALLOWANCE, WALL_FACTOR, plan
from harness._fuzz.model import Blob, HandlerModel, chunked, judge_reply
from harness._fuzz.payload import STREAM_BUCKETS, bucket_size
from harness._model.settings import CaseOptions
from harness._runtime.load import load_allowance
from scenarios import fuzz_payload, fuzz_stateful

MUTANT = by_name("serve_forever_leaves_socket_nonblocking")

#: Each fuzz scenario's default (CI) budget in seconds.
CI_BUDGETS = {
    "fuzz.payload.stream": fuzz_payload.BUDGET,
    "fuzz.payload.datagram": fuzz_payload.BUDGET,
    "fuzz.stateful": fuzz_stateful.BUDGET,
}


def _ctx(budget: float | None, time_left: float = 1800.0) -> Any:
    return SimpleNamespace(options=CaseOptions(fuzz_budget=budget), time_left=lambda: time_left)


# --- plans, payloads, replies -------------------------------------------------------


def test_plan_turns_the_budget_into_a_fixed_number_of_examples(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(os, "getloadavg", lambda: (0.0, 0.0, 0.0))  # an idle host
    default = plan(_ctx(None), default_budget=1.2, example_cost=0.1, steps=12)
    assert (default.budget, default.examples, default.steps) == (1.2, 12, 12)
    assert default.wall_limit == pytest.approx(1.2 * WALL_FACTOR + 2.0)
    given = plan(_ctx(30.0), default_budget=1.2, example_cost=0.1, steps=12)
    assert (given.budget, given.examples) == (30.0, 300)
    assert plan(_ctx(30.0), 1.2, 0.1, 12) == given  # same budget, same run


@pytest.mark.parametrize(("load", "allowance"), [(0.5, 1.0), (4.0, 2.0), (40.0, 4.0)])
def test_the_wall_limit_stretches_with_the_load_per_cpu(
    monkeypatch: pytest.MonkeyPatch, load: float, allowance: float
) -> None:
    """On a loaded host the planned examples still run: a bug found in a late example
    is found whatever else the machine runs (bounded: at most MAX_LOAD_ALLOWANCE×)."""
    monkeypatch.setattr(os, "getloadavg", lambda: (load, 0.0, 0.0))
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1})
    assert load_allowance(MAX_LOAD_ALLOWANCE) == allowance
    stretched = plan(_ctx(None), default_budget=1.2, example_cost=0.1, steps=12)
    assert stretched.wall_limit == pytest.approx((1.2 * WALL_FACTOR + 2.0) * allowance)
    assert stretched.examples == 12  # the load changes the limit, never the plan
    assert plan(_ctx(None, time_left=25.0), 1.2, 0.1, 12).wall_limit <= 25.0 - 20.0


def test_plan_for_an_input_count_ignores_the_clock() -> None:
    soak = plan(_ctx(None), default_budget=0.5, example_cost=0.1, steps=25, inputs=1000)
    assert soak.inputs == 1000
    assert soak.examples * soak.steps >= 1000


def test_plan_rejects_a_nonpositive_budget() -> None:
    with pytest.raises(ValueError, match="fuzz budget must be positive"):
        plan(_ctx(-1.0), 1.0, 0.1, 12)


def test_blobs_are_reproducible_and_lines_have_bounded_length() -> None:
    blob = Blob(5000, seed=7, line=40)
    assert blob.data() == Blob(5000, seed=7, line=40).data()
    assert len(blob.data()) == 5000
    lines = blob.data().split(b"\n")
    assert all(len(line) <= 40 for line in lines[:-1])
    assert Blob(0, seed=1).data() == b""


def test_chunking_keeps_every_byte_in_order() -> None:
    data = Blob(1000, seed=3).data()
    chunks = chunked(data, [999, 10, 10, 2000, 0])
    assert b"".join(chunks) == data
    assert [len(c) for c in chunks] == [10, 989, 1]
    assert chunked(b"", [5]) == [b""]


def test_stream_sizes_reach_several_mib_in_the_last_bucket() -> None:
    assert bucket_size(0, 0) == 0
    assert bucket_size(99, 1000) == STREAM_BUCKETS[-1][1] == 4 << 20


@pytest.mark.parametrize(
    ("handler", "sent", "received", "clean", "raised", "ok"),
    [
        ("echo", b"abc", b"abc", True, False, True),
        ("echo", b"abc", b"ab", True, False, False),  # stopped early without reason
        ("echo", b"abc", b"ab", True, True, True),  # the handler timed out
        ("echo", b"abc", b"abd", False, True, False),  # never anything but a prefix
        ("partial", b"abcdef", b"ab", True, False, True),
        ("raise_handle", b"abc", b"", True, False, True),
    ],
)
def test_replies_are_judged_by_the_handler_model(
    handler: str, sent: bytes, received: bytes, clean: bool, raised: bool, ok: bool
) -> None:
    model = HandlerModel(handler, n=2)
    assert (judge_reply(model, sent, received, clean, raised) is None) is ok


# --- the suite against real implementations -------------------------------------------


def _fuzz_results(run: CliRun) -> list[dict[str, Any]]:
    return [r for r in run.results()["results"] if r["id"].startswith("fuzz.")]


@pytest.mark.slow
def test_fuzz_cases_pass_against_reference_within_the_ci_budget(
    cli: Callable[..., CliRun],
) -> None:
    # The budget is checked as the plan the cases ran, not as wall time: how long
    # the cases take on a loaded machine is the bench's figure (``bench`` fuzz).
    # stdlib's fuzz cases are judged, at the same budget, by each tox environment's
    # conformance run of its own interpreter (tox.ini) and by the README's first command.
    run = cli("run", "--impl", "reference", "--select", "fuzz.*", "--jobs", "2")
    results = _fuzz_results(run)
    assert results and run.status == 0, run.stderr
    assert {r["verdict"] for r in results} == {"pass"}
    for r in results:
        fuzz = r["evidence"]["notes"]["fuzz"]
        assert fuzz["budget_s"] == CI_BUDGETS[r["scenario"]], r["id"]
        assert fuzz["examples"] > 0, r["id"]
        assert fuzz["steps"] > 0, r["id"]


def _normalised(transcript: str) -> str:
    """A transcript without what differs between runs: ports, times, connection ids."""
    text = re.sub(r"\d+\.\d+s", "Ts", transcript)
    text = re.sub(r"\('127\.0\.0\.1', \d+\)|\('::1', \d+\)", "ADDR", text)
    return re.sub(r"conn#\d+", "conn#N", text)


def _first_fuzz_failure(run: CliRun) -> tuple[dict[str, Any], dict[str, Any]]:
    failing = [r for r in _fuzz_results(run) if r["verdict"] == "fail"]
    assert failing, f"no fuzz case failed: {[(r['id'], r['verdict']) for r in _fuzz_results(run)]}"
    result = failing[0]
    finding = next(f for f in result["findings"] if f["check"].startswith("fuzz."))
    return result, finding


def test_every_fuzz_only_mutant_is_judged_here() -> None:
    """The detection table leaves the fuzz-only mutants to the test below."""
    assert FUZZ_ONLY == (MUTANT,), "judge each fuzz-only mutant as the test below does"


@pytest.mark.slow
def test_only_the_fuzzer_finds_the_mutant_and_its_find_replays(
    cli: Callable[..., CliRun], tmp_path: Path
) -> None:
    """One run of the whole catalogue but the payload fuzzers (they drive no sequence of
    server calls) shows both: the fuzzer finds, shrinks and replays the mutant, and every
    other case gives it the verdict it gives stdlib. One run, not one per claim: each
    interpreter's suite then judges the catalogue on it once."""
    path = str(MUTANT.write(tmp_path))
    scenarios = [s.id for s in discover() if not s.id.startswith("fuzz.payload.")]
    run = cli("run", "--impl", path, *[a for s in scenarios for a in ("--select", s)], timeout=900)
    assert run.status == 1, run.stderr
    result, finding = _first_fuzz_failure(run)
    assert result["scenario"] == MUTANT.caught_by, result["id"]
    evidence = finding["evidence"]
    assert finding["check"] == "fuzz.timeouts.handle_request_duration"
    assert evidence["steps"] <= 6, evidence["transcript"]
    assert "serve_forever" in evidence["transcript"]
    assert "shutdown()" in evidence["transcript"]
    words = shlex.split(evidence["replay"])
    assert words[:4] == ["python", "-m", "harness", "run"]
    assert words[words.index("--select") + 1] == result["id"]
    again = cli(*words[3:])
    replayed = next(r for r in _fuzz_results(again) if r["id"] == result["id"])
    assert replayed["verdict"] == result["verdict"]
    checks = [f["check"] for f in replayed["findings"]]
    assert checks == [f["check"] for f in result["findings"]]
    replay_evidence = replayed["findings"][checks.index(finding["check"])]["evidence"]
    assert replay_evidence["found_in_example"] == evidence["found_in_example"]
    if "note" not in evidence and "note" not in replay_evidence:  # both shrank to the end
        assert _normalised(replay_evidence["transcript"]) == _normalised(evidence["transcript"])

    # Only a non-fuzz case the mutant does not pass needs stdlib's verdict (half the cost
    # of judging both in full): timing-sensitive ones also get one more chance.
    doubtful = sorted(
        case
        for (_impl, case), verdict in run.verdicts().items()
        if verdict != "pass" and not case.startswith("fuzz.")
    )
    worse: list[str] = []
    if doubtful:
        only = [a for c in doubtful for a in ("--select", c)]
        verdicts = cli("run", "--impl", path, "--impl", "stdlib", *only).verdicts()
        worse = [
            case
            for (impl, case), v in verdicts.items()
            if impl == path and v != "pass" and verdicts.get(("stdlib", case)) == "pass"
        ]
    assert not worse, f"non-fuzz cases catch the mutant: {worse}"


def test_a_dead_example_server_ends_the_case_as_a_dead_server(
    cli: Callable[..., CliRun], tmp_path: Path
) -> None:
    """An example's server whose ``serve_forever()`` returns unasked ends the whole case
    (as any case's dead server does), not each client's wait for its timeout."""
    path = by_name("serve_forever_returns_early").write(tmp_path)
    run = cli("run", "--impl", str(path), "--select", "fuzz.payload.stream[tcp-threading]")
    [result] = _fuzz_results(run)
    assert result["verdict"] == "fail", result
    assert result["reason"] == "serve_forever() returned although shutdown() was never called"
    assert not [f for f in result["findings"] if f["check"] == "fuzz.clients.io"]
