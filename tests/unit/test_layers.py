"""The shape of ``harness/``: public names, lazy loading, and the import-layer contract."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import ROOT

import harness

#: The public API.  Changing it is a decision: update this list on purpose.
PUBLIC = {
    "ALL", "Abort", "Behaviour", "Case", "CaseResult", "ClientResult", "Close", "Context",
    "DATAGRAM_TRANSPORTS", "Endpoint", "ExpectEOF", "Finding", "HandlerSpec", "Hang",
    "Implementation", "InjectedError", "KINDS", "LifecycleEvent", "LoadError", "PROFILES",
    "Param", "Pause", "Recv", "RecvAll", "RecvDatagram", "RecvLine", "Reset",
    "STREAM_TRANSPORTS", "ScenarioDefinitionError", "ScenarioImportError", "ScenarioSpec",
    "Script", "Send", "ServerHandle", "Settings", "ShutdownWrite", "SockspecError",
    "Strictness", "TRANSPORTS", "Unsupported", "UsageError", "Verdict", "checks", "echo",
    "echo_lines", "echo_script", "gated", "load_implementation", "param", "probe_features",
    "raising", "scenario", "sequence",
}  # fmt: skip

#: Folders only the controller (Python 3.10+) imports; a worker must never load them.
CONTROLLER_ONLY = (
    "harness._control",
    "harness._report",
    "harness._cli",
    "harness._bench",
    "harness._mutation",
)


def _modules_after(code: str) -> list[str]:
    """``harness`` modules loaded by running ``code`` in a fresh interpreter."""
    probe = (
        f"{code}; import sys; print(' '.join(m for m in sys.modules if m.startswith('harness')))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, cwd=ROOT
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.split()


def test_all_is_pinned() -> None:
    assert set(harness.__all__) == PUBLIC
    assert len(harness.__all__) == len(PUBLIC)


def test_every_public_name_resolves_and_dir_lists_them() -> None:
    for name in harness.__all__:
        assert getattr(harness, name) is not None, name
    assert set(dir(harness)) >= PUBLIC


def test_unknown_attribute_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no_such_name"):
        harness.no_such_name  # noqa: B018


def test_importing_harness_loads_nothing_else() -> None:
    assert _modules_after("import harness") == ["harness"]


def test_a_worker_never_imports_controller_only_modules() -> None:
    loaded = _modules_after("import harness._execution.worker")
    assert "harness._execution.worker" in loaded
    assert [m for m in loaded if m.startswith(CONTROLLER_ONLY)] == []


def _lint_copy(tmp_path: Path) -> Path:
    """A copy of the package and its contract, where an import can be added safely."""
    shutil.copytree(ROOT / "harness", tmp_path / "harness", ignore=shutil.ignore_patterns("*.pyc"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def _lint(root: Path) -> subprocess.CompletedProcess[str]:
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    if exe is None:
        pytest.skip("import-linter is not installed (pip install -e '.[test]')")
    env = {"PYTHONPATH": str(root), "PATH": str(Path(sys.executable).parent)}
    return subprocess.run(
        [exe, "--config", str(root / "pyproject.toml"), "--no-cache"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=root,
        env=env,
    )


def test_the_layer_contract_holds(tmp_path: Path) -> None:
    proc = _lint(_lint_copy(tmp_path))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 broken" in proc.stdout


@pytest.mark.parametrize(
    ("module", "line", "broken"),
    [
        # The model reaching up into the controller: a layer violation.
        ("_model/errors.py", "import harness._control.runner", "harness layers"),
        # A worker-side module importing a report writer (3.10+ only).
        ("_execution/worker.py", "import harness._report.write", "harness layers"),
        # Two runtime modules importing each other: a cycle.
        ("_runtime/limits.py", "import harness._runtime.swarm", "no import cycles"),
        # pytest outside the plugin.
        ("_runtime/swarm.py", "import pytest", "only the pytest plugin imports pytest"),
    ],
)
def test_a_forbidden_import_breaks_the_contract(
    tmp_path: Path, module: str, line: str, broken: str
) -> None:
    root = _lint_copy(tmp_path)
    target = root / "harness" / module
    target.write_text(target.read_text() + f"\n{line}  # added by the test\n")
    proc = _lint(root)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    verdicts = [ln.split()[-1] for ln in proc.stdout.splitlines() if ln.startswith(broken)]
    assert "BROKEN" in verdicts, proc.stdout
