"""``--oracle SPEC``: every case of the target judged against the same case on an oracle.

Each case is run on the oracle once, with the same case id and seed, in a
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

from harness._control.differ import findings, summary
from harness._control.supervisor import Worker
from harness._model.errors import LoadError
from harness._model.implementation import Implementation
from harness._model.plan import CaseRef
from harness._model.records import CaseResult, Verdict
from harness._model.settings import Settings

#: Verdicts of either side that leave nothing to compare.
NOT_COMPARED = (Verdict.UNSUPPORTED, Verdict.ERROR)
#: Oracle verdicts whose observation is no reference.
NO_REFERENCE = (Verdict.HANG, Verdict.CRASH)
OBSERVATION = "observation"


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
    """Runs cases on the oracle (once each) and judges targets' results against them."""

    def __init__(
        self,
        impl: Implementation,
        new_worker: Callable[[str], Worker],
        unsupported: Callable[[Implementation, CaseRef], str],
    ) -> None:
        self.impl = impl
        self.spec = impl.spec
        self._new_worker = new_worker
        self._unsupported = unsupported
        self._lock = threading.Lock()
        self._results: dict[str, CaseResult] = {}
        self._running: dict[str, threading.Event] = {}
        self._workers: dict[int, Worker] = {}
        self.runs = 0  # how many cases the oracle ran (the cost of --oracle)

    def result(self, slot: int, case: CaseRef) -> CaseResult:
        """The oracle's result of ``case``: from the run's cache, or run now in ``slot``."""
        with self._lock:
            done = self._results.get(case.id)
            if done is not None:
                return done
            running = self._running.get(case.id)
            if running is None:
                self._running[case.id] = threading.Event()
        if running is not None:  # another slot runs it: wait for that result
            running.wait()
            return self._results[case.id]
        try:
            result = self._run(slot, case)
        except BaseException:
            with self._lock:
                self._running.pop(case.id).set()
            raise
        with self._lock:
            self._results[case.id] = result
            self._running.pop(case.id).set()
        return result

    def _run(self, slot: int, case: CaseRef) -> CaseResult:
        why = self._unsupported(self.impl, case)
        if why:
            return case.record(self.spec, Verdict.UNSUPPORTED, 0.0, reason=why)
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
        self.runs += 1
        if usable:
            self._workers[slot] = worker
        else:
            worker.kill()
        return result

    def judge(self, slot: int, case: CaseRef, result: CaseResult) -> CaseResult:
        """``result`` of a target compared with the oracle's; the observation dropped."""
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
        diffs = findings(self.spec, reference, target)
        if not diffs:
            return _noted(result, self.spec, "same")
        verdict = Verdict.FAIL if result.verdict is Verdict.PASS else result.verdict
        reason = result.reason or f"differs from the oracle {self.spec}: {summary(diffs)}"
        result = replace(
            result, verdict=verdict, findings=(*result.findings, *diffs), reason=reason
        )
        return _noted(result, self.spec, f"differs: {summary(diffs)}")

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


def _without_observation(result: CaseResult) -> CaseResult:
    evidence: dict[str, Any] = {k: v for k, v in result.evidence.items() if k != OBSERVATION}
    return replace(result, evidence=evidence)


def _noted(result: CaseResult, spec: str, outcome: str) -> CaseResult:
    result = _without_observation(result)
    evidence = {**result.evidence, "oracle": {"spec": spec, "outcome": outcome}}
    return replace(result, evidence=evidence)
