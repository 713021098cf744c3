"""``run --oracle``: no false differences between good implementations, and a bug that
no hand-written check sees is caught by difference from the reference."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from helpers.cli import CliRun
from helpers.mutant import Mutant

Cli = Callable[..., CliRun]

#: A bug the default profile sees (``datagram.sizes`` checks the documented default), but
#: the scenario below has no check of its own that could: only a comparison with the
#: reference shows that a client's 8192-byte datagram comes back one byte short.
INVISIBLE = Mutant(
    "max_packet_size_off_by_one",
    "max_packet_size = 8192",
    "max_packet_size = 8191",
    "unchecked.datagram[udp-sync]",
)

#: A user's scenario that drives clients and checks nothing about their replies.
UNCHECKED = '''"""One client sends one 8192-byte datagram and reads the reply.

Invariant: none of its own; differential judging (``--oracle``) compares the replies.
"""

from harness import Context, echo_script, scenario


@scenario("unchecked.datagram", title="A datagram, unchecked", transports=("udp",), checks=())
def unchecked(ctx: Context) -> None:
    """Send 8192 bytes; keep what comes back without judging it."""
    ctx.server()
    ctx.swarm([echo_script(ctx.payload(8192), stream=False)], timeout=5.0)
'''


def test_a_bug_no_check_sees_is_caught_by_the_oracle(cli: Cli, tmp_path: Path) -> None:
    path = str(INVISIBLE.write(tmp_path))
    scenarios = tmp_path / "scenarios"
    scenarios.mkdir()
    (scenarios / "unchecked.py").write_text(UNCHECKED)
    only = ("--scenarios", str(scenarios), "--select", INVISIBLE.caught_by)
    alone = cli("run", "--impl", path, *only)
    assert alone.status == 0, alone.stderr  # no hand-written check looks at the replies
    judged = cli("run", "--impl", path, "--oracle", "reference", *only)
    assert judged.status == 1, judged.stderr
    (result,) = judged.results()["results"]
    assert result["verdict"] == "fail"
    (finding,) = [f for f in result["findings"] if f["check"] == "oracle.differs"]
    assert finding["evidence"]["section"] == "clients"
    assert finding["evidence"]["side_by_side"].startswith("oracle reference")
    summary = (judged.report_dir / "summary.md").read_text()
    assert "differs from the oracle reference" in summary and "~~~" in summary


def test_stdlib_and_reference_do_not_differ(cli: Cli) -> None:
    run = cli(
        "run",
        "--impl",
        "stdlib",
        "--impl",
        "reference",
        "--oracle",
        "reference",
        "--select",
        "lifecycle.handler.order[tcp-*",
        "--select",
        "echo.concurrent[unix_stream-*",
    )
    assert run.status == 0, run.stderr
    results = run.results()["results"]
    stdlib = [r for r in results if r["impl"] == "stdlib"]
    assert stdlib and all(r["verdict"] in ("pass", "unsupported") for r in stdlib)
    compared = [r for r in stdlib if r["verdict"] == "pass"]
    assert all(r["evidence"]["oracle"]["outcome"].startswith("same") for r in compared)
    assert run.results()["run"]["oracle"] == "reference"
