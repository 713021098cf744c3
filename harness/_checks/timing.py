"""Duration bounds and event orders turned into findings.

``within`` and ``in_order`` judge durations and event orders; ``slack`` is the
tolerance a loaded machine needs on top of a nominal duration.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from harness._model.records import LifecycleEvent
    from harness._runtime.context import Context

#: Seconds a loaded 2-core machine may add to any nominal duration.
SLACK = 1.5


def slack(ctx: Context, seconds: float = SLACK) -> float:
    """The tolerance added to nominal durations, stretched by the deadline scale."""
    return seconds * ctx.scale


def within(ctx: Context, check: str, what: str, elapsed: float, low: float, high: float) -> bool:
    """Record a finding unless ``low <= elapsed < high``."""
    return ctx.expect(
        low <= elapsed < high,
        check,
        f"{what} took {elapsed:.3f}s",
        expected=f"at least {low:.3f}s and under {high:.3f}s",
        observed=f"{elapsed:.3f}s",
    )


def first_event(ctx: Context, name: str, phase: str) -> LifecycleEvent | None:
    """The first logged ``name``/``phase`` event, if any."""
    return next((e for e in ctx.events(name) if e.phase == phase), None)


def in_order(ctx: Context, check: str, *steps: tuple[str, str]) -> bool:
    """Record a finding unless the first event of each ``(name, phase)`` came in this order.

    A missing event is a violation too: ``("serve_forever", "return")`` must
    exist to come before ``("shutdown", "return")``.
    """
    found = [(f"{name} {phase}", first_event(ctx, name, phase)) for name, phase in steps]
    observed = sorted(
        ((event.t, label) for label, event in found if event is not None), key=lambda p: p[0]
    )
    missing = [label for label, event in found if event is None]
    ok = not missing and [label for _t, label in observed] == [label for label, _e in found]
    return ctx.expect(
        ok,
        check,
        "lifecycle events out of order" + (f" ({', '.join(missing)} missing)" if missing else ""),
        expected=" → ".join(label for label, _e in found),
        observed=" → ".join(label for _t, label in observed) or "(nothing)",
    )
