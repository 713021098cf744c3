"""The order in which worker slots take cases: cheap ones first, one scenario at a
time per slot.

Sibling cases (one scenario, other parameters) usually share a symptom: a broken
implementation hangs the same way in each.  The first such hang is judged with the
full phase deadline and later ones with a shortened one (``phases``), but only once
the first has ended.  Slots that drained one queue in catalogue order ran siblings
side by side, so every slot paid the first occurrence's full deadline (two slots
at 5 s each, where one would do).  A slot therefore takes the first pending case
of a scenario no other slot is running a case of, and falls back to the first
pending case only when every pending case has a sibling in progress (the end of
the run): no slot ever waits, so a clean run is as fast as before.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterable, Sequence

from harness._model.implementation import Implementation
from harness._model.plan import CaseRef

Item = tuple[Implementation, CaseRef]


def cheap_first(work: Sequence[Item]) -> list[Item]:
    """``work`` in the order it is run: implementation by implementation, as given,
    and within one the cases with the shorter deadlines first (else catalogue order).

    On a broken implementation a case waits out its long timeouts only until a
    symptom of the implementation is known (``phases``), and the short cases
    learn the symptoms at a fraction of the cost.  Reports keep catalogue order.
    """
    rank: dict[str, int] = {}
    for impl, _case in work:
        rank.setdefault(impl.spec, len(rank))
    return sorted(work, key=lambda item: (rank[item[0].spec], item[1].spec.deadline))


def _family(item: Item) -> tuple[str, str]:
    """The scenario of one implementation that ``item`` belongs to."""
    impl, case = item
    return impl.spec, case.spec.id


class CaseQueue:
    """Pending (implementation, case) pairs, handed out so that siblings run apart.

    ``take`` returns the first pending pair whose scenario (of that implementation)
    has no case in progress, else the first pending pair; ``done`` ends a pair's
    progress.  Thread-safe: every slot takes from one queue.
    """

    def __init__(self, work: Iterable[Item]) -> None:
        self._pending = list(work)
        self._running: Counter[tuple[str, str]] = Counter()
        self._lock = threading.Lock()

    def take(self) -> Item | None:
        """The next pair to run (now in progress), or None when none is pending."""
        with self._lock:
            if not self._pending:
                return None
            index = next(
                (i for i, item in enumerate(self._pending) if not self._running[_family(item)]),
                0,
            )
            item = self._pending.pop(index)
            self._running[_family(item)] += 1
            return item

    def done(self, item: Item) -> None:
        """``item`` is no longer in progress (judged, or dropped by a stop)."""
        with self._lock:
            self._running[_family(item)] -= 1

    def empty(self) -> bool:
        """Whether no pair is left to take."""
        with self._lock:
            return not self._pending
