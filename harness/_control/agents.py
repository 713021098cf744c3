"""Implementations that run in another interpreter or under monkey-patching.

Spec grammar: ``[INTERPRETER:]MODULE[+PATCH]``, e.g. ``python3.12:socketserver``,
``/opt/py/bin/python:path/to/impl.py``, ``socketserver+gevent``.  The cases of
such an implementation run in a worker process started with that interpreter
(and patched before anything else is imported); events, evidence and stack
dumps reach the controller exactly as for in-process implementations.

The worker is the harness itself, so the interpreter must be at least
``WORKER_FLOOR`` (3.7; the controller itself needs 3.10).  When it lacks the
harness's runtime dependencies, a private virtual environment for it is made
once under ``~/.cache/sockspec/agents`` (PyPI), with the newest releases of
them that support it.  Older interpreters are refused in one line: 3.6 with
a hint to load its ``socketserver.py`` by path instead, Python 2 as unsupported.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from harness._model.errors import LoadError

PATCHES: dict[str, str] = {
    "gevent": "from gevent import monkey; monkey.patch_all()",
    "eventlet": "import eventlet; eventlet.monkey_patch()",
}

#: What a worker needs besides the standard library (reports stay in the controller).
#: pip picks the newest release that supports the interpreter: Hypothesis 6.79 is
#: the last for 3.7 and 6.113 for 3.8.
WORKER_REQUIREMENTS = (
    "psutil>=5.9",
    "hypothesis>=6.100; python_version >= '3.8'",
    "hypothesis>=6.79; python_version < '3.8'",
    "importlib_metadata>=4.6; python_version < '3.8'",
    "scapy>=2.5",
    "tomli>=2.0",
)

#: The oldest Python the worker runs on: 3.6 lacks ``from __future__ import annotations``,
#: which every harness module uses.  Modules workers import keep to it (see ``_compat``).
WORKER_FLOOR = (3, 7)

_RUN_WORKER = "import runpy; runpy.run_module('harness._execution.worker', run_name='__main__')"


@dataclass(frozen=True)
class ImplSpec:
    """A parsed ``--impl`` value."""

    text: str
    module: str
    interpreter: str | None = None
    patch: str | None = None

    @property
    def in_process(self) -> bool:
        """True when the controller can import the implementation itself."""
        return self.interpreter is None and self.patch is None


def parse_spec(text: str) -> ImplSpec:
    """Split ``[INTERPRETER:]MODULE[+PATCH]``; raises LoadError for an unknown patch."""
    rest, patch = text, None
    if "+" in rest:
        rest, patch = rest.rsplit("+", 1)
        if patch not in PATCHES:
            raise LoadError(
                f"unknown patch {patch!r} in {text!r}; expected one of {', '.join(PATCHES)}"
            )
    interpreter = None
    head, sep, tail = rest.partition(":")
    if sep and tail and ("python" in Path(head).name or os.sep in head):
        interpreter, rest = head, tail
    return ImplSpec(text, rest, interpreter, patch)


def worker_command(spec: ImplSpec) -> list[str]:
    """The argv that starts a worker for ``spec`` (the config JSON is appended)."""
    python = agent_python(spec.interpreter) if spec.interpreter else sys.executable
    if spec.patch is not None:
        _require_module(python, spec.patch)
        return [python, "-c", f"{PATCHES[spec.patch]}; {_RUN_WORKER}"]
    return [python, "-m", "harness._execution.worker"]


def python_version(python: str) -> tuple[int, int]:
    """``python``'s (major, minor) version; raises LoadError when it cannot be run."""
    # Written to run under Python 2 too, whose print statement would show a tuple.
    probe = "import sys; sys.stdout.write('%d %d' % sys.version_info[:2])"
    try:
        out = subprocess.run(
            [python, "-c", probe],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise LoadError(f"interpreter {python!r} cannot be run: {exc}") from None
    if out.returncode != 0:
        last = [line for line in out.stderr.splitlines() if line.strip()][-1:] or ["?"]
        raise LoadError(f"interpreter {python!r} failed to start: {last[0].strip()}")
    major, minor = out.stdout.split()
    return int(major), int(minor)


def _resolve(interpreter: str) -> str:
    if os.sep not in interpreter:
        # pyenv's shims answer only for selected versions: look in its versions first.
        for candidate in _pyenv_candidates(interpreter):
            return candidate
    found = shutil.which(interpreter) or (interpreter if os.path.isfile(interpreter) else None)
    if found is None:
        raise LoadError(f"interpreter {interpreter!r} not found on PATH, in pyenv or as a file")
    return found


def _pyenv_candidates(name: str) -> list[str]:
    root = os.environ.get("PYENV_ROOT") or str(Path.home() / ".pyenv")
    found = [p for p in Path(root, "versions").glob(f"*/bin/{name}") if os.access(p, os.X_OK)]
    return [str(p) for p in sorted(found, key=lambda p: p.parent.parent.name, reverse=True)]


def agent_python(interpreter: str) -> str:
    """A Python executable of ``interpreter``'s version that can run the worker."""
    python = _resolve(interpreter)
    version = python_version(python)
    if version < WORKER_FLOOR:
        raise LoadError(_refusal(interpreter, python, version))
    if _has_requirements(python, version):
        return python
    return _agent_venv(python, version)


def _refusal(interpreter: str, python: str, version: tuple[int, int]) -> str:
    """Why ``python`` cannot run the worker, and what to do instead (one line)."""
    floor = f"{WORKER_FLOOR[0]}.{WORKER_FLOOR[1]}"
    what = f"interpreter {interpreter!r} is Python {version[0]}.{version[1]}"
    if version[0] < 3:
        return (
            f"{what}, which sockspec does not support: the worker needs {floor} or newer and "
            f"Python 2's SocketServer.py cannot be loaded into Python 3 — test Python 3 instead"
        )
    path = stdlib_socketserver(python)
    hint = f" — load its socketserver.py by path instead: --impl {path}" if path else ""
    return f"{what}; the sockspec worker needs {floor} or newer{hint}"


def stdlib_socketserver(python: str) -> str:
    """Path of ``python``'s own ``socketserver.py`` ("" when it cannot be asked)."""
    try:
        out = subprocess.run(
            [python, "-c", "import socketserver; print(socketserver.__file__)"],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return out.stdout.strip() if out.returncode == 0 else ""


def _has_requirements(python: str, version: tuple[int, int]) -> bool:
    modules = "psutil, hypothesis, scapy" + (", importlib_metadata" if version < (3, 8) else "")
    probe = f"import {modules}"
    try:
        return (
            subprocess.run([python, "-c", probe], capture_output=True, timeout=60).returncode == 0
        )
    except (OSError, subprocess.TimeoutExpired):
        return False


def _agent_venv(python: str, version: tuple[int, int]) -> str:
    key = hashlib.sha256(os.path.realpath(python).encode()).hexdigest()[:10]
    root = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "sockspec" / "agents"
    venv = root / f"py{version[0]}.{version[1]}-{key}"
    exe = venv / "bin" / "python"
    ready = venv / ".sockspec-ready"
    root.mkdir(parents=True, exist_ok=True)
    # Runs and test workers may want the same environment at once: one builds
    # it while the others wait, instead of each deleting the other's half.
    with open(root / f"{venv.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if exe.exists() and _made_with(ready) == list(WORKER_REQUIREMENTS):
            return str(exe)
        shutil.rmtree(venv, ignore_errors=True)
        _run([python, "-m", "venv", str(venv)], f"making the agent environment {venv}")
        _run(
            [str(exe), "-m", "pip", "install", "--quiet", *WORKER_REQUIREMENTS],
            f"installing the worker's requirements into {venv}",
        )
        ready.write_text(json.dumps({"python": python, "requirements": WORKER_REQUIREMENTS}))
    return str(exe)


def _made_with(ready: Path) -> list[str] | None:
    """The requirements an agent environment was made with (None: not finished)."""
    try:
        requirements = json.loads(ready.read_text()).get("requirements")
    except (OSError, ValueError):
        return None
    return requirements if isinstance(requirements, list) else None


def _run(argv: list[str], what: str) -> None:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=600)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise LoadError(f"{what} failed: {exc}") from None
    if out.returncode != 0:
        last = (out.stderr.strip() or out.stdout.strip()).splitlines()[-1:] or ["?"]
        raise LoadError(f"{what} failed: {last[0]}")


def _require_module(python: str, name: str) -> None:
    try:
        ok = subprocess.run([python, "-c", f"import {name}"], capture_output=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise LoadError(f"checking {name} for {python!r} failed: {exc}") from None
    if ok.returncode != 0:
        raise LoadError(
            f"{name} is not installed for {python}; install it there (`pip install {name}`) "
            f"or use `tox -e {name}`"
        )
