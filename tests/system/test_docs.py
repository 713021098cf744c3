"""The documentation stays true: its example runs, and the catalogue is up to date."""

from __future__ import annotations

import re
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
