"""Named post-checks bound to functions: what a scenario's ``checks=(...)`` runs.

The names are declared in the model (``harness._model.scenario.POST_CHECK_NAMES``);
each runs after the scenario body, on the finished case.  ``resources`` is applied
by the executor itself (it needs the snapshot taken before the case), so here it
does nothing.
"""

from __future__ import annotations

from collections.abc import Callable

from harness import checks
from harness._checks.hooks import hooks_effective
from harness._model.scenario import POST_CHECK_NAMES
from harness._runtime.context import Context


def _lifecycle(ctx: Context) -> None:
    checks.lifecycle(ctx)
    checks.errors_handled(ctx)
    checks.requests_handled_once(ctx)
    hooks_effective(ctx)


def _concurrency(ctx: Context) -> None:
    checks.concurrency_placement(ctx)


def _nothing(ctx: Context) -> None:
    """Placeholder for checks the executor performs itself."""


#: Check name -> function run after the scenario.
POST_CHECKS: dict[str, Callable[[Context], None]] = {
    "lifecycle": _lifecycle,
    "concurrency": _concurrency,
    "resources": _nothing,
}

if tuple(POST_CHECKS) != POST_CHECK_NAMES:  # pragma: no cover - a programming error
    raise ImportError("POST_CHECKS must bind exactly the names in POST_CHECK_NAMES")
