"""History: the concurrency scenarios catch the mix-in bugs CPython really shipped.

CPython 3.6's ``server_close()`` neither waits for running handler threads nor
reaps running children (``block_on_close`` only arrived in 3.7).  CPython 3.7's
``ThreadingMixIn`` keeps every finished non-daemon handler thread in
``_threads`` until ``server_close()`` (bpo-37193).  Each old stdlib is run
through the CLI as ``history`` runs it -- 3.7, the worker's floor, through its
own interpreter, 3.6 loaded by path -- against the concurrency and classic echo
families; exactly the scenarios below must fail, for exactly that reason, and
everything else must pass or be unsupported.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from helpers.cli import CliRun

from harness._control import history as _history
from harness._control.agents import WORKER_FLOOR
from harness._control.expectations import Expectation, load_expectations

#: minor version -> {scenario that must fail: the check that must report it}
EXPECTED_FAILURES: dict[str, dict[str, str]] = {
    "3.6": {"concurrency.close.waits": "concurrency.close_waits"},
    "3.7": {"concurrency.threading.no_retention": "concurrency.threads_retained"},
}


def _pyenv_versions() -> Path | None:
    root = os.environ.get("PYENV_ROOT")
    exe = shutil.which("pyenv")
    if exe and not root:
        try:
            root = subprocess.run(
                [exe, "root"], capture_output=True, text=True, timeout=30, check=True
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            root = None
    versions = Path(root or Path.home() / ".pyenv") / "versions"
    return versions if versions.is_dir() else None


def old_python(minor: str) -> Path:
    """The newest installed CPython ``minor``'s interpreter, or skip saying why."""
    versions = _pyenv_versions()
    if versions is None:
        pytest.skip(f"no pyenv versions directory to find CPython {minor} in")
    pattern = re.compile(rf"^{re.escape(minor)}\.(\d+)$")
    found = sorted((int(m.group(1)), d) for d in versions.iterdir() if (m := pattern.match(d.name)))
    for _, directory in reversed(found):
        python = directory / "bin" / "python3"
        if python.is_file():
            return python
    pytest.skip(f"CPython {minor}'s interpreter not found under {versions}/{minor}.*")


def _is_race(races: list[Expectation], result: dict[str, Any]) -> bool:
    fields = SimpleNamespace(impl=result["impl"], id=result["id"], scenario=result["scenario"])
    return any(e.matches(fields) for e in races)  # type: ignore[arg-type]


def _fake_versions(monkeypatch: pytest.MonkeyPatch, versions: dict[str, tuple[int, int]]) -> None:
    """Make ``history`` see interpreters of the given versions without running them."""
    monkeypatch.setattr(_history, "python_version", lambda python: versions[python])
    monkeypatch.setattr(
        _history, "stdlib_socketserver", lambda python: f"{python}-lib/socketserver.py"
    )


def test_history_runs_each_python_from_the_floor_through_its_own_interpreter(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    floor = f"py{WORKER_FLOOR[0]}.{WORKER_FLOOR[1]}"
    _fake_versions(monkeypatch, {"py3.6": (3, 6), floor: WORKER_FLOOR, "py3.13": (3, 13)})
    impls, _ = _history.impl_specs([Path("py3.6"), Path(floor), Path("py3.13")])
    assert impls == ["py3.6-lib/socketserver.py", f"{floor}:socketserver", "py3.13:socketserver"]


def test_history_adds_the_expectation_files_of_the_versions_it_runs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _fake_versions(monkeypatch, {"py3.6": (3, 6), "py3.7": (3, 7), "py3.12": (3, 12)})
    _, expects = _history.impl_specs([Path("py3.6"), Path("py3.7"), Path("py3.12")])
    assert [p.name for p in expects] == ["cpython-3.6.toml", "cpython-3.7.toml"]


@pytest.mark.slow
@pytest.mark.parametrize("minor", sorted(EXPECTED_FAILURES))
def test_old_cpython_fails_exactly_its_known_bugs(minor: str, cli: Callable[..., CliRun]) -> None:
    impls, expects = _history.impl_specs([old_python(minor)])
    impl = impls[0]
    # Races the expectation file documents (pass or fail) may go either way.
    races = [e for e in load_expectations(expects) if "pass" in e.verdicts]
    own = tuple(int(n) for n in minor.split(".")) >= WORKER_FLOOR
    assert impl.endswith(":socketserver" if own else "socketserver.py"), impl
    run = cli(
        "run",
        "--impl",
        impl,
        "--select",
        "concurrency.*",
        "--select",
        "classic_echo.*",
        "--jobs",
        "2",
    )
    assert run.status == 1, run.stderr
    by_scenario: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for result in run.results()["results"]:
        by_scenario[result["scenario"]].append(result)
    failing = {
        scenario
        for scenario, results in by_scenario.items()
        if any(
            r["verdict"] not in ("pass", "unsupported")
            and (scenario in EXPECTED_FAILURES[minor] or not _is_race(races, r))
            for r in results
        )
    }
    expected = EXPECTED_FAILURES[minor]
    assert failing == set(expected), {
        s: [(r["id"], r["verdict"]) for r in by_scenario[s]] for s in failing ^ set(expected)
    }
    for scenario, check in expected.items():
        ran = [r for r in by_scenario[scenario] if r["verdict"] != "unsupported"]
        assert ran, f"every case of {scenario} was unsupported for {impl}"
        for result in ran:
            checks = {f["check"] for f in result["findings"]}
            assert result["verdict"] == "fail" and check in checks, (result["id"], checks)
