"""The documentation stays true: its example runs, and the catalogue is up to date."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

from helpers import ROOT
from helpers.cli import CliRun

GUIDE = ROOT / "docs" / "writing-scenarios.md"
CATALOGUE = ROOT / "docs" / "catalogue.md"


def _example() -> str:
    blocks = re.findall(r"```python\n(.*?)```", GUIDE.read_text(), re.S)
    assert len(blocks) == 1, "the guide must have exactly one complete python example"
    return blocks[0]


def test_guide_example_is_about_twenty_lines() -> None:
    code = [line for line in _example().splitlines() if line.strip()]
    assert 15 <= len(code) <= 30


def test_guide_example_runs_and_passes(cli: Callable[..., CliRun], tmp_path: Path) -> None:
    mine = tmp_path / "my_scenarios"
    mine.mkdir()
    (mine / "lines.py").write_text(_example())
    run = cli("run", "--scenarios", str(mine), "--select", "mine.*")
    assert run.status == 0, run.stderr
    results = run.results()["results"]
    assert len(results) == 16  # 8 cases x stdlib and reference
    assert {r["verdict"] for r in results} == {"pass"}


def test_catalogue_document_is_up_to_date(cli: Callable[..., CliRun]) -> None:
    listed = cli("list", "--format", "md")
    assert listed.status == 0, listed.stderr
    assert CATALOGUE.read_text() == listed.stdout, (
        "docs/catalogue.md is stale: run `python -m harness list --format md > docs/catalogue.md`"
    )


def _readme_commands() -> list[str]:
    proc = subprocess.run(
        ["sh", str(ROOT / ".ci" / "readme-commands"), str(ROOT / "README.md")],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.splitlines()


def test_readme_shows_two_commands_setup_and_run_then_tox() -> None:
    first, second = _readme_commands()
    assert first.startswith("sh setup.sh && ") and "-m harness run" in first
    assert second == ".venv/bin/tox p -p all"


def test_ci_runs_exactly_the_readme_commands(tmp_path: Path) -> None:
    """.ci/run, given a README whose commands only log themselves, runs those and nothing else."""
    fake = tmp_path / "repo"
    (fake / ".ci").mkdir(parents=True)
    for name in ("run", "readme-commands"):
        shutil.copy(ROOT / ".ci" / name, fake / ".ci" / name)
    log = tmp_path / "log"
    readme = (ROOT / "README.md").read_text()
    for command in _readme_commands():
        readme = readme.replace(command, f"echo '{command}' >> {log}")
    (fake / "README.md").write_text(readme)
    proc = subprocess.run(
        ["sh", str(fake / ".ci" / "run")], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert log.read_text().splitlines() == _readme_commands()
    # No hidden set-up: every install happens in a command the README shows.
    script = (ROOT / ".ci" / "run").read_text()
    assert "apt-get" not in script and "pip" not in script


def test_ci_refuses_a_readme_without_exactly_two_commands(tmp_path: Path) -> None:
    fake = tmp_path / "repo"
    (fake / ".ci").mkdir(parents=True)
    for name in ("run", "readme-commands"):
        shutil.copy(ROOT / ".ci" / name, fake / ".ci" / name)
    (fake / "README.md").write_text("# x\n\n## Two commands\n\n```sh\ntrue\n```\n")
    proc = subprocess.run(
        ["sh", str(fake / ".ci" / "run")], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 2 and "exactly two commands" in proc.stderr
