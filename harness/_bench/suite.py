"""Suite speed: wall time of a whole profile, and the fixed cost of one case.

``suite_speed`` runs ``python -m harness run --impl IMPL --profile PROFILE
--quiet`` as subprocesses -- serially and with ``--jobs 2``, alternating --
and times them from the outside, so interpreter start, discovery and the
report are included as a user would see them.  It also keeps the slowest
cases of the serial run (from its results.json), which is where time goes.

``case_overhead`` runs trivial scenarios many times through
``harness._execution.execute.execute`` in this process: the whole life of a case
(snapshot, context, scenario thread, teardown, post-checks, leak check)
around a body that only starts an instrumented server -- not serving, or
serving with the default ``poll_interval`` (whose ``shutdown()`` waits for
the loop's next wake-up, up to one poll interval; and again with a 0.005 s
poll interval to show that share) -- or does nothing at all.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from harness._bench.server import child_env
from harness._bench.stats import interleaved, median
from harness._execution.execute import execute
from harness._model.scenario import Case, spec_of
from harness._model.scenario import scenario as _scenario
from harness._runtime.context import Context
from harness._runtime.loading import load_implementation
from harness._runtime.swarm import percentile

SUITE_TIMEOUT = 900.0


# --- Whole-suite wall time ----------------------------------------------------------------


def run_suite_once(
    impl: str, profile: str, jobs: int, select: tuple[str, ...] = ()
) -> dict[str, Any]:
    """One timed ``python -m harness run`` subprocess; wall seconds, status, slowest cases."""
    with tempfile.TemporaryDirectory(prefix="sockspec-suite-") as tmp:
        report = Path(tmp) / "report"
        argv = [sys.executable, "-m", "harness", "run", "--impl", impl, "--profile", profile]
        argv += ["--jobs", str(jobs), "--quiet", "--report-dir", str(report)]
        for glob in select:
            argv += ["--select", glob]
        env = child_env()
        t0 = time.monotonic()
        proc = subprocess.run(
            argv, capture_output=True, text=True, timeout=SUITE_TIMEOUT, env=env, cwd=tmp
        )
        wall = time.monotonic() - t0
        cases, slowest = _cases(report / "results.json")
    return {
        "jobs": jobs,
        "wall": wall,
        "exit_status": proc.returncode,
        "cases": cases,
        "slowest": slowest,
        "stderr": proc.stderr[-2000:] if proc.returncode not in (0, 1) else "",
    }


def _cases(path: Path, top: int = 8) -> tuple[int, list[dict[str, Any]]]:
    try:
        results = json.loads(path.read_text())["results"]
    except (OSError, ValueError, KeyError):
        return 0, []
    ordered = sorted(results, key=lambda r: r.get("duration", 0.0), reverse=True)
    slowest = [
        {"id": r["id"], "duration": round(r.get("duration", 0.0), 3), "verdict": r.get("verdict")}
        for r in ordered[:top]
    ]
    return len(results), slowest


def suite_speed(
    impl: str, profile: str, reps: int, jobs: tuple[int, ...] = (1, 2), select: tuple[str, ...] = ()
) -> dict[str, Any]:
    """Time the profile ``reps`` times for each ``jobs`` value, alternating; medians."""
    runs: dict[int, list[dict[str, Any]]] = {j: [] for j in jobs}
    for _rep, j in interleaved(list(jobs), reps):
        runs[j].append(run_suite_once(impl, profile, j, select))
    out: dict[str, Any] = {"impl": impl, "profile": profile, "select": list(select)}
    for j, items in runs.items():
        out[f"jobs{j}"] = {
            "wall": median([r["wall"] for r in items]),
            "walls": [round(r["wall"], 3) for r in items],
            "exit_status": [r["exit_status"] for r in items],
            "cases": items[0]["cases"],
            "slowest": items[0]["slowest"],
            "stderr": next((r["stderr"] for r in items if r["stderr"]), ""),
        }
    if 1 in runs and 2 in runs and out["jobs2"]["wall"]:
        out["speedup_jobs2"] = out["jobs1"]["wall"] / out["jobs2"]["wall"]
    return out


# --- Per-case overhead -----------------------------------------------------------------------


@_scenario(
    "bench.overhead.empty", title="nothing at all", transports=("tcp",), kinds=("threading",)
)
def _empty(ctx: Context) -> None:
    """The case does nothing: the executor's own cost."""


@_scenario("bench.overhead.server", title="start, close", transports=("tcp",), kinds=("threading",))
def _server(ctx: Context) -> None:
    """An instrumented server is created (bound, listening) and closed at teardown."""
    ctx.server(serve=False)


@_scenario(
    "bench.overhead.serving", title="start, serve, stop", transports=("tcp",), kinds=("threading",)
)
def _serving(ctx: Context) -> None:
    """An instrumented server serves (default poll interval) and is shut down at teardown."""
    ctx.server()


@_scenario(
    "bench.overhead.serving_fast_poll",
    title="start, serve (poll 0.005 s), stop",
    transports=("tcp",),
    kinds=("threading",),
)
def _serving_fast_poll(ctx: Context) -> None:
    """As ``serving`` with ``poll_interval=0.005``: how much of its cost is the poll interval."""
    ctx.server(poll_interval=0.005)


OVERHEAD_SCENARIOS = {
    "empty": _empty,
    "server": _server,
    "serving": _serving,
    "serving_fast_poll": _serving_fast_poll,
}


def overhead_cases() -> dict[str, Case]:
    """The trivial cases, by name."""
    out = {}
    for name, func in OVERHEAD_SCENARIOS.items():
        spec = spec_of(func)
        if spec is None:  # pragma: no cover - the decorator always marks
            raise RuntimeError(f"{func.__name__} is not a scenario")
        out[name] = spec.cases()[0]
    return out


def case_overhead(impl: str, runs: int) -> dict[str, Any]:
    """Run each trivial case ``runs`` times (round-robin); per-case milliseconds."""
    implementation = load_implementation(impl)
    cases = overhead_cases()
    times: dict[str, list[float]] = {name: [] for name in cases}
    verdicts: dict[str, set[str]] = {name: set() for name in cases}
    for case in cases.values():  # warm-up: imports, first sockets
        execute(implementation, case)
    for _ in range(runs):
        for name, case in cases.items():
            t0 = time.perf_counter()
            outcome = execute(implementation, case)
            times[name].append((time.perf_counter() - t0) * 1000)
            verdicts[name].add(outcome.result.verdict.value)
    return {
        "impl": impl,
        "runs": runs,
        **{
            name: {
                "median_ms": median(values),
                "p90_ms": percentile(values, 90),
                "min_ms": min(values, default=None),
                "verdicts": sorted(verdicts[name]),
            }
            for name, values in times.items()
        },
    }
