"""``python -m harness bench``: measure, print, and write bench.json + bench.svg.

Sections (``--only`` picks some, comma-separated):

``reference-vs-stdlib``
    echo throughput, latency p50/p99 and server CPU per request for every
    transport × kind × connection mode, stdlib and reference interleaved;
    ratios are reference over stdlib in goodness (>= 1: the reference is no
    slower).  A row consistently slower, twice running, is profiled
    (see ``_bench_rows``).
``instrumentation``
    the same rows, reference instrumented over uninstrumented (goal >= 0.8).
``load``
    10,000 simultaneous connections per stream transport from one swarm;
    connect and round-trip percentiles, driver vs server CPU per request.
``suite``
    wall time of the ``default`` profile, serial and ``--jobs 2``, and the
    fixed cost of one case.
``fuzz``
    fuzz steps per second per fuzz scenario and server kind (reports
    ``pending`` while there is no fuzz scenario).
``broken``
    wall time of the ``default`` profile on every broken implementation of
    the project's table (``tests/mutants``), serial and ``--jobs 2``, as a
    ratio to stdlib and reference in the same run, and whether phase
    deadlines changed the verdict set (see ``harness._bench.broken``).
    Long (three runs per broken implementation): not run unless asked for.

Every figure is printed as it is measured; bench.json is rewritten after each
section (an interrupted run keeps what it measured) and holds a flat list
of ``goals``: ``{section, name, value, op, limit, unit, met, note}``.  The
exit status is 0 when the benchmark ran -- goals are reported, not enforced
-- and 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import inspect
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from harness._bench import payload_soak, swarm_alone
from harness._bench.broken import broken_section
from harness._bench.echo import QUICK_ROWS, Side, all_rows
from harness._bench.fuzz import fuzz_throughput
from harness._bench.load import run_load
from harness._bench.report import (
    document,
    errors_goal,
    goal_record,
    loadavg,
    machine_line,
    plot,
    write_json,
)
from harness._bench.rows import TableOptions, run_rows
from harness._bench.suite import case_overhead, suite_speed
from harness._bench.text import load_line, print_goals, suite_lines
from harness._control.runner import default_report_dir
from harness._runtime.context import Context

SECTIONS = ("reference-vs-stdlib", "instrumentation", "load", "suite", "fuzz", "broken")
#: Sections run without ``--only`` (``broken`` takes an hour or more: only on request).
DEFAULT_SECTIONS = SECTIONS[:-1]
STREAMS = ("tcp", "unix_stream")
#: Runs of the whole default profile per --jobs value (each takes up to a minute).
SUITE_REPS = 2

Out = Callable[[str], None]


@dataclass(frozen=True)
class BenchOptions:
    """The benchmark's settings, fixed before it starts."""

    only: tuple[str, ...]
    reps: int
    duration: float
    report_dir: Path
    quick: bool
    clients: int
    profile: bool
    broken: tuple[str, ...] = ()  # names of broken implementations (``broken``; default all)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise ValueError(f"{self.prog}: {message}")


def parse_options(argv: Sequence[str]) -> BenchOptions:
    """Parse the command line; raises ValueError with a message for bad input."""
    parser = _Parser(prog="sockspec bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default=",".join(DEFAULT_SECTIONS), metavar="SECTIONS")
    parser.add_argument("--reps", type=int, default=None, help="repetitions per row (9)")
    parser.add_argument("--duration", type=float, default=None, help="seconds per window (0.3)")
    parser.add_argument("--report-dir", type=Path, default=None)
    parser.add_argument("--quick", action="store_true", help="a tiny version, under a minute")
    parser.add_argument("--clients", type=int, default=None, help="load clients (10000)")
    parser.add_argument("--no-profile", action="store_true", help="do not profile slow rows")
    parser.add_argument(
        "--broken", default="", metavar="NAMES", help="broken section: only these (comma list)"
    )
    args = parser.parse_args(list(argv))
    only = tuple(s.strip() for s in args.only.split(",") if s.strip())
    unknown = [s for s in only if s not in SECTIONS]
    if unknown or not only:
        raise ValueError(
            f"unknown section {unknown[0] if unknown else args.only!r}; "
            f"expected a comma list of {', '.join(SECTIONS)}"
        )
    reps = args.reps if args.reps is not None else (3 if args.quick else 9)
    duration = args.duration if args.duration is not None else (0.1 if args.quick else 0.3)
    clients = args.clients if args.clients is not None else (200 if args.quick else 10_000)
    if reps < 1 or duration <= 0 or clients < 1:
        raise ValueError(
            f"--reps {reps!r}, --duration {duration!r} and --clients {clients!r} must be positive"
        )
    return BenchOptions(
        only=tuple(s for s in SECTIONS if s in only),
        reps=reps,
        duration=duration,
        report_dir=args.report_dir or default_report_dir(prefix="bench-"),
        quick=args.quick,
        clients=clients,
        profile=not args.no_profile,
        broken=tuple(n.strip() for n in args.broken.split(",") if n.strip()),
    )


#: Stand-alone tools run as ``bench TOOL ARGS`` instead of the sections.
TOOLS: dict[str, Callable[[Sequence[str]], int]] = {
    "swarm": swarm_alone.main,  # the swarm runner alone against a plain-socket echo server
    "soak": payload_soak.main,  # N generated payloads against one implementation
}


def bench_main(argv: list[str]) -> int:
    """Run the benchmark; 0 when it ran (whatever the goals), 2 for bad arguments."""
    if argv and argv[0] in TOOLS:
        return TOOLS[argv[0]](argv[1:])
    try:
        options = parse_options(argv)
    except ValueError as exc:
        print(f"sockspec: error: {exc}", file=sys.stderr)
        return 2
    out = _printer()
    doc = document(_options_json(options), argv)
    options.report_dir.mkdir(parents=True, exist_ok=True)
    out(f"sockspec bench -> {options.report_dir}  ({machine_line(doc['machine'])})")
    for name in options.only:
        out(f"\n== {name} ==")
        started = time.monotonic()
        try:
            section = RUNNERS[name](options, out)
        except Exception as exc:  # one broken section must not lose the others' figures
            out(f"  ERROR: section {name} failed: {type(exc).__name__}: {exc}")
            section = {"error": f"{type(exc).__name__}: {exc}", "traceback": _tb(exc)}
        section["seconds"] = round(time.monotonic() - started, 1)
        doc["sections"][name] = section
        doc["goals"] += section.pop("goals", [])
        write_json(options.report_dir, doc)
    doc["machine"]["loadavg_end"] = loadavg()
    doc["finished"] = datetime.now().isoformat(timespec="seconds")
    write_json(options.report_dir, doc)
    (options.report_dir / "bench.svg").write_text(plot(doc))
    print_goals(doc["goals"], out)
    out(f"\nwrote {options.report_dir / 'bench.json'} and {options.report_dir / 'bench.svg'}")
    return 0


# --- Sections -------------------------------------------------------------------------------

VS_SIDES = (Side("stdlib", "stdlib"), Side("reference", "reference"))
INSTR_SIDES = (Side("plain", "reference"), Side("instrumented", "reference", instrumented=True))
FIGURES = (("throughput", True), ("p50", False), ("p99", False), ("cpu_per_request", False))


def reference_vs_stdlib(options: BenchOptions, out: Out) -> dict[str, Any]:
    """Section 1: reference over stdlib on every row."""
    rows = list(QUICK_ROWS) if options.quick else all_rows()
    section = run_rows(rows, VS_SIDES, FIGURES, 1.0, FIGURES, _table(options), out)
    slower = [r for r in section["rows"] if r.get("verdict") == "below"]
    section["goals"] = [
        goal_record(
            "reference-vs-stdlib",
            "rows where the reference is consistently slower",
            len(slower),
            "<=",
            0,
            "rows",
            "; ".join(f"{r['row']} ({', '.join(r['below'])})" for r in slower)
            or "every figure >= 1.0 or within noise",
        ),
        errors_goal("reference-vs-stdlib", section["rows"], VS_SIDES),
    ]
    return section


def instrumentation(options: BenchOptions, out: Out) -> dict[str, Any]:
    """Section 2: instrumented over plain (reference) on every row."""
    rows = [QUICK_ROWS[1], QUICK_ROWS[3]] if options.quick else all_rows()
    section = run_rows(rows, INSTR_SIDES, FIGURES, 0.8, FIGURES[:1], _table(options), out)
    measured = [r for r in section["rows"] if "ratios" in r]
    medians = [r["ratios"]["throughput"]["median"] for r in measured]
    short = [r for r in measured if r["ratios"]["throughput"]["verdict"] != "ok"]
    section["goals"] = [
        goal_record(
            "instrumentation",
            "lowest instrumented/plain throughput (median)",
            min((m for m in medians if m is not None), default=None),
            ">=",
            0.8,
            "ratio",
            _shortfall(short, len(measured)),
        ),
        errors_goal("instrumentation", section["rows"], INSTR_SIDES),
    ]
    return section


def load(options: BenchOptions, out: Out) -> dict[str, Any]:
    """Section 3: the swarm at ``options.clients`` simultaneous connections per stream transport."""
    runs, goals = [], []
    for transport in STREAMS:
        r = run_load(transport, options.clients)
        runs.append(r)
        out(load_line(r))
        held = min(r["peak_handlers"] or 0, r["established_at_peak"] or 0)
        goals += [
            goal_record(
                "load",
                f"{transport}: connections open at once",
                held,
                ">=",
                options.clients,
                "conns",
                f"peak handlers {r['peak_handlers']}, established {r['established_at_peak']}",
            ),
            goal_record(
                "load",
                f"{transport}: client errors + wrong replies",
                r["errors"] + r["wrong_replies"],
                "<=",
                0,
                "clients",
                str(r["error_types"] or ""),
            ),
            goal_record(
                "load",
                f"{transport}: driver CPU / server CPU per request",
                r["driver_over_server"],
                "<=",
                1.0,
                "ratio",
                f"driver {r['driver_cpu_per_request'] * 1e6:.0f} µs, server "
                f"{r['server_cpu_per_request'] * 1e6:.0f} µs per request",
            ),
        ]
    return {"runs": runs, "goals": goals}


def suite(options: BenchOptions, out: Out) -> dict[str, Any]:
    """Section 4: whole-profile wall time and per-case overhead."""
    if options.quick:
        # The TCP echo cases, one per server kind: the section's shape at the least CPU
        # (the project's tests run it in four interpreters side by side).
        speed = suite_speed("reference", "smoke", 1, select=("echo.concurrent[tcp-*",))
    else:
        speed = suite_speed("reference", "default", SUITE_REPS)
    overhead = case_overhead("reference", 10 if options.quick else 200)
    for line in suite_lines(speed, overhead):
        out(line)
    applies = not options.quick
    note = "" if applies else "quick: smoke profile, TCP echo only; the goals are for default"
    goals = [
        goal_record(
            "suite",
            f"{speed['profile']} profile, serial",
            speed["jobs1"]["wall"],
            "<=",
            60.0,
            "s",
            note,
            applies,
        ),
        goal_record(
            "suite",
            f"{speed['profile']} profile, --jobs 2",
            speed["jobs2"]["wall"],
            "<=",
            35.0,
            "s",
            note,
            applies,
        ),
        goal_record(
            "suite",
            "per-case overhead: instrumented server created + closed",
            overhead["server"]["median_ms"],
            "<=",
            20.0,
            "ms",
            f"p90 {overhead['server']['p90_ms']:.1f} ms",
        ),
        goal_record(
            "suite",
            "per-case overhead: instrumented server served + shut down",
            overhead["serving"]["median_ms"],
            "<=",
            20.0,
            "ms",
            "includes shutdown() waiting for serve_forever's next poll "
            f"(poll_interval {_default_poll_interval()} s); "
            f"with poll_interval=0.005: {overhead['serving_fast_poll']['median_ms']:.1f} ms",
        ),
    ]
    return {"speed": speed, "overhead": overhead, "goals": goals}


def _default_poll_interval() -> float:
    """The ``poll_interval`` a scenario's ``ctx.server()`` serves with unless told."""
    default = inspect.signature(Context.server).parameters["poll_interval"].default
    return float(default)


def fuzz(options: BenchOptions, out: Out) -> dict[str, Any]:
    """Section 5: fuzz steps per second per scenario and kind (or the pending hook)."""
    result = fuzz_throughput("reference", 0.3 if options.quick else 3.0, 3 if options.quick else 12)
    if result["status"] != "ok":
        out(f"  {result['status'].upper()}: {result['message']}")
        return {**result, "goals": []}
    for group, figures in sorted(result["groups"].items()):
        out(
            f"  {group:<32} {figures['steps_per_s'] or 0:10.1f} steps/s "
            f"({figures['steps']:.0f} steps in {figures['seconds']:.1f} s)"
        )
    if result["without_steps"]:
        out(f"  cases without a 'steps' figure: {', '.join(result['without_steps'])}")
    return {**result, "goals": []}


def broken(options: BenchOptions, out: Out) -> dict[str, Any]:
    """Section 6: broken implementations against correct ones (see ``_bench.broken``)."""
    return broken_section(options.quick, out, options.broken)


RUNNERS: dict[str, Callable[[BenchOptions, Out], dict[str, Any]]] = {
    "reference-vs-stdlib": reference_vs_stdlib,
    "instrumentation": instrumentation,
    "load": load,
    "suite": suite,
    "fuzz": fuzz,
    "broken": broken,
}


# --- Helpers --------------------------------------------------------------------------------


def _tb(exc: BaseException) -> str:
    return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))[-4000:]


def _shortfall(short: Sequence[dict[str, Any]], total: int) -> str:
    """``N of M rows short of 0.8: worst ...`` (the four lowest medians)."""
    if not short:
        return "every row >= 0.8"
    ranked = sorted(short, key=lambda r: r["ratios"]["throughput"]["median"] or 0.0)
    worst = ", ".join(f"{r['row']} {r['ratios']['throughput']['median']:.2f}" for r in ranked[:4])
    return f"{len(short)} of {total} rows short of 0.8; lowest: {worst}"


def _table(options: BenchOptions) -> TableOptions:
    return TableOptions(options.reps, options.duration, options.profile)


def _options_json(options: BenchOptions) -> dict[str, Any]:
    return {
        "only": list(options.only),
        "reps": options.reps,
        "duration": options.duration,
        "quick": options.quick,
        "clients": options.clients,
        "broken": list(options.broken),
    }


def _printer() -> Out:
    def out(line: str) -> None:
        print(line, flush=True)

    return out
