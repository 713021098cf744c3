"""The command line: ``python -m harness`` / ``sockspec``.

Exit statuses (scripts and CI depend on them):
0 every ``must`` case passed or was unsupported; 1 a ``must`` case failed,
hung or crashed; 2 the run could not be made (bad arguments, implementation
not loadable, scenario import error, internal error, a case that errored);
128 + N a run stopped by signal N (130 Ctrl-C, 143 SIGTERM, 129 SIGHUP), with
partial results and reports written.
"""

from __future__ import annotations

import argparse
import math
import os
import select
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

from harness._cli.progress import make_progress
from harness._cli.skeleton import write_skeleton
from harness._control.catalogue import render_catalogue
from harness._control.history import history_argv
from harness._control.probing import probe
from harness._control.runner import EXIT_UNUSABLE, STOP_SIGNALS, run
from harness._model.errors import SockspecError, UsageError
from harness._model.settings import PROFILES, Settings
from harness._report.compare import compare, load_document, render_comparison
from harness._report.text import one_line
from harness._report.write import write_reports
from harness._runtime.load import usable_cpus


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message}")


def _seconds(text: str) -> float:
    """A finite number of seconds above zero (``--fuzz-budget``)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number above 0")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = _Parser(
        prog="sockspec", description="Conformance harness for socketserver implementations."
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    run_p = sub.add_parser("run", help="run the catalogue against implementations")
    run_p.add_argument(
        "--impl",
        action="append",
        metavar="SPEC",
        help="stdlib, reference, a module or a .py path (repeatable)",
    )
    run_p.add_argument(
        "--select",
        action="append",
        metavar="GLOB",
        default=[],
        help="case or scenario id glob (repeatable)",
    )
    run_p.add_argument("--profile", choices=PROFILES, default=None)
    run_p.add_argument("--seed", type=int, default=None)
    run_p.add_argument(
        "--jobs", type=int, default=None, help="worker processes (default: usable CPUs)"
    )
    run_p.add_argument("--report-dir", type=Path, default=None)
    run_p.add_argument("--scenarios", action="append", type=Path, default=[], metavar="DIR")
    run_p.add_argument(
        "--expect",
        action="append",
        type=Path,
        default=[],
        metavar="FILE",
        help="TOML file of known failures: they become xfail (repeatable)",
    )
    run_p.add_argument("--strict", action="store_true", help="an xpass fails the run")
    run_p.add_argument(
        "--capture",
        action="store_true",
        help="record each case's loopback traffic into a pcap in the report",
    )
    run_p.add_argument(
        "--fuzz-budget",
        type=_seconds,
        default=None,
        metavar="SECONDS",
        help="time budget of each fuzz case (default: by profile)",
    )
    run_p.add_argument(
        "--no-phase-deadlines",
        action="store_true",
        help="only the case deadline bounds a case (slow on broken servers; for comparison)",
    )
    run_p.add_argument(
        "--oracle",
        metavar="SPEC",
        default=None,
        help="also run each case on SPEC and fail where the observable outcome differs",
    )
    run_p.add_argument("--quiet", action="store_true", help="no progress output")
    list_p = sub.add_parser("list", help="list cases or render the catalogue")
    list_p.add_argument("--select", action="append", metavar="GLOB", default=[])
    list_p.add_argument("--profile", choices=PROFILES, default="stress")
    list_p.add_argument("--scenarios", action="append", type=Path, default=[], metavar="DIR")
    list_p.add_argument("--format", choices=("text", "md"), default="text")
    cmp_p = sub.add_parser("compare", help="what got fixed, regressed, new or gone between runs")
    cmp_p.add_argument("old", type=Path, help="results.json, report directory or results.jsonl")
    cmp_p.add_argument("new", type=Path)
    sub.add_parser("bench", help="benchmarks (see `sockspec bench --help`)", add_help=False)
    sub.add_parser("mutate", help="mutation testing (see `sockspec mutate --help`)", add_help=False)
    sub.add_parser("coverage", help="render docs/knobs.toml into docs/coverage.md", add_help=False)
    sub.add_parser("history", help="CPython's socketserver through the versions", add_help=False)
    new_p = sub.add_parser("new", help="write a commented skeleton for a new scenario")
    new_p.add_argument("name", help="scenario id, e.g. mine.echo.twice")
    new_p.add_argument("--dir", type=Path, default=Path("."), help="where to write the module")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    try:
        return _main(list(sys.argv[1:] if argv is None else argv))
    finally:
        _settle_streams()


def _main(args_list: list[str]) -> int:
    try:
        if args_list[:1] == ["history"]:
            args_list = history_argv(args_list[1:])
        if args_list[:1] == ["bench"]:
            from harness._bench.command import bench_main  # lazy: a run never pays for it

            return bench_main(args_list[1:])
        if args_list[:1] == ["mutate"]:
            from harness._mutation.command import mutate_main

            return mutate_main(args_list[1:])
        if args_list[:1] == ["coverage"]:
            from harness._mutation.knobs import coverage_main

            return coverage_main(args_list[1:])
        args = build_parser().parse_args(args_list)
        if args.command == "run":
            return _run(args, args_list)
        if args.command == "list":
            return _list(args)
        if args.command == "compare":
            return _compare(args)
        return _new(args)
    except SockspecError as exc:
        _say(f"sockspec: error: {one_line(str(exc))}")
        return EXIT_UNUSABLE
    except KeyboardInterrupt:
        _say("sockspec: interrupted")
        return EXIT_UNUSABLE
    except BrokenPipeError:
        _quiet_stdout()
        return EXIT_UNUSABLE
    except OSError as exc:  # results.json or a report directory that cannot be written
        _say(f"sockspec: error: {one_line(str(exc))}")
        return EXIT_UNUSABLE


@contextmanager
def _signals_ignored(restore: bool = True) -> Iterator[None]:
    """Ignore the stop signals while the reports are written (until exit unless ``restore``)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.signal(s, signal.SIG_IGN) for s in (*STOP_SIGNALS, signal.SIGINT)}
    try:
        yield
    finally:
        for number, handler in previous.items() if restore else ():
            signal.signal(number, handler)


def _say(line: str) -> None:
    """A line on stderr, if stderr can still take it."""
    try:
        print(line, file=sys.stderr, flush=True)
    except OSError:
        pass


def _quiet_stdout() -> None:
    """Point a closed stdout at /dev/null so that the exit flush cannot fail too."""
    _to_devnull(sys.stdout)


def _settle_streams() -> None:
    """Flush stdout and stderr now; one whose reader is gone (``| head``) goes to /dev/null.

    Otherwise Python's own flush at exit fails on the closed pipe and turns the
    exit status into 120, hiding the one the run chose.
    """
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
            closed = _reader_gone(stream.fileno())
        except (OSError, ValueError):
            closed = True
        if closed:  # later writes (shutdown warnings) must not fail either
            _to_devnull(stream)


def _reader_gone(fd: int) -> bool:
    """True when ``fd`` is a pipe or socket whose reading end has been closed."""
    poller = select.poll()
    poller.register(fd, 0)  # POLLERR and POLLHUP are reported without asking
    return any(events & (select.POLLERR | select.POLLHUP) for _, events in poller.poll(0))


def _to_devnull(stream: TextIO) -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stream.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


def _run(args: argparse.Namespace, argv: list[str]) -> int:
    settings = Settings.from_env(
        impls=tuple(args.impl) if args.impl else None,
        select=tuple(args.select),
        profile=args.profile,
        seed=args.seed,
        jobs=usable_cpus() if args.jobs is None else args.jobs,
        report_dir=args.report_dir,
        scenario_dirs=tuple(args.scenarios),
        expect_files=tuple(args.expect),
        strict=args.strict or None,
        capture=args.capture or None,
        fuzz_budget=args.fuzz_budget,
        phase_deadlines=False if args.no_phase_deadlines else None,
        oracle=args.oracle,
    )
    progress = None if args.quiet else make_progress(sys.stderr)
    outcome = run(settings, ["sockspec", *argv], progress)
    # A second Ctrl-C must not cut the reports short, nor (after a stop) turn the exit
    # status into death by SIGINT: Python resets its handlers at exit, not SIG_IGN.
    with _signals_ignored(restore=not outcome.partial):
        write_reports(outcome.report_dir, sys.stderr)
    if outcome.stopped_by:
        _say(f"sockspec: run stopped ({outcome.stopped_by}); results are partial")
    if progress is not None:
        try:
            progress.finish(outcome)
        except OSError:  # the progress stream is gone (a closed pipe): the report stays
            pass
    return outcome.exit_status


def _compare(args: argparse.Namespace) -> int:
    comparison = compare(load_document(args.old), load_document(args.new))
    print(render_comparison(comparison, str(args.old), str(args.new)))
    return comparison.exit_status


def _list(args: argparse.Namespace) -> int:
    settings = Settings.from_env()  # the load timeout
    profile = "stress" if args.format == "md" else args.profile
    plan = probe((), args.scenarios, args.select, profile, settings.load_timeout)
    if args.format == "md":
        sys.stdout.write(render_catalogue(plan.scenarios, plan.cases))
        return 0
    for case in plan.cases:
        print(case.id)
    return 0


def _new(args: argparse.Namespace) -> int:
    path = write_skeleton(args.name, args.dir)
    command = f"python -m harness run --scenarios {args.dir} --select {args.name}"
    print(f"wrote {path}; run it with: {command}")
    return 0
