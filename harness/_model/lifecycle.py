"""The lifecycle model: which hooks a request must pass through, and in what order.

The rules, as socketserver documents them:

* Every accepted request goes ``get_request → verify_request``.  If verification
  fails it goes straight to ``shutdown_request → close_request``.
* Otherwise ``process_request → finish_request → handler → shutdown_request →
  close_request`` — the handler being ``handler_init → setup → handle → finish``.
* ``finish`` runs even when ``handle`` raises; when ``setup`` raises neither
  ``handle`` nor ``finish`` runs.  A raised ``Exception`` is followed by one
  ``handle_error`` for that request.
* A forking server splits the path at the fork: the parent runs ``get_request,
  verify_request, process_request, close_request``; the child runs
  ``finish_request`` onwards and ends after ``shutdown_request → close_request``.

This module turns those rules into expected sequences (``expected_paths``) and
renders observed events as one-line transcripts.
"""

from __future__ import annotations

import difflib
from collections import defaultdict
from collections.abc import Sequence

from harness._model.records import LifecycleEvent

#: Handler hooks whose exception must reach ``handle_error`` (and a tagged handler can fail in).
FAULT_HOOKS = ("setup", "handle", "finish")

HANDLER_PATH: tuple[str, ...] = ("handler_init", "setup", "handle", "finish")
REQUEST_HEAD: tuple[str, ...] = ("get_request", "verify_request")
REQUEST_TAIL: tuple[str, ...] = ("shutdown_request", "close_request")
REJECTED_PATH: tuple[str, ...] = (*REQUEST_HEAD, *REQUEST_TAIL)

#: The hooks the order check looks at (``handle_error`` is checked separately).
ORDERED_HOOKS = frozenset(
    (*REQUEST_HEAD, "process_request", "finish_request", *HANDLER_PATH, *REQUEST_TAIL)
)


def handler_path(setup_raised: bool) -> tuple[str, ...]:
    """The handler's own hooks: all four, or up to ``setup`` when setup raised."""
    return HANDLER_PATH[:2] if setup_raised else HANDLER_PATH


def expected_paths(
    kind: str, accepted: bool, setup_raised: bool = False
) -> dict[str, tuple[str, ...]]:
    """Expected hook sequences per role (``server``, and ``child`` for forking)."""
    if not accepted:
        return {"server": REJECTED_PATH}
    handler = handler_path(setup_raised)
    if kind == "forking":
        return {
            "server": (*REQUEST_HEAD, "process_request", "close_request"),
            "child": ("finish_request", *handler, *REQUEST_TAIL),
        }
    return {"server": (*REQUEST_HEAD, "process_request", "finish_request", *handler, *REQUEST_TAIL)}


def by_conn(events: Sequence[LifecycleEvent]) -> dict[int, list[LifecycleEvent]]:
    """Events grouped by connection id (events without one are left out), in order."""
    grouped: dict[int, list[LifecycleEvent]] = defaultdict(list)
    for event in events:
        if event.conn is not None:
            grouped[event.conn].append(event)
    return grouped


def is_entry(event: LifecycleEvent) -> bool:
    """True for the event that stands for a hook having run.

    That is its ``call`` (or ``point``) event — except for ``get_request``,
    whose connection id is only known once it returns.
    """
    if event.name == "get_request":
        return event.phase == "return"
    return event.phase in ("call", "point")


def entries(events: Sequence[LifecycleEvent]) -> list[LifecycleEvent]:
    """The entry events of ordered hooks, in time order."""
    return [e for e in events if e.name in ORDERED_HOOKS and is_entry(e)]


def transcript(
    conn: int, events: Sequence[LifecycleEvent], expected: Sequence[str] | None = None
) -> str:
    """``conn#17 get_request → … → handle raised ValueError → finish MISSING``.

    With ``expected`` the observed hooks are aligned to the expected path and
    each hook that never ran is shown as ``MISSING`` where it should have been;
    hooks that ran but were not expected are marked ``UNEXPECTED``.
    """
    steps = [e for e in events if _is_step(e)]
    labels = [_label(e, events) for e in steps]
    if expected is not None:
        labels = _align(steps, labels, list(expected))
    return f"conn#{conn} " + " → ".join(labels)


def _is_step(event: LifecycleEvent) -> bool:
    return is_entry(event) and (event.name in ORDERED_HOOKS or event.name == "handle_error")


def _label(event: LifecycleEvent, events: Sequence[LifecycleEvent]) -> str:
    raised = _raise_of(event, events) if event.phase == "call" else None
    return f"{event.name} raised {raised}" if raised else event.name


def _align(steps: list[LifecycleEvent], labels: list[str], expected: list[str]) -> list[str]:
    ordered = [i for i, e in enumerate(steps) if e.name in ORDERED_HOOKS]
    matcher = difflib.SequenceMatcher(
        a=[steps[i].name for i in ordered], b=expected, autojunk=False
    )
    after: dict[int, list[str]] = {}
    out = list(labels)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag in ("replace", "delete"):
            for k in range(i1, i2):
                out[ordered[k]] = f"{labels[ordered[k]]} UNEXPECTED"
        if tag in ("replace", "insert"):
            # Show the gap right after the last hook that did run before it.
            anchor = ordered[i1 - 1] if i1 > 0 else -1
            after.setdefault(anchor, []).extend(f"{n} MISSING" for n in expected[j1:j2])
    result = list(after.get(-1, []))
    for index, label in enumerate(out):
        result.append(label)
        result.extend(after.get(index, []))
    return result


def _raise_of(call: LifecycleEvent, events: Sequence[LifecycleEvent]) -> str | None:
    for event in events:
        if (
            event.name == call.name
            and event.phase in ("return", "raise")
            and event.t >= call.t
            and event.thread_id == call.thread_id
            and event.pid == call.pid
        ):
            return event.exc_type if event.phase == "raise" else None
    return None
