"""Which cases execute which lines: the catalogue run in-process under coverage.

Run as ``python -m harness._mutation.tracer IMPL DATAFILE [--include PATTERN]
[--profile P] [--select GLOB]...``: loads ``IMPL`` (a ``.py`` path or a dotted
module on ``PYTHONPATH``) as an implementation, measures the files matching
``PATTERN`` (default: ``IMPL`` itself), runs every selected
case against it with coverage switched to a context named after the case, and
saves the coverage data (with those contexts) to ``DATAFILE``.  It prints one
JSON line per case (id, verdict), so the caller can check that the unmutated
source passes what will judge its mutants.

It runs in a process of its own because it imports and runs the implementation:
the controller never does.  Lines run inside forked children are seen too: each
child saves its own data file when it leaves with ``os._exit`` (coverage's
``patch = _exit``), under the case's context it inherited, and the files are
combined at the end.  A child killed before it could save is not seen; the
selection makes up for lines no case was seen to run.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from harness._execution.discovery import discover, select_cases
from harness._execution.execute import execute
from harness._model.settings import PROFILES, CaseOptions
from harness._runtime.loading import load_implementation


def trace(impl_spec: str, data_file: str, include: str, profile: str, globs: Sequence[str]) -> int:
    """Run the cases under coverage; 0 when every case passed or was unsupported."""
    import coverage  # optional: the mutation extra

    # One data file per process (the suffix names the pid), so that forked children
    # save without overwriting their parent's, and os._exit saves before leaving.
    cov = coverage.Coverage(
        data_file=data_file, data_suffix=True, include=[include], config_file=False
    )
    cov.set_option("run:patch", ["_exit"])
    cov.start()
    try:
        impl = load_implementation(impl_spec)
        status = 0
        for case in select_cases(discover(), globs, profile):
            cov.switch_context(case.id)
            result = execute(impl, case, CaseOptions(seed=0)).result
            verdict = result.verdict.value
            status |= verdict not in ("pass", "unsupported")
            print(json.dumps({"id": case.id, "verdict": verdict}), flush=True)
    finally:
        cov.stop()
        cov.save()
        combined = coverage.Coverage(data_file=data_file, config_file=False)
        combined.combine(keep=False)
        combined.save()
    return status


def main(argv: Sequence[str] | None = None) -> int:
    """Parse arguments and trace."""
    parser = argparse.ArgumentParser(prog="harness._mutation.tracer")
    parser.add_argument("impl")
    parser.add_argument("data_file")
    parser.add_argument("--include", default="", help="files to measure (default: IMPL)")
    parser.add_argument("--profile", choices=PROFILES, default="default")
    parser.add_argument("--select", action="append", default=[])
    args = parser.parse_args(argv)
    return trace(args.impl, args.data_file, args.include or args.impl, args.profile, args.select)


if __name__ == "__main__":
    sys.exit(main())
