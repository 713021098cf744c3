"""Shared fixtures; the helpers behind them live in ``tests/helpers`` (importable)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from helpers.cli import CliRun, run_cli
from helpers.host import feature_of_skip


@pytest.fixture
def cli(tmp_path: Path) -> Callable[..., CliRun]:
    """Run ``python -m harness ARGS`` with a deadline; ``run`` gets its own report dir."""

    def invoke(*args: str, timeout: float = 240.0) -> CliRun:
        return run_cli(tmp_path, *args, timeout=timeout)

    return invoke


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Say which host features were absent and how many tests skipped for each."""
    absent: dict[str, int] = {}
    for report in terminalreporter.stats.get("skipped", []):
        longrepr = getattr(report, "longrepr", None)
        message = longrepr[2] if isinstance(longrepr, tuple) and len(longrepr) == 3 else ""
        feature = feature_of_skip(str(message))
        if feature is not None:
            absent[feature] = absent.get(feature, 0) + 1
    if absent:
        listed = ", ".join(f"{name} ({count} skipped)" for name, count in sorted(absent.items()))
        terminalreporter.write_line(f"host features absent: {listed}")
    else:
        terminalreporter.write_line("host features absent: none")
