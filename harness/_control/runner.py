"""The run: implementations × cases, spread over supervised workers.

The controller never imports implementations or scenarios: each
implementation's first worker loads it before any case, and the first of them
also discovers the scenarios (so a bad spec ends the run before any case, with
exit status 2); the controller decides ``unsupported`` cases itself from the
probed features, and hands the rest to ``jobs`` worker slots.  Each finished
case is streamed to ``results.jsonl`` at once; ``results.json`` is written at
the end, however the run ends:

* Ctrl-C, SIGTERM or SIGHUP stop the workers and mark the run partial; the
  exit status is 128 + the signal's number (130, 143, 129);
* an internal error while recording a result or showing progress (a report
  directory that became unwritable, a closed pipe) stops the run the same
  way, partial, with exit status 2.

A partial run never exits 0.  At the end the stream is sealed as
``results.jsonl.gz`` (see ``harness._report.results``).
"""

from __future__ import annotations

import shlex
import signal
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from types import FrameType, ModuleType
from typing import Any, Protocol

from harness._control.agents import parse_spec
from harness._control.expectations import apply_expectations, load_expectations
from harness._control.oracle import Oracle, split_oracle, with_oracle
from harness._control.probing import probe, read_plan
from harness._control.schedule import CaseQueue, cheap_first
from harness._control.spare import SpareWorkers
from harness._control.supervisor import Worker
from harness._control.symptoms import Symptoms
from harness._model.errors import LoadError, UsageError, one_line
from harness._model.implementation import Implementation
from harness._model.plan import CaseRef, case_seed
from harness._model.records import CaseResult, Verdict
from harness._model.settings import CaseOptions, Settings
from harness._model.variants import host_supports, judged_families
from harness._report.reportdir import check_report_dir, point_latest, prepare_report_dir
from harness._report.results import RunInfo, append_line, now, write_results
from harness._wire.crafted import remove_stale_tables

EXIT_OK, EXIT_FAILED, EXIT_UNUSABLE = 0, 1, 2


class Progress(Protocol):
    """Receives progress of a run (the CLI shows it; tests may record it)."""

    def start(self, total: int) -> None:
        """Called once with the number of cases to run."""

    def case_done(self, result: CaseResult) -> None:
        """Called when a case has a verdict."""


@dataclass(frozen=True)
class RunOutcome:
    """What a run produced; ``stopped_by`` says why a partial run stopped."""

    results: tuple[CaseResult, ...]
    report_dir: Path
    exit_status: int
    partial: bool
    stopped_by: str = ""


class Stopped(KeyboardInterrupt):
    """The run was told to stop by a signal (handled like Ctrl-C)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


#: Signals that stop a run the way Ctrl-C does.
STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


def exit_status(results: Sequence[CaseResult], strict: bool = False) -> int:
    """0 all must-cases pass; 1 a must-case failed, hung or crashed (or, with
    ``strict``, passed against expectations); 2 a case errored."""
    if any(r.verdict is Verdict.ERROR for r in results):
        return EXIT_UNUSABLE
    if any(r.counts_as_failure for r in results):
        return EXIT_FAILED
    if strict and any(r.verdict is Verdict.XPASS for r in results):
        return EXIT_FAILED
    return EXIT_OK


def default_report_dir(base: Path = Path("reports"), prefix: str = "") -> Path:
    """A new timestamped folder under ``reports/`` (``<prefix><stamp>``)."""
    stamp = prefix + datetime.now().strftime("%Y%m%d-%H%M%S")
    path = base / stamp
    n = 1
    while path.exists():
        n += 1
        path = base / f"{stamp}-{n}"
    return path


@dataclass(frozen=True)
class RunPlan:
    """What a run judges, and the first worker of each implementation, already started."""

    impls: list[Implementation]
    cases: list[CaseRef]
    workers: dict[str, Worker]


def plan_run(settings: Settings, options: CaseOptions) -> RunPlan:
    """Load the implementations and select the cases; raises the errors of exit 2.

    Each implementation is loaded, in order, by its first worker (kept for the run:
    starting it is most of what loading costs).  The first that the controller's
    interpreter can load also discovers the scenarios and selects the cases, which
    saves the run a probe process; with none, a probe process does that alone.
    """
    workers: dict[str, Worker] = {}
    answer: dict[str, Any] | None = None
    request = {"select": list(settings.select), "profile": settings.profile}
    try:
        for spec in settings.impls:
            if spec in workers:
                continue
            asks = answer is None and parse_spec(spec).in_process
            worker = Worker(
                spec,
                options,
                [str(d) for d in settings.scenario_dirs],
                settings.load_timeout,
                plan=request if asks else None,
            )
            workers[spec] = worker
            answer = worker.plan if asks else answer
        if answer is None:
            plan = probe(
                (), settings.scenario_dirs, settings.select, settings.profile, settings.load_timeout
            )
        else:
            plan = read_plan(answer)
        if not plan.cases:
            wanted = ", ".join(settings.select) or "(all)"
            raise UsageError(f"no case matches --select {wanted} in profile {settings.profile!r}")
    except BaseException:
        _kill_all(workers)
        raise
    impls = [_loaded(spec, workers[spec]) for spec in settings.impls]
    return RunPlan(impls, list(plan.cases), workers)


def _kill_all(workers: dict[str, Worker]) -> None:
    """Kill the first workers of a run that ends before its pool takes them."""
    for worker in workers.values():
        worker.kill()


def _loaded(spec: str, worker: Worker) -> Implementation:
    """The implementation as its worker loaded it (the module stays in the worker)."""
    module = ModuleType(f"<{spec} in a worker>")
    module.__file__ = worker.file
    return Implementation(spec, module, worker.features)


def unsupported_reason(impl: Implementation, case: CaseRef) -> str:
    """Why ``case`` cannot run on ``impl`` here (missing feature or host support), or ""."""
    missing = impl.missing(case.spec.requires)
    if missing:
        return f"implementation {impl.spec!r} lacks {', '.join(missing)}"
    return host_supports(case.transport, case.kind) or ""


def run(
    settings: Settings, argv: Sequence[str] = (), progress: Progress | None = None
) -> RunOutcome:
    """Run every selected case against every implementation and write results.json."""
    started = now()
    report_dir = settings.report_dir or default_report_dir()
    check_report_dir(report_dir)
    expectations = load_expectations(settings.expect_files)
    planned = plan_run(with_oracle(settings), settings.case_options(report_dir))
    impls, cases = planned.impls, planned.cases
    impls, oracle = split_oracle(settings, impls)
    try:
        prepare_report_dir(report_dir)
    except BaseException:
        _kill_all(planned.workers)
        raise
    work: list[tuple[Implementation, CaseRef]] = [(i, c) for i in impls for c in cases]
    results: list[CaseResult] = []
    lock = threading.Lock()

    def record(result: CaseResult) -> None:
        with lock:
            results.append(result)
            append_line(report_dir, result)
            if progress:
                # Shown as it will be judged: an expected failure is an xfail already.
                progress.case_done(apply_expectations([result], expectations)[0])

    stopped_by, status_floor = "", EXIT_OK
    pool = _Pool(settings, record, report_dir, oracle, planned.workers)
    with _stop_signals() as stopping:
        try:
            if progress:
                progress.start(len(work))
                _note_families(progress, impls)
            failure = pool.run(work)
            if failure is not None:
                stopped_by, status_floor = f"internal error: {one_line(failure)}", EXIT_UNUSABLE
        except Stopped as exc:
            stopped_by, status_floor = f"signal {exc}", 128 + exc.signum
        except KeyboardInterrupt:
            stopped_by, status_floor = "signal SIGINT", 128 + signal.SIGINT
        except Exception as exc:  # progress.start failed: nothing ran
            stopped_by, status_floor = f"internal error: {one_line(exc)}", EXIT_UNUSABLE
        finally:
            pool.close_unused()  # a stop before the pool ran leaves the first workers
        stopping.set()  # from here on the results are being written: a signal is ignored
        partial = bool(stopped_by)
        order = {(i.spec, c.id): n for n, (i, c) in enumerate(work)}
        results.sort(key=lambda r: order.get((r.impl, r.id), 0))
        results = apply_expectations(results, expectations)
        status = exit_status(results, settings.strict)
        if partial:
            status = status_floor
        info = RunInfo(
            started=started,
            finished=now(),
            argv=tuple(argv),
            profile=settings.profile,
            select=settings.select,
            seed=settings.seed,
            jobs=settings.jobs,
            partial=partial,
            exit_status=status,
            implementations=tuple(_impl_record(i) for i in impls),
            extra={
                **({"stopped_by": stopped_by} if partial else {}),
                **({"oracle": oracle.spec} if oracle else {}),
            },
        )
        write_results(report_dir, info, results)
        point_latest(report_dir)
        # A worker killed on a hang skips its atexit cleanup: sweep firewall tables it left.
        remove_stale_tables()
    return RunOutcome(tuple(results), report_dir, status, partial, stopped_by)


def _impl_record(impl: Implementation) -> dict[str, Any]:
    """An implementation as results.json lists it."""
    file = getattr(impl.module, "__file__", None)
    return {
        "spec": impl.spec,
        "features": sorted(impl.features),
        "judged": judged_families(impl),
        "file": file,
    }


def _note_families(progress: Progress, impls: Sequence[Implementation]) -> None:
    """Say in one line per implementation which transport families are judged."""
    note = getattr(progress, "note", None)  # optional: recording progresses may lack it
    if note is not None:
        for impl in impls:
            note(judged_families(impl))


@contextmanager
def _stop_signals() -> Iterator[threading.Event]:
    """SIGTERM and SIGHUP stop the run like Ctrl-C while it runs.

    Once the yielded event is set (the first stop, or the cases are done) further
    signals are ignored until the results are written: they must be whole.
    """
    stopping = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield stopping
        return

    def stop(signum: int, frame: FrameType | None) -> None:
        if not stopping.is_set():
            stopping.set()
            raise Stopped(signum)

    def interrupt(signum: int, frame: FrameType | None) -> None:
        if not stopping.is_set():
            stopping.set()
            raise KeyboardInterrupt

    previous: dict[int, Any] = {}
    for signum in STOP_SIGNALS:
        previous[signum] = signal.signal(signum, stop)
    sigint = signal.getsignal(signal.SIGINT)
    if sigint is signal.default_int_handler:  # not when SIGINT is ignored (background jobs)
        previous[signal.SIGINT] = signal.signal(signal.SIGINT, interrupt)
    try:
        yield stopping
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


class _Pool:
    """``jobs`` worker slots draining one queue of (implementation, case) pairs
    (``CaseQueue``: siblings of a case in progress wait while other work is pending).

    On Ctrl-C (or a stop signal) the pool kills every worker at once; the cases
    they were running are dropped (not judged), and the run is marked partial.
    An exception while recording a result stops the pool the same way and is
    returned by ``run``.
    """

    def __init__(
        self,
        settings: Settings,
        record: Callable[[CaseResult], None],
        report_dir: Path,
        oracle: Implementation | None = None,
        first: dict[str, Worker] | None = None,
    ) -> None:
        self.settings = settings
        self.report_dir = report_dir
        self.record = record
        self.pending = CaseQueue(())
        self.stop = threading.Event()
        self.failure: BaseException | None = None
        self._active: dict[int, Worker] = {}
        #: Workers whose process runs but which are not ready yet (a stop kills them too).
        self._starting: set[Worker] = set()
        self._lock = threading.Lock()
        self.symptoms = Symptoms()
        #: The workers that loaded each implementation for the plan, each used once.
        self._first = dict(first or {})
        self.spares = SpareWorkers(self._new_worker, depth=settings.jobs)
        self.oracle = Oracle(oracle, self._fresh_worker, unsupported_reason) if oracle else None

    def run(self, work: list[tuple[Implementation, CaseRef]]) -> BaseException | None:
        """Run all ``work``; returns the internal error that stopped it, if any.

        Re-raises KeyboardInterrupt (and ``Stopped``) after stopping the workers.
        """
        self.pending = CaseQueue(cheap_first(work))
        count = max(1, min(self.settings.jobs, len(work)))
        slots = [
            threading.Thread(target=self._slot, args=(n,), name=f"sockspec-slot{n}", daemon=True)
            for n in range(count)
        ]
        for slot in slots:
            slot.start()
        try:
            while any(s.is_alive() for s in slots) and not self.stop.is_set():
                for slot in slots:
                    slot.join(0.2)
            self.spares.close()
            if self.oracle:
                self.oracle.close()
        except KeyboardInterrupt:
            self._halt(slots)
            raise
        finally:
            self.close_unused()
        if self.stop.is_set():
            self._halt(slots)
        return self.failure

    def close_unused(self) -> None:
        """Kill the first workers no slot took (every case of theirs was unsupported,
        or the run stopped first)."""
        with self._lock:
            unused, self._first = list(self._first.values()), {}
        for worker in unused:
            worker.kill()

    def _halt(self, slots: list[threading.Thread]) -> None:
        """Stop: kill every worker, those still starting first (a start can take
        seconds on a loaded machine, and only ``kill`` removes a worker's directory)."""
        self.stop.set()
        self.close_unused()
        with self._lock:
            starting = list(self._starting)
        for worker in starting:
            worker.kill()
        self.spares.close()
        with self._lock:
            workers = list(self._active.values())
        for worker in workers:
            worker.kill()
        if self.oracle:
            self.oracle.kill()
        for slot in slots:
            slot.join(10.0)

    def _slot(self, n: int) -> None:
        worker: Worker | None = None
        try:
            while not self.stop.is_set():
                item = self.pending.take()
                if item is None:
                    return
                try:
                    worker, result = self._one(n, worker, *item)
                finally:
                    self.pending.done(item)
                if self.stop.is_set():
                    return  # interrupted: the case was not judged
                self.record(result)
        except Exception as exc:
            # After a stop, a killed worker's closed pipe is no news; before it,
            # an error here (recording, progress output) must end the run.
            if not self.stop.is_set():
                self.failure = exc
                self.stop.set()
        finally:
            if worker is not None:
                worker.close()

    def _one(
        self, n: int, worker: Worker | None, impl: Implementation, case: CaseRef
    ) -> tuple[Worker | None, CaseResult]:
        started = time.monotonic()
        why = unsupported_reason(impl, case)
        if why:
            elapsed = time.monotonic() - started
            return worker, case.record(impl.spec, Verdict.UNSUPPORTED, elapsed, reason=why)
        if self.oracle:  # --oracle: judged against the oracle's run of the case
            if impl.spec == self.oracle.spec:
                own = _with_replay(self.oracle.result(n, case), self.settings, case)
                return worker, self.oracle.judge(n, case, own)
            held = [worker]

            def again() -> CaseResult:  # the oracle confirms a difference on a second run
                held[0], outcome = self._one_target(n, held[0], impl, case)
                return outcome

            judged = self.oracle.judge(n, case, again(), again)
            return held[0], judged
        return self._one_target(n, worker, impl, case)

    def _one_target(
        self, n: int, worker: Worker | None, impl: Implementation, case: CaseRef
    ) -> tuple[Worker | None, CaseResult]:
        started = time.monotonic()
        if worker is not None and (worker.impl != impl.spec or not worker.alive()):
            worker.close()
            worker = None
        usable = False
        try:
            if worker is None:
                worker = self._start(n, impl.spec)
            known = self.symptoms.known(impl.spec) if self.settings.phase_deadlines else ()
            result, usable = worker.run(case, known)
            self.symptoms.record(result)
        except LoadError as exc:
            elapsed = time.monotonic() - started
            result = case.record(impl.spec, Verdict.ERROR, elapsed, reason=str(exc))
        result = _with_replay(result, self.settings, case)
        if not usable and worker is not None:
            worker.kill()
            worker = None
            if not self.pending.empty():
                self.spares.prepare(impl.spec)  # the replacement starts off the critical path
        return worker, result

    def _start(self, n: int, spec: str) -> Worker:
        worker = self._take_first(spec)
        if worker is None:
            worker = self.spares.take(spec)
            if worker is None:
                worker = self._new_worker(spec)
            elif not self.pending.empty():
                self.spares.prepare(spec)  # keep one ahead while this one runs
        with self._lock:
            self._active[n] = worker
        if self.stop.is_set():  # stopped while it started: _halt did not see it
            worker.kill()
        return worker

    def _take_first(self, spec: str) -> Worker | None:
        """The worker that loaded ``spec`` for the plan, if no slot took it yet."""
        with self._lock:
            worker = self._first.pop(spec, None)
        if worker is not None and not worker.alive():
            worker.kill()  # it died idle (code of its own, a thread that exits): start anew
            return None
        return worker

    def _fresh_worker(self, spec: str) -> Worker:
        """A worker for ``spec``: the plan's first, else a new one (the oracle's)."""
        return self._take_first(spec) or self._new_worker(spec)

    def _new_worker(self, spec: str) -> Worker:
        s = self.settings
        options = s.case_options(self.report_dir)
        held: list[Worker] = []

        def spawned(worker: Worker) -> None:
            held.append(worker)
            with self._lock:
                self._starting.add(worker)
                stopped = self.stop.is_set()
            if stopped:  # _halt has killed the workers it knew of: this one too
                worker.kill()
                raise LoadError("the run is stopping")

        try:
            return Worker(spec, options, [str(d) for d in s.scenario_dirs], s.load_timeout, spawned)
        finally:
            with self._lock:
                self._starting.difference_update(held)


def replay_line(settings: Settings, impl: str, case: CaseRef) -> str:
    """The one command that runs exactly ``case`` against ``impl`` again."""
    parts = [
        "python -m harness run",
        f"--impl {shlex.quote(impl)}",
        f"--select {shlex.quote(case.id)}",
    ]
    parts += [f"--seed {settings.seed}", f"--profile {case.profile}"]
    parts += [f"--scenarios {shlex.quote(str(d))}" for d in settings.scenario_dirs]
    if settings.fuzz_budget is not None:
        parts.append(f"--fuzz-budget {settings.fuzz_budget:g}")
    return " ".join(parts)


def _with_replay(result: CaseResult, settings: Settings, case: CaseRef) -> CaseResult:
    evidence = {
        **result.evidence,
        "base_seed": settings.seed,
        "replay": replay_line(settings, result.impl, case),
    }
    seed = result.seed or case_seed(settings.seed, case.id)
    return replace(result, evidence=evidence, seed=seed)
