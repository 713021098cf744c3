"""``sockspec history``: CPython's socketserver through the versions, in one matrix.

Every CPython found under pyenv (or given with ``--python``) is one column.
Interpreters that can run the worker (``WORKER_FLOOR``, 3.7, and newer) test
their own stdlib through their own interpreter (``python3.X:socketserver``);
older ones (3.6) have their ``socketserver.py`` loaded by path into this
interpreter, and the label (the path) says so.  The expectation files in
``expectations/`` explain each documented historical difference; anything else
fails the run.
"""

from __future__ import annotations

import argparse
import os
import re
from collections.abc import Sequence
from pathlib import Path

from harness._control.agents import WORKER_FLOOR, python_version, stdlib_socketserver
from harness._model.errors import UsageError

EXPECTATIONS = Path(__file__).resolve().parents[2] / "expectations"


def installed_pythons() -> list[Path]:
    """pyenv's CPython 3.6+ interpreters, oldest first (one per minor version)."""
    root = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv") / "versions"
    best: dict[tuple[int, int], tuple[tuple[int, ...], Path]] = {}
    for exe in root.glob("3.*/bin/python3"):
        numbers = tuple(int(n) for n in re.findall(r"\d+", exe.parent.parent.name))
        if len(numbers) < 2 or numbers[:2] < (3, 6):
            continue
        key = (numbers[0], numbers[1])
        if key not in best or numbers > best[key][0]:
            best[key] = (numbers, exe)
    return [best[k][1] for k in sorted(best)]


def impl_specs(pythons: Sequence[Path]) -> tuple[list[str], list[Path]]:
    """``--impl`` values and the expectation files that apply to them."""
    impls, expects = [], []
    for python in pythons:
        version = python_version(str(python))
        if version >= WORKER_FLOOR:
            impls.append(f"{python}:socketserver")
        else:
            path = stdlib_socketserver(str(python))
            if not path:
                raise UsageError(f"{python} cannot tell where its socketserver.py is")
            impls.append(path)
        expect = EXPECTATIONS / f"cpython-{version[0]}.{version[1]}.toml"
        if expect.exists():
            expects.append(expect)
    return impls, expects


def history_argv(argv: Sequence[str]) -> list[str]:
    """Translate ``history`` options into the arguments of ``run``."""
    parser = argparse.ArgumentParser(prog="sockspec history")
    parser.add_argument("--python", action="append", type=Path, default=[], metavar="EXE")
    parser.add_argument("--report-dir", type=Path, default=Path("reports/history"))
    parser.add_argument("--profile", default="default")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--select", action="append", default=[])
    args = parser.parse_args(list(argv))
    pythons = args.python or installed_pythons()
    if not pythons:
        raise UsageError("no CPython found under pyenv; pass --python EXE")
    impls, expects = impl_specs(pythons)
    out = ["run", "--report-dir", str(args.report_dir), "--profile", args.profile]
    out += ["--jobs", str(args.jobs)]
    for impl in impls:
        out += ["--impl", impl]
    for expect in expects:
        out += ["--expect", str(expect)]
    for glob in args.select:
        out += ["--select", glob]
    return out
