"""Repeated symptoms: hangs an implementation already showed, kept by the controller.

Workers are retired after a hang, so what a hang looked like must live in
the controller: each ``hang`` result carries its phase and stack signature
(``hang_phase``/``hang_signature`` in its evidence), as does a client wait
that ran its full timeout on a stuck server (``client_stalls``); once ``REPEAT_AFTER``
cases of one implementation hung the same way, later cases of that
implementation receive it as a ``KnownHang`` and may end that phase after a
shortened deadline (see ``_runtime.deadline.PhaseClock``).  A passing
implementation has no hangs, so it never meets a shortened deadline.
"""

from __future__ import annotations

import threading
from collections import Counter

from harness._model.phases import DEATH_PHASE, REPEAT_AFTER, KnownHang
from harness._model.records import CaseResult, Verdict


class Symptoms:
    """Hang signatures per implementation (thread-safe: worker slots share it)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: dict[str, Counter[tuple[str, str]]] = {}

    def record(self, result: CaseResult) -> None:
        """Count ``result`` if it is a hang with a phase and a signature, or a
        dead serve thread (``fail``) with how it died; and, either way, a client
        that waited out its full timeout on a stuck server (``client_stalls``)."""
        stalls = result.evidence.get("client_stalls")
        if isinstance(stalls, list) and result.verdict in (Verdict.FAIL, Verdict.HANG):
            for stall in (s for s in stalls if isinstance(s, dict)):
                self._count(result.impl, str(stall.get("phase")), str(stall.get("signature")))
        phase = result.evidence.get("hang_phase")
        signature = result.evidence.get("hang_signature")
        if result.verdict is Verdict.FAIL and result.evidence.get("death_signature"):
            phase, signature = DEATH_PHASE, result.evidence["death_signature"]
        elif result.verdict is not Verdict.HANG or not phase or not signature:
            return
        shortened = result.evidence.get("deadline_shortened")
        if shortened and shortened != result.evidence.get("client_wait_shortened"):
            return  # only hangs judged with the full deadline count (a client's wait aside)
        self._count(result.impl, phase, signature)

    def _count(self, impl: str, phase: str, signature: str) -> None:
        with self._lock:
            self._seen.setdefault(impl, Counter())[(phase, signature)] += 1

    def known(self, impl: str) -> tuple[KnownHang, ...]:
        """The hangs of ``impl`` seen at least ``REPEAT_AFTER`` times."""
        with self._lock:
            seen = self._seen.get(impl, Counter())
            return tuple(
                KnownHang(phase, signature, count)
                for (phase, signature), count in sorted(seen.items())
                if count >= REPEAT_AFTER
            )
