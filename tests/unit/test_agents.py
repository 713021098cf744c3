"""Agents: which interpreters can run the worker, and the environments made for them.

Interpreters from ``WORKER_FLOOR`` on run the worker; older ones are refused in
one line that says what to do instead.  The refusal tests need those old
interpreters under pyenv and skip, saying so, without them.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from harness._control import agents as _agents
from harness._model.errors import LoadError


def require(name: str) -> str:
    """``name`` as the agents resolve it, or skip saying it is missing."""
    try:
        return _agents._resolve(name)
    except LoadError:
        pytest.skip(f"{name} not found under pyenv or on PATH")


def test_python_version_reads_python2_too() -> None:
    assert _agents.python_version(require("python2.7")) == (2, 7)


def test_python36_is_refused_with_the_by_path_hint() -> None:
    require("python3.6")
    with pytest.raises(LoadError) as info:
        _agents.agent_python("python3.6")
    message = str(info.value)
    assert "\n" not in message and "is Python 3.6" in message, message
    assert message.endswith("/socketserver.py") and "--impl " in message, message


def test_python2_is_refused_as_unsupported() -> None:
    require("python2.7")
    with pytest.raises(LoadError) as info:
        _agents.agent_python("python2.7")
    message = str(info.value)
    assert "\n" not in message and "does not support" in message, message
    assert "test Python 3 instead" in message, message


def _fake_venv(calls: list[list[str]]) -> Callable[[list[str], str], None]:
    """A stand-in for ``_agents._run`` that records argv and makes the venv's python."""

    def run(argv: list[str], what: str) -> None:
        calls.append(argv)
        if argv[1:3] == ["-m", "venv"]:
            exe = Path(argv[3]) / "bin" / "python"
            exe.parent.mkdir(parents=True)
            exe.touch()

    return run


def test_agent_environment_is_made_once_and_remade_for_new_requirements(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[list[str]] = []
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr(_agents, "_run", _fake_venv(calls))
    exe = _agents._agent_venv("/usr/bin/python3.7", (3, 7))
    assert len(calls) == 2 and calls[1][-len(_agents.WORKER_REQUIREMENTS) :] == list(
        _agents.WORKER_REQUIREMENTS
    )
    assert _agents._agent_venv("/usr/bin/python3.7", (3, 7)) == exe and len(calls) == 2
    monkeypatch.setattr(_agents, "WORKER_REQUIREMENTS", ("psutil>=6",))
    assert _agents._agent_venv("/usr/bin/python3.7", (3, 7)) == exe and len(calls) == 4
    ready = json.loads((Path(exe).parent.parent / ".sockspec-ready").read_text())
    assert ready["requirements"] == ["psutil>=6"]
