"""Shared fixtures; the helpers behind them live in ``tests/helpers`` (importable)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from helpers.cli import CliRun, run_cli


@pytest.fixture
def cli(tmp_path: Path) -> Callable[..., CliRun]:
    """Run ``python -m harness ARGS`` with a deadline; ``run`` gets its own report dir."""

    def invoke(*args: str, timeout: float = 240.0) -> CliRun:
        return run_cli(tmp_path, *args, timeout=timeout)

    return invoke
