"""``python -m harness mutate``: mutation testing of an implementation's source.

    python -m harness mutate [--target T]... [--jobs N] [--limit N] [--only KEY]...
                             [--profile P] [--report-dir DIR]

Targets: ``stdlib`` (this interpreter's socketserver.py), ``stdlib-3.X`` (the
file of the pyenv-installed CPython 3.X), or a path to a ``.py`` file.  For each:
trace which cases run which lines (``tracer``, in a subprocess), check that the
unmutated file passes them, make the mutants (``mutants``), judge each with
its selected cases in ``--jobs`` parallel runs (``judge``), and write
``DIR/mutation-<target>/`` (``report``).  Exit status 0 when every mutant is
killed or triaged in ``mutation/equivalent.toml``, 1 when any survived, 2 when
the run could not be made.
"""

from __future__ import annotations

import argparse
import importlib.util
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

_ROOT = Path(__file__).resolve().parents[2]
TRACE_TIMEOUT = 1800.0


def resolve_target(target: str) -> Path:
    """The source file a target names; ``UsageError`` when there is none."""
    if target == "stdlib":
        spec = importlib.util.find_spec("socketserver")  # found, not imported: never run here
        if spec is None or spec.origin is None:
            raise UsageError("target 'stdlib': this interpreter has no socketserver.py")
        return Path(spec.origin)
    if target.startswith("stdlib-3."):
        minor = target.removeprefix("stdlib-")
        root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
        found = sorted(root.glob(f"{minor}.*/lib/python{minor}/socketserver.py"))
        if not found:
            raise UsageError(f"target {target!r}: no CPython {minor} under {root}")
        return found[-1]
    path = Path(target)
    if path.suffix != ".py" or not path.is_file():
        raise UsageError(f"target {target!r}: expected stdlib, stdlib-3.X or a .py file")
    return path.resolve()


def mutate_target(target: str, args: argparse.Namespace, triage: Triage) -> dict[str, object]:
    """Trace, make, judge and report one target; return its score."""
    source_path = resolve_target(target)
    source = source_path.read_text(encoding="utf-8")
    label = target if not target.endswith(".py") else source_path.stem
    with tempfile.TemporaryDirectory(prefix="sockspec-mutate-") as tmp:
        work = Path(tmp)
        original = work / f"{label.replace('.', '_').replace('-', '_')}.py"
        original.write_text(source, encoding="utf-8")
        cases = _trace(original, work / "coverage", args.profile)
        lines = LineCases.from_coverage(str(work / "coverage"), original.name, cases)
        mutants = [m for m in generate(source) if not args.only or m.key in args.only]
        mutants = mutants[: args.limit] if args.limit else mutants
        print(
            f"{label}: {len(mutants)} mutants of {source_path}, {len(cases)} traced cases",
            flush=True,
        )
        rows = _judge_all(mutants, lines, triage, work, args.jobs)
    summary = write_report(args.report_dir / f"mutation-{label}", label, str(source_path), rows)
    result = score(rows)
    print(f"{label}: {json.dumps(result)}\n  report: {summary}", flush=True)
    return result


def _trace(original: Path, data_file: Path, profile: str) -> list[str]:
    argv = [sys.executable, "-m", "harness._mutation.tracer", str(original), str(data_file)]
    argv += ["--profile", profile]
    env = {**os.environ, "PYTHONPATH": str(_ROOT)}
    proc = subprocess.run(
        argv, capture_output=True, text=True, timeout=TRACE_TIMEOUT, env=env, cwd=data_file.parent
    )
    records = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    failing = [r["id"] for r in records if r["verdict"] not in ("pass", "unsupported")]
    if proc.returncode != 0 or failing:
        detail = (
            f"{len(failing)} case(s) fail, e.g. {failing[0]}" if failing else proc.stderr[-300:]
        )
        raise UsageError(f"the unmutated {original.name} does not pass its cases: {detail}")
    return [r["id"] for r in records if r["verdict"] == "pass"]


def _judge_all(
    mutants: Sequence[Mutant], lines: LineCases, triage: Triage, work: Path, jobs: int
) -> list[Row]:
    started = time.monotonic()
    done = 0

    def one(mutant: Mutant) -> Row:
        nonlocal done
        why, case_ids = lines.cases_for(mutant.line)
        row = Row(mutant, why, judge(mutant, case_ids, work), triage.reason(mutant.key))
        done += 1
        print(
            f"  [{done}/{len(mutants)} {time.monotonic() - started:6.0f}s] {row.outcome:9} "
            f"{mutant.key} line {mutant.line}: {row.judgement.how[:90]}",
            flush=True,
        )
        return row

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        return list(pool.map(one, mutants))


def parse(argv: Sequence[str]) -> argparse.Namespace:
    """The options of ``mutate``."""
    parser = argparse.ArgumentParser(prog="sockspec mutate", description=__doc__.splitlines()[0])
    parser.add_argument("--target", action="append", default=[], metavar="T")
    parser.add_argument("--jobs", type=int, default=len(os.sched_getaffinity(0)))
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
