"""The pytest plugin: scenarios as test items, and fixtures for users' own tests.

``pytest --sockspec-impl SPEC`` collects every selected case × implementation
as an item whose id is the case id; an ``unsupported`` verdict is a skip and
any other non-pass verdict a failure showing the findings.  Under
pytest-xdist (``-n 2``, ``--tx``) the items spread over workers like any
others, and xdist replaces a worker that crashes.

This is the only module of the harness that imports pytest.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from harness._execution.adhoc import AdhocSession
from harness._execution.discovery import discover, select_cases
from harness._execution.execute import execute
from harness._model.implementation import Implementation
from harness._model.records import CaseResult, Verdict, replay_command
from harness._model.scenario import Case
from harness._model.settings import CaseOptions
from harness._runtime.loading import load_implementation
from harness._runtime.serverhandle import ServerHandle


def pytest_addoption(parser: pytest.Parser) -> None:
    """Register the ``--sockspec-*`` options."""
    group = parser.getgroup("sockspec", "socketserver conformance (sockspec)")
    group.addoption(
        "--sockspec-impl",
        action="append",
        default=[],
        metavar="SPEC",
        help="run the sockspec catalogue against SPEC (repeatable)",
    )
    group.addoption(
        "--sockspec-select",
        action="append",
        default=[],
        metavar="GLOB",
        help="only cases whose id matches GLOB",
    )
    group.addoption("--sockspec-profile", default="default", help="smoke, default, full or stress")
    group.addoption("--sockspec-seed", type=int, default=0, help="base seed of the cases")
    group.addoption(
        "--sockspec-scenarios",
        action="append",
        default=[],
        metavar="DIR",
        help="extra directory of scenario modules",
    )


class CaseItem(pytest.Item):
    """One case against one implementation."""

    def __init__(self, *, impl_spec: str, case: Case, seed: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.impl_spec = impl_spec
        self.case = case
        self.seed = seed
        self.result: CaseResult | None = None

    def runtest(self) -> None:
        """Run the case in this process and turn its verdict into a pytest outcome."""
        options = CaseOptions(seed=self.seed)
        self.result = execute(load_implementation(self.impl_spec), self.case, options).result
        if self.result.verdict is Verdict.UNSUPPORTED:
            pytest.skip(self.result.reason)
        if self.result.verdict is not Verdict.PASS:
            raise CaseFailed(self.result)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        """Findings as text instead of a traceback of the harness."""
        if isinstance(excinfo.value, CaseFailed):
            return describe(excinfo.value.result)
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Path, int, str]:
        """Where the scenario is defined."""
        code = self.case.spec.func.__code__
        return Path(code.co_filename), code.co_firstlineno, f"{self.impl_spec}::{self.case.id}"


class CaseFailed(Exception):
    """A case ended in fail, hang, crash or error."""

    def __init__(self, result: CaseResult) -> None:
        super().__init__(result.verdict.value)
        self.result = result


def describe(result: CaseResult) -> str:
    """A failure report: verdict, findings with expected/observed, transcript, replay."""
    lines = [f"{result.verdict.value.upper()}: {result.id} ({result.impl})"]
    if result.reason:
        lines.append(f"  reason: {result.reason}")
    for finding in result.findings[:10]:
        lines.append(f"  [{finding.check}] {finding.message}")
        if finding.expected:
            lines.append(f"    expected: {finding.expected}")
        if finding.observed:
            lines.append(f"    observed: {finding.observed}")
        if "transcript" in finding.evidence:
            lines.append(f"    {finding.evidence['transcript']}")
    if len(result.findings) > 10:
        lines.append(f"  … and {len(result.findings) - 10} more finding(s)")
    if "stacks" in result.evidence:
        lines.append("  stacks:\n" + str(result.evidence["stacks"])[-3000:])
    lines.append(f"  replay: {replay_command(result)}")
    return "\n".join(lines)


class CatalogueCollector(pytest.Collector):
    """Collects the selected cases for each ``--sockspec-impl``."""

    def collect(self) -> list[pytest.Item]:
        """One ``CaseItem`` per implementation × case."""
        config = self.config
        specs = discover([Path(d) for d in config.getoption("sockspec_scenarios")])
        cases = select_cases(
            specs, tuple(config.getoption("sockspec_select")), config.getoption("sockspec_profile")
        )
        seed = config.getoption("sockspec_seed")
        items: list[pytest.Item] = []
        for impl in config.getoption("sockspec_impl"):
            load_implementation(impl)  # a bad spec fails collection with its one-line error
            for case in cases:
                items.append(
                    CaseItem.from_parent(
                        self, name=f"{impl}::{case.id}", impl_spec=impl, case=case, seed=seed
                    )
                )
        return items


def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    """Append the catalogue's items when ``--sockspec-impl`` is given."""
    if not config.getoption("sockspec_impl"):
        return
    collector = CatalogueCollector.from_parent(session, name="sockspec")
    items.extend(collector.collect())


@pytest.fixture
def sockspec_impl(request: pytest.FixtureRequest) -> Implementation:
    """The implementation under test: the first ``--sockspec-impl``, else ``stdlib``."""
    specs = request.config.getoption("sockspec_impl")
    return load_implementation(specs[0] if specs else "stdlib")


@pytest.fixture
def sockspec(sockspec_impl: Implementation) -> Iterator[AdhocSession]:
    """Instrumented servers and clients for your own tests; cleaned up and checked after.

    ``sockspec.server(transport="tcp", kind="threading", handler=...)`` returns
    a serving ``ServerHandle``; ``sockspec.swarm(server, scripts)`` runs clients;
    ``sockspec.findings()`` runs the lifecycle checks.
    """
    session = AdhocSession(sockspec_impl)
    try:
        yield session
    finally:
        session.close()


__all__ = ["CaseItem", "ServerHandle", "describe", "sockspec", "sockspec_impl"]
