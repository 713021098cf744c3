"""Named post-checks: what a scenario's ``checks=(...)`` refers to.

Each runs after the scenario body, on the finished case.  ``resources`` is
applied by the executor itself (it needs the snapshot taken before the case),
so here it is a name only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ._context import Context


def _lifecycle(ctx: Context) -> None:
    from . import checks

    checks.lifecycle(ctx)
    checks.errors_handled(ctx)


def _concurrency(ctx: Context) -> None:
    from . import checks

    checks.concurrency_placement(ctx)


def _nothing(ctx: Context) -> None:
    """Placeholder for checks the executor performs itself."""


#: Check name -> function run after the scenario.
POST_CHECKS: dict[str, Callable[[Context], None]] = {
    "lifecycle": _lifecycle,
    "concurrency": _concurrency,
    "resources": _nothing,
}
