"""``--oracle SPEC``: every case of the target judged against the same case on an oracle.

Each case is run on the oracle once (more when a difference must be confirmed,
see ``Oracle``), with the same case id and seed, in a
supervised worker of the oracle's own (one per slot of the pool, beside the
target's), and the result is kept for the run: every target, and the oracle's
own row when it is also an ``--impl``, reuses it.  Both sides record a
normalised observation (``harness._model.outcome``); ``harness._control.differ``
turns a difference into ``oracle.differs`` findings with a side-by-side diff,
and a target that passed but differs fails.

No comparison is made when either side is ``unsupported`` or ``error``, or
the oracle itself hung or crashed (its observation is no reference then);
the target's evidence says so under ``oracle``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from harness._control.differ import findings, section, summary
from harness._control.supervisor import Worker
from harness._model.errors import LoadError
from harness._model.implementation import Implementation
from harness._model.outcome import SECTIONS
from harness._model.plan import CaseRef
from harness._model.records import CaseResult, Verdict
from harness._model.settings import Settings

#: Verdicts of either side that leave nothing to compare.
NOT_COMPARED = (Verdict.UNSUPPORTED, Verdict.ERROR)
#: Oracle verdicts whose observation is no reference.
NO_REFERENCE = (Verdict.HANG, Verdict.CRASH)
OBSERVATION = "observation"
#: Runs of each side, at most, before a difference is reported (see ``Oracle``).
CONFIRM_RUNS = 3


def with_oracle(settings: Settings) -> Settings:
    """``settings`` whose implementations include the oracle, so that one probe loads all."""
    oracle = settings.oracle
    if oracle is None or oracle in settings.impls:
        return settings
    return settings.with_(impls=(*settings.impls, oracle))


def split_oracle(
    settings: Settings, impls: Sequence[Implementation]
) -> tuple[list[Implementation], Implementation | None]:
    """The implementations to judge, and the oracle's (None without ``--oracle``)."""
    if settings.oracle is None:
        return list(impls), None
    oracle = next(i for i in impls if i.spec == settings.oracle)
    return [i for i in impls if i.spec in settings.impls], oracle


class Oracle:
    """Runs cases on the oracle and judges targets' results against them.

    A difference is confirmed before it is reported: both sides run the case
    again, up to ``runs`` times each, and a section differs only when no run of
    the target matches any run of the oracle.  A race that the case leaves open
    (a client gone before ``finish()`` sends to it, on either side) is then not
    a finding, while a bug that shows every time is.  Oracle runs are kept for
    the run, so every target (and the oracle's own row) reuses them.
    """

    def __init__(
        self,
        impl: Implementation,
        new_worker: Callable[[str], Worker],
        unsupported: Callable[[Implementation, CaseRef], str],
        runs: int = CONFIRM_RUNS,
    ) -> None:
        self.impl = impl
        self.spec = impl.spec
        self.confirm_runs = runs
        self._new_worker = new_worker
        self._unsupported = unsupported
        self._lock = threading.Lock()
        self._results: dict[str, list[CaseResult]] = {}
        self._case_locks: dict[str, threading.Lock] = {}
        self._workers: dict[int, Worker] = {}
        self.runs = 0  # how many cases the oracle ran (the cost of --oracle)

    def result(self, slot: int, case: CaseRef, index: int = 0) -> CaseResult:
        """The oracle's ``index``-th run of ``case``: kept from before, or run now in ``slot``."""
        with self._lock:
            lock = self._case_locks.setdefault(case.id, threading.Lock())
        with lock:  # one slot runs it; another wanting the same run waits for it
            done = self._results.setdefault(case.id, [])
            while len(done) <= index:
                done.append(self._run(slot, case))
            return done[index]

    def _run(self, slot: int, case: CaseRef) -> CaseResult:
        why = self._unsupported(self.impl, case)
        if why:
            return case.record(self.spec, Verdict.UNSUPPORTED, 0.0, reason=why)
        with self._lock:
            worker = self._workers.pop(slot, None)
        if worker is not None and not worker.alive():
            worker.close()
            worker = None
        try:
            if worker is None:
                worker = self._new_worker(self.spec)
            result, usable = worker.run(case)
        except LoadError as exc:
            return case.record(self.spec, Verdict.ERROR, 0.0, reason=str(exc))
        with self._lock:
            self.runs += 1
            if usable:
                self._workers[slot] = worker
                worker = None
        if worker is not None:
            worker.kill()
        return result

    def judge(
        self,
        slot: int,
        case: CaseRef,
        result: CaseResult,
        again: Callable[[], CaseResult] | None = None,
    ) -> CaseResult:
        """``result`` of a target compared with the oracle's; the observation dropped.

        ``again`` runs the target's case once more, to confirm a difference.
        """
        if result.impl == self.spec:
            return _without_observation(result)
        target = result.evidence.get(OBSERVATION)
        if result.verdict in NOT_COMPARED or not isinstance(target, dict):
            return _noted(
                result, self.spec, f"not compared: the target's verdict is {result.verdict.value}"
            )
        oracle = self.result(slot, case)
        reference = oracle.evidence.get(OBSERVATION)
        if oracle.verdict in NOT_COMPARED + NO_REFERENCE or not isinstance(reference, dict):
            why = oracle.reason or oracle.verdict.value
            return _noted(
                result,
                self.spec,
                f"not compared: the oracle's verdict is {oracle.verdict.value} ({why})",
            )
        targets, oracles = [target], [reference]
        differing = first = _differing(oracles, targets)
        while differing and len(targets) < self.confirm_runs:
            extra = self.result(slot, case, len(oracles)).evidence.get(OBSERVATION)
            oracles += [extra] if isinstance(extra, dict) else []
            rerun = again() if again is not None else None
            seen = None if rerun is None else rerun.evidence.get(OBSERVATION)
            if not isinstance(seen, dict):
                break
            targets.append(seen)
            differing = _differing(oracles, targets)
        runs = f"{len(targets)} run(s) of the target, {len(oracles)} of the oracle"
        diffs = [
            f for f in findings(self.spec, reference, target) if f.evidence["section"] in differing
        ]
        if not diffs:
            outcome = "same"
            if first:
                where = ", ".join(sorted(first))
                outcome = f"same (a first difference in {where} did not repeat: {runs})"
            return _noted(result, self.spec, outcome)
        diffs = [replace(f, evidence={**f.evidence, "runs": runs}) for f in diffs]
        verdict = Verdict.FAIL if result.verdict is Verdict.PASS else result.verdict
        reason = result.reason or f"differs from the oracle {self.spec}: {summary(diffs)}"
        result = replace(
            result, verdict=verdict, findings=(*result.findings, *diffs), reason=reason
        )
        return _noted(result, self.spec, f"differs: {summary(diffs)} ({runs})")

    def close(self) -> None:
        """Stop the oracle's workers."""
        with self._lock:
            workers, self._workers = list(self._workers.values()), {}
        for worker in workers:
            worker.close()

    def kill(self) -> None:
        """Kill the oracle's workers at once (the run was stopped)."""
        with self._lock:
            workers = list(self._workers.values())
        for worker in workers:
            worker.kill()


def _differing(oracles: Sequence[dict[str, Any]], targets: Sequence[dict[str, Any]]) -> set[str]:
    """Sections in which no run of the target matches any run of the oracle."""
    out: set[str] = set()
    for name in SECTIONS:
        if all(section(o, name) != section(t, name) for o in oracles for t in targets):
            out.add(name)
    return out


def _without_observation(result: CaseResult) -> CaseResult:
    evidence: dict[str, Any] = {k: v for k, v in result.evidence.items() if k != OBSERVATION}
    return replace(result, evidence=evidence)


def _noted(result: CaseResult, spec: str, outcome: str) -> CaseResult:
    result = _without_observation(result)
    evidence = {**result.evidence, "oracle": {"spec": spec, "outcome": outcome}}
    return replace(result, evidence=evidence)
