"""Drop-in proof: CPython's own regression suites pass with ``servers`` as ``socketserver``.

Each suite runs in a subprocess of the matching CPython interpreter with
``PYTHONPATH=tests/cpython/shim:<repo root>``, through ``tests/cpython/shim/run_cpython_suite.py``.
That wrapper first checks, in the very process that then runs the suite, that
``import socketserver`` yields this repository's ``servers`` package (and that
``http.server``/``xmlrpc.server`` see it too), then hands over to CPython's
``test.libregrtest`` -- the driver behind ``python -m test``.  The shim also
appends a line to ``$SOCKSPEC_SHIM_LOG`` whenever it is imported, which is
checked afterwards as independent evidence.

Interpreters are looked up under ``pyenv root`` (newest installed patch
release of each minor version), then on ``PATH`` as ``pythonX.Y``; a test is
skipped, saying why, when the interpreter or its ``test`` package is missing.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import servers

REPO = Path(__file__).resolve().parents[2]
SHIM_DIR = Path(__file__).resolve().parent / "shim"
RUNNER = SHIM_DIR / "run_cpython_suite.py"
SERVERS_INIT = (REPO / "servers" / "__init__.py").resolve()

# Generous: the slowest suite (test_httpservers + its CGI tests) takes ~30 s here.
SUITE_TIMEOUT = 1200

SUITES = [
    ("3.12", "test_socketserver"),
    ("3.13", "test_socketserver"),
    ("3.13", "test_httpservers"),
    ("3.13", "test_xmlrpc"),
]


def _pyenv_root() -> Path | None:
    exe = shutil.which("pyenv")
    if exe:
        try:
            out = subprocess.run(
                [exe, "root"], capture_output=True, text=True, timeout=30, check=True
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            out = ""
        if out:
            return Path(out)
    env_root = os.environ.get("PYENV_ROOT")
    if env_root:
        return Path(env_root)
    default = Path.home() / ".pyenv"
    return default if default.is_dir() else None


def _version_key(name: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", name))


@functools.cache
def find_interpreter(minor: str) -> str | None:
    """Newest ``pyenv`` CPython ``minor`` (e.g. "3.13"), else ``pythonX.Y`` on PATH."""
    root = _pyenv_root()
    if root is not None and (root / "versions").is_dir():
        pattern = re.compile(rf"^{re.escape(minor)}\.\d+$")  # plain CPython, not 3.13.0t etc.
        candidates = sorted(
            (d for d in (root / "versions").iterdir() if pattern.match(d.name)),
            key=lambda d: _version_key(d.name),
            reverse=True,
        )
        for candidate in candidates:
            exe = candidate / "bin" / "python"
            if exe.exists():
                return str(exe)
    return shutil.which(f"python{minor}")


def require_interpreter(minor: str, suite: str | None = None) -> str:
    """Return the interpreter path, or skip the test saying what is missing."""
    exe = find_interpreter(minor)
    if exe is None:
        pytest.skip(f"CPython {minor} not found (pyenv versions or python{minor} on PATH)")
    modules = ["test.libregrtest.main"] + ([f"test.{suite}"] if suite else [])
    probe = (
        "import importlib.util, sys\n"
        f"missing = [m for m in {modules!r} if importlib.util.find_spec(m) is None]\n"
        "sys.exit(', '.join(missing) or None)\n"
    )
    result = subprocess.run([exe, "-c", probe], capture_output=True, text=True, timeout=60)
    if result.returncode != 0:
        pytest.skip(f"CPython {minor} at {exe} lacks its test package ({result.stderr.strip()})")
    return exe


def shim_env(log: Path | None = None) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {"PYTHONHOME", "PYTHONSTARTUP", "PYTHONSAFEPATH", "PYTHONNOUSERSITE"}
    }
    env["PYTHONPATH"] = os.pathsep.join([str(SHIM_DIR), str(REPO)])
    env["PYTHONDONTWRITEBYTECODE"] = "1"  # keep the work tree clean
    if log is not None:
        env["SOCKSPEC_SHIM_LOG"] = str(log)
    return env


@pytest.mark.slow
@pytest.mark.cpython_suites
@pytest.mark.parametrize(("minor", "suite"), SUITES, ids=[f"{m}-{s}" for m, s in SUITES])
def test_cpython_suite_passes_with_servers(minor: str, suite: str, tmp_path: Path) -> None:
    exe = require_interpreter(minor, suite)
    log = tmp_path / "shim.log"
    cmd = [
        exe,
        str(RUNNER),
        "-u",
        "all",  # test_socketserver needs the "network" resource, which is off by default
        "--fail-env-changed",  # leaked threads/children/files fail the run
        "-v",
        "--timeout",
        str(SUITE_TIMEOUT - 60),  # regrtest dumps tracebacks before we kill it
        suite,
    ]
    proc = subprocess.run(
        cmd,
        cwd=tmp_path,
        env=shim_env(log),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=SUITE_TIMEOUT,
    )
    output = proc.stdout + proc.stderr
    tail = output[-6000:]

    assert proc.returncode == 0, f"{suite} on {minor} failed:\n{tail}"
    assert f"sockspec-shim: socketserver is servers ({SERVERS_INIT}" in output, tail
    assert "Result: SUCCESS" in output, tail

    # Tests really ran: a resource-denied module is "skipped", which regrtest
    # still calls SUCCESS.
    files = re.search(r"Total test files: run=(\d+)/(\d+)(.*)", output)
    assert files and files.group(1) == files.group(2) == "1", tail
    assert "skipped" not in files.group(3) and "resource denied" not in files.group(3), tail
    ran = re.search(r"Total tests: run=(\d+)", output)
    assert ran and int(ran.group(1)) > 0, tail

    # Independent evidence from the shim itself.
    entries = log.read_text(encoding="utf-8").splitlines()
    assert entries, "the shim was never imported"
    for entry in entries:
        _pid, _, path = entry.partition(" ")
        assert Path(path).resolve() == SERVERS_INIT


def test_shim_makes_socketserver_the_servers_package() -> None:
    """Fast check of the shim mechanism with the current interpreter."""
    code = (
        "import socketserver, servers, http.server, xmlrpc.server\n"
        "assert socketserver is servers, socketserver\n"
        "assert http.server.socketserver is servers\n"
        "assert xmlrpc.server.socketserver is servers\n"
        "assert http.server.HTTPServer.__mro__[1] is servers.TCPServer\n"
        "assert all(getattr(servers, n).__module__ == 'socketserver' for n in servers.__all__)\n"
        "print(socketserver.__name__, socketserver.__file__)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        env=shim_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    name, path = proc.stdout.split()
    assert name == "servers" and Path(path).resolve() == SERVERS_INIT


def test_all_matches_cpython_313() -> None:
    """``servers.__all__`` equals CPython 3.13's ``socketserver.__all__`` (as a set)."""
    if sys.version_info[:2] == (3, 13):
        import socketserver

        assert Path(socketserver.__file__ or "").resolve().parent != REPO / "servers"
        assert set(servers.__all__) == set(socketserver.__all__)
        return
    exe = find_interpreter("3.13")
    if exe is None:
        pytest.skip("CPython 3.13 not found (pyenv versions or python3.13 on PATH)")
    code = (
        "import json, socketserver, servers\n"
        "print(json.dumps([socketserver.__file__, sorted(socketserver.__all__),"
        " sorted(servers.__all__)]))\n"
    )
    env = shim_env()
    env["PYTHONPATH"] = str(REPO)  # no shim: compare against the real stdlib module
    proc = subprocess.run(
        [exe, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    stdlib_file, stdlib_all, servers_all = json.loads(proc.stdout)
    assert Path(stdlib_file).resolve().parent != REPO / "servers"
    assert set(servers_all) == set(stdlib_all)
    assert len(servers_all) == len(stdlib_all)
