"""The case queue: sibling cases (one scenario) run apart while other work is pending."""

from __future__ import annotations

import types

from harness._control.schedule import CaseQueue
from harness._model.implementation import Implementation
from harness._model.plan import CaseRef, ScenarioRef
from harness._model.records import Strictness

IMPL = Implementation("m", types.ModuleType("m"), frozenset())
OTHER = Implementation("n", types.ModuleType("n"), frozenset())


def _case(scenario: str, n: int) -> CaseRef:
    spec = ScenarioRef(scenario, "", "", Strictness.MUST, 20.0, "default")
    return CaseRef(f"{scenario}[{n}]", spec, "tcp", "sync")


def _ids(items: list[tuple[Implementation, CaseRef] | None]) -> list[str]:
    return [f"{item[0].spec}:{item[1].id}" if item else "-" for item in items]


def test_a_slot_takes_a_scenario_no_other_slot_is_running() -> None:
    work = [(IMPL, _case("a", n)) for n in range(3)] + [(IMPL, _case("b", n)) for n in range(2)]
    queue = CaseQueue(work)
    first, second = queue.take(), queue.take()
    # a[0] runs: the second slot skips a[1] and a[2] for b[0], not a sibling beside it
    assert _ids([first, second]) == ["m:a[0]", "m:b[0]"]
    assert first is not None
    queue.done(first)
    third = queue.take()  # a has nothing in progress again: back in catalogue order
    assert _ids([third]) == ["m:a[1]"]
    # only siblings of running cases are left: no slot waits, it takes the first
    assert _ids([queue.take()]) == ["m:a[2]"]
    assert _ids([queue.take(), queue.take()]) == ["m:b[1]", "-"]
    assert queue.empty()


def test_the_same_scenario_of_another_implementation_is_not_a_sibling() -> None:
    queue = CaseQueue([(IMPL, _case("a", 0)), (IMPL, _case("a", 1)), (OTHER, _case("a", 0))])
    assert _ids([queue.take(), queue.take()]) == ["m:a[0]", "n:a[0]"]
