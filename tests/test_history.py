"""History: the concurrency scenarios catch the mix-in bugs CPython really shipped.

CPython 3.6's ``server_close()`` neither waits for running handler threads nor
reaps running children (``block_on_close`` only arrived in 3.7).  CPython 3.7's
``ThreadingMixIn`` keeps every finished non-daemon handler thread in
``_threads`` until ``server_close()`` (bpo-37193).  Each old ``socketserver.py``
is run through the CLI, loaded by path, against the concurrency and classic
echo families; exactly the scenarios below must fail, for exactly that reason,
and everything else must pass or be unsupported.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import CliRun

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


def old_socketserver(minor: str) -> Path:
    """The newest installed CPython ``minor``'s socketserver.py, or skip saying why."""
    versions = _pyenv_versions()
    if versions is None:
        pytest.skip(f"no pyenv versions directory to find CPython {minor}'s socketserver.py in")
    pattern = re.compile(rf"^{re.escape(minor)}\.(\d+)$")
    found = sorted((int(m.group(1)), d) for d in versions.iterdir() if (m := pattern.match(d.name)))
    for _, directory in reversed(found):
        path = directory / "lib" / f"python{minor}" / "socketserver.py"
        if path.is_file():
            return path
    pytest.skip(f"CPython {minor}'s socketserver.py not found under {versions}/{minor}.*")


@pytest.mark.slow
@pytest.mark.parametrize("minor", sorted(EXPECTED_FAILURES))
def test_old_cpython_fails_exactly_its_known_bugs(minor: str, cli: Callable[..., CliRun]) -> None:
    path = str(old_socketserver(minor))
    run = cli(
        "run",
        "--impl",
        path,
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
        if any(r["verdict"] not in ("pass", "unsupported") for r in results)
    }
    expected = EXPECTED_FAILURES[minor]
    assert failing == set(expected), {
        s: [(r["id"], r["verdict"]) for r in by_scenario[s]] for s in failing ^ set(expected)
    }
    for scenario, check in expected.items():
        ran = [r for r in by_scenario[scenario] if r["verdict"] != "unsupported"]
        assert ran, f"every case of {scenario} was unsupported for {path}"
        for result in ran:
            checks = {f["check"] for f in result["findings"]}
            assert result["verdict"] == "fail" and check in checks, (result["id"], checks)
