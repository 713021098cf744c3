"""Run the catalogue against four real third-party socketserver libraries (``tox -e thirdparty``).

Each library runs with its expectation file (``expectations/thirdparty/``), in
which every entry cites the library's source line; the run fails when any of
them fails unexpectedly.  ``systemd-socketserver`` needs ``systemd-python``, a C
extension built against libsystemd: without it that library is skipped, with
the reason.  Usage: ``python tests/thirdparty/run.py [REPORT_ROOT] [-- RUN OPTIONS]``.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
EXPECT = ROOT / "expectations" / "thirdparty"

#: (--impl spec, expectation file, module that must import for it to run, --select globs).
LIBRARIES: tuple[tuple[str, str, str, tuple[str, ...]], ...] = (
    ("future.backports.socketserver", "future.toml", "future.backports.socketserver", ()),
    ("eventlet.green.SocketServer+eventlet", "eventlet-green.toml", "eventlet", ()),
    # Unpatched, every serving case hangs in shutdown() (eventlet cannot wake a waiter
    # in another OS thread): a few cases show it, and the +eventlet hint, in seconds.
    ("eventlet.green.SocketServer", "eventlet-green.toml", "eventlet", ("echo.concurrent[tcp-*",)),
    ("pooled_socketserver", "pooled-processmixin.toml", "pooledProcessMixin", ()),
    ("systemd_socketserver_adapter", "systemd-socketserver.toml", "systemd.daemon", ()),
)


def main(argv: list[str]) -> int:
    """Run each library in turn; 1 when any run failed, 0 otherwise."""
    extra = argv[argv.index("--") + 1 :] if "--" in argv else []
    head = argv[: argv.index("--")] if "--" in argv else argv
    reports = Path(head[0]) if head else ROOT / "reports" / "thirdparty"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), str(ROOT)])}
    sys.path.insert(0, str(HERE))
    status = 0
    for spec, expect, needs, select in LIBRARIES:
        missing = unavailable(needs)
        if missing:
            print(f"thirdparty: SKIP {spec}: {missing}", flush=True)
            continue
        slug = spec.replace("+", "_").replace(".", "_")
        command = [
            sys.executable, "-m", "harness", "run", "--impl", spec, "--jobs", "2", "--quiet",
            "--expect", str(EXPECT / expect), "--report-dir", str(reports / slug),
            *(arg for glob in select for arg in ("--select", glob)), *extra,
        ]  # fmt: skip
        started = time.monotonic()
        code = subprocess.call(command, env=env)
        took = time.monotonic() - started
        print(f"thirdparty: {spec}: exit status {code} in {took:.0f}s", flush=True)
        status = max(status, 1 if code else 0)
    return status


def unavailable(module: str) -> str:
    """Why ``module`` cannot be imported (the reason to skip), or ""."""
    try:
        found = importlib.util.find_spec(module)
    except ImportError as exc:
        return f"{module} cannot be imported ({exc})"
    if found is None:
        hint = " (systemd-python's C extension needs libsystemd-dev)" if "systemd" in module else ""
        return f"{module} is not installed{hint}"
    return ""


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
