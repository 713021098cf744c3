"""Run the catalogue against four real third-party socketserver libraries (``tox -e thirdparty``).

Each library runs with its expectation file (``expectations/thirdparty/``), in
which every entry cites the library's source line; the run fails when any of
them fails unexpectedly.  ``systemd-socketserver`` needs ``systemd-python``, a C
extension built against libsystemd: without it that library is skipped, with
the reason.  The libraries run ``LANES`` at a time, longest first (their runs
mostly wait on sockets and deadlines, not on the CPU); each one's output is
printed whole when it ends.  Usage:
``python tests/thirdparty/run.py [REPORT_ROOT] [-- RUN OPTIONS]``; the
environment variable ``SOCKSPEC_THIRDPARTY_LANES`` sets how many run at once.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
EXPECT = ROOT / "expectations" / "thirdparty"

#: (--impl spec, expectation file, module that must import for it to run, --select globs),
#: longest run first, so that the lanes finish together.
LIBRARIES: tuple[tuple[str, str, str, tuple[str, ...]], ...] = (
    ("pooled_socketserver", "pooled-processmixin.toml", "pooledProcessMixin", ()),
    ("systemd_socketserver_adapter", "systemd-socketserver.toml", "systemd.daemon", ()),
    ("future.backports.socketserver", "future.toml", "future.backports.socketserver", ()),
    ("eventlet.green.SocketServer+eventlet", "eventlet-green.toml", "eventlet", ()),
    # Unpatched, every serving case hangs in shutdown() (eventlet cannot wake a waiter
    # in another OS thread): a few cases show it, and the +eventlet hint, in seconds.
    ("eventlet.green.SocketServer", "eventlet-green.toml", "eventlet", ("echo.concurrent[tcp-*",)),
)

#: How many libraries run at once (each with ``--jobs 2``).
LANES = 2

#: The most one library's run may take (its cases have deadlines; this is the backstop).
LIMIT = 1800.0

_print_lock = threading.Lock()


def main(argv: list[str]) -> int:
    """Run every library, ``LANES`` at a time; 1 when any run failed, 0 otherwise."""
    extra = argv[argv.index("--") + 1 :] if "--" in argv else []
    head = argv[: argv.index("--")] if "--" in argv else argv
    reports = Path(head[0]) if head else ROOT / "reports" / "thirdparty"
    lanes = _lanes(os.environ.get("SOCKSPEC_THIRDPARTY_LANES", ""))
    sys.path.insert(0, str(HERE))
    started = time.monotonic()
    with ThreadPoolExecutor(lanes) as pool:
        codes = list(pool.map(lambda library: _run(library, reports, extra), LIBRARIES))
    print(
        f"thirdparty: {len(LIBRARIES)} libraries in {time.monotonic() - started:.0f}s", flush=True
    )
    return 1 if any(codes) else 0


def _lanes(text: str) -> int:
    try:
        return max(1, int(text)) if text.strip() else LANES
    except ValueError:
        raise SystemExit(
            f"thirdparty: SOCKSPEC_THIRDPARTY_LANES={text!r} is not a number"
        ) from None


def _run(library: tuple[str, str, str, tuple[str, ...]], reports: Path, extra: list[str]) -> int:
    """One library's run; its output is printed whole, after it ended.  0 for a skip."""
    spec, expect, needs, select = library
    missing = unavailable(needs)
    if missing:
        _say(f"thirdparty: SKIP {spec}: {missing}\n")
        return 0
    slug = spec.replace("+", "_").replace(".", "_")
    command = [
        sys.executable, "-m", "harness", "run", "--impl", spec, "--jobs", "2", "--quiet",
        "--expect", str(EXPECT / expect), "--report-dir", str(reports / slug),
        *(arg for glob in select for arg in ("--select", glob)), *extra,
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(HERE), str(ROOT)])}
    started = time.monotonic()
    try:
        proc = subprocess.run(
            command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=LIMIT
        )
    except subprocess.TimeoutExpired as exc:
        output = (exc.stdout or b"").decode(errors="replace")
        _say(f"{output}thirdparty: {spec}: no verdicts within {LIMIT:.0f}s (run killed)\n")
        return 1
    took = time.monotonic() - started
    output = proc.stdout.decode(errors="replace")
    _say(f"{output}thirdparty: {spec}: exit status {proc.returncode} in {took:.0f}s\n")
    return proc.returncode


def _say(text: str) -> None:
    with _print_lock:
        sys.stdout.write(text)
        sys.stdout.flush()


def unavailable(module: str) -> str:
    """Why ``module`` cannot be imported (the reason to skip), or ""."""
    hint = " (systemd-python's C extension needs libsystemd-dev)" if "systemd" in module else ""
    try:
        found = importlib.util.find_spec(module)
    except ImportError as exc:  # a parent package is missing too
        return f"{module} is not installed ({exc}){hint}"
    if found is None:
        return f"{module} is not installed{hint}"
    return ""


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
