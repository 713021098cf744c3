"""The pytest plugin, driven through pytester."""

from __future__ import annotations

from pathlib import Path

import pytest
from mutants import by_name

SELECT = "lifecycle.handler.order[tcp-sync-*"


def test_catalogue_items_carry_case_ids(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_subprocess(
        "--sockspec-impl", "stdlib", "--sockspec-select", SELECT, "--collect-only", "-q"
    )
    result.stdout.fnmatch_lines(
        ["*stdlib::lifecycle.handler.order?tcp-sync-fault=none-clients=20?"]
    )


def test_catalogue_passes_under_xdist(pytester: pytest.Pytester) -> None:
    result = pytester.runpytest_subprocess(
        "--sockspec-impl", "reference", "--sockspec-select", SELECT, "-n", "2"
    )
    result.assert_outcomes(passed=4)


def test_failure_shows_findings_transcript_and_replay(
    pytester: pytest.Pytester, tmp_path: Path
) -> None:
    impl = by_name("finish_skipped_when_handle_raises").write(tmp_path)
    result = pytester.runpytest_subprocess(
        "--sockspec-impl", str(impl), "--sockspec-select", "lifecycle.handler.order[tcp-sync-*"
    )
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*[[]lifecycle.order[]]*",
            "*handle raised InjectedError → finish MISSING*",
            "*replay: python -m harness run --impl*--select*--seed 0*",
        ]
    )


def test_unsupported_case_is_a_skip(pytester: pytest.Pytester, tmp_path: Path) -> None:
    impl = tmp_path / "nounix.py"
    impl.write_text(
        "from socketserver import BaseServer, TCPServer, UDPServer\n"
        "from socketserver import BaseRequestHandler, StreamRequestHandler\n"
        "from socketserver import DatagramRequestHandler\n"
    )
    result = pytester.runpytest_subprocess(
        "--sockspec-impl",
        str(impl),
        "--sockspec-select",
        "echo.concurrent[unix_stream-sync-*",
        "-rs",
    )
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*lacks UnixStreamServer*"])


def test_fixtures_serve_users_own_tests(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        from harness import echo_script

        def test_echo(sockspec):
            server = sockspec.server(transport="tcp", kind="threading")
            results = sockspec.swarm(server, [echo_script(b"hi", True)] * 5)
            assert [r.received for r in results] == [b"hi"] * 5
            assert sockspec.findings(server) == []
        """
    )
    pytester.runpytest_subprocess().assert_outcomes(passed=1)
