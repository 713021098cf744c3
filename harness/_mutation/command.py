"""``python -m harness mutate``: mutation testing of an implementation's source.

    python -m harness mutate [--target T]... [--jobs N] [--limit N] [--only KEY]...
                             [--profile P] [--report-dir DIR]

Targets: ``stdlib`` (this interpreter's socketserver.py), ``stdlib-3.X`` (the
file of the pyenv-installed CPython 3.X), ``servers`` (the reference package,
every module of it), or a path to a ``.py`` file or a package.  For each:
trace which cases run which lines (``tracer``, in a subprocess), check that the
unmutated file passes them, make the mutants (``mutants``), judge each with
its selected cases in ``--jobs`` parallel runs (``judge``), and write
``DIR/mutation-<target>/`` (``report``).  Exit status 0 when every mutant is
killed or triaged in ``mutation/equivalent.toml``, 1 when any survived, 2 when
the run could not be made.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from harness._model.errors import UsageError
from harness._model.settings import PROFILES
from harness._mutation.equivalents import DEFAULT_PATH, Triage, load_triage
from harness._mutation.judge import judge
from harness._mutation.mutants import Mutant, generate
from harness._mutation.report import Row, score, write_report
from harness._mutation.selection import LineCases
from harness._mutation.targets import Placement, Target, resolve_target
from harness._runtime.load import usable_cpus

_ROOT = Path(__file__).resolve().parents[2]
TRACE_TIMEOUT = 1800.0


def mutate_target(target: str, args: argparse.Namespace, triage: Triage) -> dict[str, object]:
    """Trace, make, judge and report one target; return its score."""
    found = resolve_target(target)
    with tempfile.TemporaryDirectory(prefix="sockspec-mutate-") as tmp:
        work = Path(tmp)
        original = found.materialise(work / "original")
        cases = _trace(original, work / "coverage", args.profile)
        mutants: list[Mutant] = []
        lines: dict[str, LineCases] = {}
        for name, path in original.files.items():
            text = found.source(name)
            lines[name] = LineCases.from_coverage(str(work / "coverage"), str(path), cases, text)
            file = name if found.is_package else ""
            mutants += [m for m in generate(text, file) if _wanted(m, args.only)]
        mutants = mutants[: args.limit] if args.limit else mutants
        print(
            f"{found.label}: {len(mutants)} mutants of {found.origin}, {len(cases)} traced cases",
            flush=True,
        )
        rows = _judge_all(mutants, found, lines, triage, work, args.jobs)
    summary = write_report(
        args.report_dir / f"mutation-{found.label}", found.label, str(found.origin), rows
    )
    result = score(rows)
    print(f"{found.label}: {json.dumps(result)}\n  report: {summary}", flush=True)
    return result


def _wanted(mutant: Mutant, only: Sequence[str]) -> bool:
    return not only or mutant.key in only


def _trace(original: Placement, data_file: Path, profile: str) -> list[str]:
    include = os.path.join(os.path.dirname(next(iter(original.files.values()))), "*")
    argv = [sys.executable, "-m", "harness._mutation.tracer", original.spec, str(data_file)]
    argv += ["--include", include, "--profile", profile]
    proc = subprocess.run(
        argv,
        capture_output=True,
        text=True,
        timeout=TRACE_TIMEOUT,
        env=original.environ(),
        cwd=data_file.parent,
    )
    records = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    failing = [r["id"] for r in records if r["verdict"] not in ("pass", "unsupported")]
    if proc.returncode != 0 or failing:
        detail = (
            f"{len(failing)} case(s) fail, e.g. {failing[0]}" if failing else proc.stderr[-300:]
        )
        raise UsageError(f"the unmutated {original.spec} does not pass its cases: {detail}")
    return [r["id"] for r in records if r["verdict"] == "pass"]


def _judge_all(
    mutants: Sequence[Mutant],
    target: Target,
    lines: dict[str, LineCases],
    triage: Triage,
    work: Path,
    jobs: int,
) -> list[Row]:
    started = time.monotonic()
    done = 0

    def one(mutant: Mutant) -> Row:
        nonlocal done
        why, case_ids = lines[mutant.file or target.files[0]].cases_for(mutant.line)
        row = Row(mutant, why, judge(mutant, case_ids, work, target), triage.reason(mutant.key))
        done += 1
        print(
            f"  [{done}/{len(mutants)} {time.monotonic() - started:6.0f}s] {row.outcome:9} "
            f"{mutant.key} {mutant.where}: {row.judgement.how[:90]}",
            flush=True,
        )
        return row

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        return list(pool.map(one, mutants))


def parse(argv: Sequence[str]) -> argparse.Namespace:
    """The options of ``mutate``."""
    parser = argparse.ArgumentParser(prog="sockspec mutate", description=__doc__.splitlines()[0])
    parser.add_argument("--target", action="append", default=[], metavar="T")
    parser.add_argument("--jobs", type=int, default=usable_cpus())
    parser.add_argument("--limit", type=int, default=0, help="judge only the first N mutants")
    parser.add_argument("--only", action="append", default=[], metavar="KEY")
    parser.add_argument("--profile", choices=PROFILES, default="default")
    parser.add_argument("--report-dir", type=Path, default=_ROOT / "reports")
    parser.add_argument("--triage", type=Path, default=DEFAULT_PATH, metavar="TOML")
    return parser.parse_args(argv)


def mutate_main(argv: Sequence[str]) -> int:
    """Run ``mutate``; see the module docstring for the exit status."""
    args = parse(argv)
    try:
        triage = load_triage(args.triage)
        scores = [mutate_target(t, args, triage) for t in args.target or ["stdlib"]]
    except UsageError as exc:
        print(f"sockspec: error: {exc}", file=sys.stderr)
        return 2
    except ImportError as exc:
        print(
            f"sockspec: error: {exc}; install the mutation extra: pip install -e '.[mutation]'",
            file=sys.stderr,
        )
        return 2
    return 0 if all(s["survived"] == s["timeout"] == s["broken"] == 0 for s in scores) else 1
