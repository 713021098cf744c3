"""Fair verdicts on stand-ins for real third-party designs (tests/standins/).

A pre-fork pool, a library raising from its own helper module, a stream-only
module, a socket-activated server without ``server_bind`` and a server
relying on reference counting to close requests: each gets the verdict its
behaviour earns, for the right reason.
"""

from __future__ import annotations

import gc
from pathlib import Path

import pytest
from standins import path

from harness import Verdict, load_implementation
from harness._execution.discovery import discover, select_cases
from harness._execution.execute import execute
from harness._model.records import CaseResult
from harness._model.scenario import Case
from harness._model.settings import CaseOptions


def _case(case_id: str) -> Case:
    (case,) = [c for c in select_cases(discover(), (case_id,), "stress") if c.id == case_id]
    return case


def _run(standin: str, case_id: str) -> CaseResult:
    return execute(load_implementation(path(standin)), _case(case_id)).result


def _checks(result: CaseResult) -> set[str]:
    return {f.check for f in result.findings}


@pytest.mark.parametrize("transport", ["tcp", "udp"])
def test_a_prefork_pool_passes_and_is_named(transport: str) -> None:
    result = _run("prefork_pool", f"echo.concurrent[{transport}-threading-clients=100]")
    assert result.verdict is Verdict.PASS, (result.reason, result.findings)
    assert result.evidence["notes"]["design"].startswith("pool (")  # workers calling get_request
    assert "requests.lost" not in _checks(result)


@pytest.mark.parametrize("transport", ["tcp", "udp"])
def test_a_pool_that_loses_requests_fails_on_the_lost_requests(transport: str) -> None:
    result = _run("lossy_pool", f"echo.concurrent[{transport}-threading-clients=100]")
    assert result.verdict is Verdict.FAIL, result.reason
    (lost,) = [f for f in result.findings if f.check == "requests.lost"]
    assert "accepted request(s) never handled" in lost.message
    assert "pool (" in lost.message  # the design it was lost in
    # Two workers, each dropping its every third request: about a third of 100.
    assert 20 <= len(lost.evidence["conns"]) <= 50, lost.observed
    assert "requests.repeated" not in _checks(result)


def test_raising_in_an_imported_helper_module_is_the_implementations_fail() -> None:
    result = _run(
        "raises_in_helper", "shutdown.stops_loop[tcp-threading-loop=idle-poll_interval=0.05]"
    )
    assert result.verdict is Verdict.FAIL, result.reason
    (raised,) = [f for f in result.findings if f.check == "implementation.raised"]
    assert "_helper_raises.py" in raised.evidence["frame"]
    assert "AttributeError" in raised.message


def test_a_stream_only_module_loads_and_its_datagram_cases_are_unsupported() -> None:
    assert _run("stream_only", "echo.concurrent[tcp-threading-clients=100]").verdict is Verdict.PASS
    result = _run("stream_only", "echo.concurrent[udp-sync-clients=100]")
    assert result.verdict is Verdict.UNSUPPORTED
    assert "lacks UDPServer" in result.reason


def test_a_server_without_server_bind_is_unsupported_for_deferred_binding() -> None:
    result = _run("socket_activated", "shutdown.bind.deferred[tcp-sync]")
    assert result.verdict is Verdict.UNSUPPORTED
    assert "server_bind" in result.reason
    assert _run("socket_activated", "echo.concurrent[tcp-sync-clients=100]").verdict is Verdict.PASS


def test_the_stateful_fuzzer_never_rebinds_a_server_without_server_bind() -> None:
    # Its restart step binds a new server to the old address: a socket-activated
    # server cannot, so the step is never drawn (it made the whole case unsupported).
    case = _case("fuzz.stateful[tcp-sync]")
    options = CaseOptions(fuzz_budget=5.0)
    result = execute(load_implementation(path("socket_activated")), case, options).result
    assert result.verdict is Verdict.PASS, (result.reason, result.findings)


@pytest.mark.filterwarnings("ignore::ResourceWarning")
def test_refcount_closing_fails_on_the_missing_hook_not_on_a_hang() -> None:
    result = _run("forgets_close", "lifecycle.request.mixed[tcp-threading-clients=20]")
    assert result.verdict is Verdict.FAIL, result.reason
    (missing,) = [f for f in result.findings if f.check == "hooks.missing"]
    assert missing.message.startswith("close_request() never ran for 20 of 20")
    assert "resources.fds" not in _checks(result)  # nothing was kept open by the harness


@pytest.mark.filterwarnings("ignore::ResourceWarning")
def test_a_server_close_that_does_nothing_is_named(tmp_path: Path) -> None:
    impl = tmp_path / "keeps_listening.py"
    impl.write_text(
        "from socketserver import *\n"
        "import socketserver\n"
        "class TCPServer(socketserver.TCPServer):\n"
        "    server_close = socketserver.BaseServer.server_close\n"
    )
    result = execute(load_implementation(str(impl)), _case("echo.concurrent[tcp-sync-clients=100]"))
    gc.collect()  # the listening socket it leaked is finalised here, where its warning is ignored
    assert result.result.verdict is Verdict.FAIL
    (noop,) = [f for f in result.result.findings if f.check == "hooks.noop"]
    assert noop.message.startswith("server_close() returned with the listening socket still open")
