"""Running single cases in-process: verdicts, findings, transcripts, cleanup."""

from __future__ import annotations

from pathlib import Path

import pytest
from mutants import by_name

from harness import Verdict, load_implementation
from harness._execution.discovery import discover, select_cases
from harness._execution.evidence import MAX_SAME
from harness._execution.execute import execute
from harness._model.scenario import Case
from harness._runtime.resources import take_snapshot


def _case(case_id: str) -> Case:
    (case,) = [c for c in select_cases(discover(), (case_id,), "stress") if c.id == case_id]
    return case


HANDLE_RAISES = "lifecycle.handler.order[{}-{}-fault=handle-clients=20]"


@pytest.mark.parametrize("transport", ["tcp", "udp", "unix_stream"])
@pytest.mark.parametrize("kind", ["sync", "threading", "forking"])
def test_reference_passes_handler_lifecycle_when_handle_raises(transport: str, kind: str) -> None:
    outcome = execute(
        load_implementation("reference"), _case(HANDLE_RAISES.format(transport, kind))
    )
    assert outcome.result.verdict is Verdict.PASS, outcome.result.findings
    assert not outcome.tainted


def test_skipped_finish_is_caught_with_a_transcript(tmp_path: Path) -> None:
    impl = load_implementation(str(by_name("finish_skipped_when_handle_raises").write(tmp_path)))
    result = execute(impl, _case(HANDLE_RAISES.format("tcp", "threading"))).result
    assert result.verdict is Verdict.FAIL
    orders = [f for f in result.findings if f.check == "lifecycle.order"]
    # 20 connections fail alike: MAX_SAME are kept as examples, the rest counted.
    assert len(orders) == MAX_SAME
    assert result.evidence["dropped"]["findings"] == {"lifecycle.order": 20 - MAX_SAME}
    assert "handle raised InjectedError → finish MISSING" in orders[0].evidence["transcript"]


def test_missing_handle_error_is_caught(tmp_path: Path) -> None:
    impl = load_implementation(str(by_name("handle_error_not_called").write(tmp_path)))
    result = execute(impl, _case(HANDLE_RAISES.format("tcp", "sync"))).result
    assert result.verdict is Verdict.FAIL
    assert {f.check for f in result.findings} == {"errors.handle_error_once"}


def test_shutdown_that_never_returns_is_a_hang_with_stacks(tmp_path: Path) -> None:
    impl = load_implementation(str(by_name("shutdown_never_returns").write(tmp_path)))
    outcome = execute(impl, _case("echo.concurrent[tcp-sync-clients=100]"))
    assert outcome.result.verdict is Verdict.HANG
    assert "shutdown()" in outcome.result.reason
    assert "threading.py" in outcome.result.evidence["stacks"]
    assert outcome.tainted  # the stuck thread cannot be stopped: the process must retire


def test_a_case_leaves_no_descriptor_thread_or_child_behind() -> None:
    before = take_snapshot()
    execute(
        load_implementation("reference"), _case("echo.concurrent[unix_stream-forking-clients=100]")
    )
    after = take_snapshot()
    assert set(after.fds) <= set(before.fds)
    assert set(after.threads) <= set(before.threads) | {
        i for i, n in after.threads.items() if n.startswith("sockspec-")
    }
    assert set(after.children) <= set(before.children)


def test_missing_feature_is_unsupported_not_fail(tmp_path: Path) -> None:
    path = tmp_path / "nounix.py"
    path.write_text(
        "from socketserver import BaseServer, TCPServer, UDPServer, ThreadingMixIn, ForkingMixIn\n"
        "from socketserver import BaseRequestHandler, StreamRequestHandler\n"
        "from socketserver import DatagramRequestHandler\n"
    )
    result = execute(
        load_implementation(str(path)), _case("echo.concurrent[unix_stream-sync-clients=100]")
    ).result
    assert result.verdict is Verdict.UNSUPPORTED
    assert "UnixStreamServer" in result.reason
