"""The scenario decorator: ids, expansion into cases, and rejected definitions."""

from __future__ import annotations

import pytest

from harness import Context, ScenarioDefinitionError, scenario
from harness._execution.discovery import discover, select_cases
from harness._model.scenario import spec_of


def test_cases_expand_transports_kinds_and_params() -> None:
    @scenario("t.x", title="x", transports=["tcp", "udp"], kinds=["sync"], params={"n": [1, 2]})
    def body(ctx: Context, n: int) -> None:
        """holds"""

    spec = spec_of(body)
    assert spec is not None
    assert [c.id for c in spec.cases()] == [
        "t.x[tcp-sync-n=1]",
        "t.x[tcp-sync-n=2]",
        "t.x[udp-sync-n=1]",
        "t.x[udp-sync-n=2]",
    ]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"transports": ["tcpp"]}, "unknown transport 'tcpp'"),
        ({"kinds": ["async"]}, "unknown kind 'async'"),
        ({"profile": "huge"}, "unknown profile 'huge'"),
        ({"strictness": "may"}, "unknown strictness 'may'"),
        ({"params": {"m": [1]}}, "parameter 'm' is not an argument"),
        ({"checks": ["nope"]}, "unknown check 'nope'"),
    ],
)
def test_bad_definitions_name_the_scenario_and_the_problem(kwargs: dict, message: str) -> None:
    with pytest.raises(ScenarioDefinitionError, match=message) as info:

        @scenario("t.bad", title="bad", **kwargs)
        def body(ctx: Context) -> None:
            """holds"""

    assert "test_scenario" in str(info.value)


def test_bad_id_and_missing_invariant_are_rejected() -> None:
    with pytest.raises(ScenarioDefinitionError, match="not a dotted lower-case id"):
        scenario("Bad Id", title="x")(lambda ctx: None)
    with pytest.raises(ScenarioDefinitionError, match="no invariant"):
        scenario("t.none", title="x")(lambda ctx: None)


def test_select_treats_brackets_literally_and_prefixes_as_families() -> None:
    specs = discover()
    by_family = select_cases(specs, ("lifecycle",), "stress")
    assert by_family and all(c.spec.id.startswith("lifecycle.") for c in by_family)
    exact = select_cases(specs, ("echo.concurrent[tcp-sync-clients=100]",), "stress")
    assert [c.id for c in exact] == ["echo.concurrent[tcp-sync-clients=100]"]
