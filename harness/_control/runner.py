"""The run: implementations × cases, spread over supervised workers.

The controller loads every implementation first (so a bad spec ends the run
before any case, with exit status 2), decides ``unsupported`` cases itself
from the probed features, and hands the rest to ``jobs`` worker slots.  Each
finished case is streamed to ``results.jsonl`` at once; ``results.json`` is
written at the end — also after Ctrl-C, then marked partial.
"""

from __future__ import annotations

import queue
import shlex
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from types import ModuleType
from typing import Protocol

from harness._control.agents import parse_spec
from harness._control.expectations import apply_expectations, load_expectations
from harness._control.spare import SpareWorkers
from harness._control.supervisor import Worker
from harness._control.symptoms import Symptoms
from harness._execution.discovery import discover, select_cases
from harness._execution.execute import case_seed, unsupported_reason
from harness._model.errors import LoadError, UsageError
from harness._model.implementation import Implementation
from harness._model.records import CaseResult, Verdict
from harness._model.scenario import Case
from harness._model.settings import Settings
from harness._report.results import RunInfo, append_line, now, write_results
from harness._runtime.loading import load_implementation
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
    """What a run produced."""

    results: tuple[CaseResult, ...]
    report_dir: Path
    exit_status: int
    partial: bool


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


def plan_run(settings: Settings) -> tuple[list[Implementation], list[Case]]:
    """Load the implementations and select the cases; raises the errors of exit 2."""
    impls = [_load(spec, settings) for spec in settings.impls]
    specs = discover(settings.scenario_dirs)
    cases = select_cases(specs, settings.select, settings.profile)
    if not cases:
        wanted = ", ".join(settings.select) or "(all)"
        raise UsageError(f"no case matches --select {wanted} in profile {settings.profile!r}")
    return impls, cases


def _load(spec: str, settings: Settings) -> Implementation:
    """Load in-process, or probe an out-of-process implementation through a worker."""
    parsed = parse_spec(spec)
    if parsed.in_process:
        return load_implementation(spec)
    worker = Worker(spec, settings.case_options(), [str(d) for d in settings.scenario_dirs])
    try:
        return Implementation(spec, ModuleType(f"<{spec} in a worker>"), worker.features)
    finally:
        worker.close()


def run(
    settings: Settings, argv: Sequence[str] = (), progress: Progress | None = None
) -> RunOutcome:
    """Run every selected case against every implementation and write results.json."""
    started = now()
    impls, cases = plan_run(settings)
    expectations = load_expectations(settings.expect_files)
    report_dir = settings.report_dir or default_report_dir()
    report_dir.mkdir(parents=True, exist_ok=True)
    work: list[tuple[Implementation, Case]] = [(i, c) for i in impls for c in cases]
    if progress:
        progress.start(len(work))
    results: list[CaseResult] = []
    lock = threading.Lock()

    def record(result: CaseResult) -> None:
        with lock:
            results.append(result)
            append_line(report_dir, result)
        if progress:
            progress.case_done(result)

    partial = False
    try:
        _Pool(settings, record, report_dir).run(work)
    except KeyboardInterrupt:
        partial = True
    order = {(i.spec, c.id): n for n, (i, c) in enumerate(work)}
    results.sort(key=lambda r: order.get((r.impl, r.id), 0))
    results = apply_expectations(results, expectations)
    status = exit_status(results, settings.strict)
    if partial:
        status = max(status, EXIT_FAILED)
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
        implementations=tuple(
            {
                "spec": i.spec,
                "features": sorted(i.features),
                "file": getattr(i.module, "__file__", None),
            }
            for i in impls
        ),
    )
    write_results(report_dir, info, results)
    _point_latest(report_dir)
    # A worker killed on a hang skips its atexit cleanup: sweep firewall tables it left.
    remove_stale_tables()
    return RunOutcome(tuple(results), report_dir, status, partial)


class _Pool:
    """``jobs`` worker slots draining one queue of (implementation, case) pairs.

    On Ctrl-C the pool kills every worker at once; the cases they were running
    are dropped (not judged), and the run is marked partial.
    """

    def __init__(
        self, settings: Settings, record: Callable[[CaseResult], None], report_dir: Path
    ) -> None:
        self.settings = settings
        self.report_dir = report_dir
        self.record = record
        self.pending: queue.Queue[tuple[Implementation, Case]] = queue.Queue()
        self.stop = threading.Event()
        self._active: dict[int, Worker] = {}
        self._lock = threading.Lock()
        self.symptoms = Symptoms()
        self.spares = SpareWorkers(self._new_worker)

    def run(self, work: list[tuple[Implementation, Case]]) -> None:
        """Run all ``work``; re-raises KeyboardInterrupt after stopping the workers."""
        for item in work:
            self.pending.put(item)
        count = max(1, min(self.settings.jobs, len(work)))
        slots = [
            threading.Thread(target=self._slot, args=(n,), name=f"sockspec-slot{n}", daemon=True)
            for n in range(count)
        ]
        for slot in slots:
            slot.start()
        try:
            while any(s.is_alive() for s in slots):
                for slot in slots:
                    slot.join(0.2)
            self.spares.close()
        except KeyboardInterrupt:
            self.spares.close()
            self.stop.set()
            with self._lock:
                workers = list(self._active.values())
            for worker in workers:
                worker.kill()
            for slot in slots:
                slot.join(10.0)
            raise

    def _slot(self, n: int) -> None:
        worker: Worker | None = None
        try:
            while not self.stop.is_set():
                try:
                    impl, case = self.pending.get_nowait()
                except queue.Empty:
                    return
                worker, result = self._one(n, worker, impl, case)
                if self.stop.is_set():
                    return  # interrupted: the case was not judged
                self.record(result)
        finally:
            if worker is not None:
                worker.close()

    def _one(
        self, n: int, worker: Worker | None, impl: Implementation, case: Case
    ) -> tuple[Worker | None, CaseResult]:
        started = time.monotonic()
        why = unsupported_reason(impl, case)
        if why:
            elapsed = time.monotonic() - started
            return worker, case.record(impl.spec, Verdict.UNSUPPORTED, elapsed, reason=why)
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
        worker = self.spares.take(spec)
        if worker is None:
            worker = self._new_worker(spec)
        elif not self.pending.empty():
            self.spares.prepare(spec)  # keep one ahead while this one runs
        with self._lock:
            self._active[n] = worker
        return worker

    def _new_worker(self, spec: str) -> Worker:
        s = self.settings
        options = s.case_options(self.report_dir)
        return Worker(spec, options, [str(d) for d in s.scenario_dirs])


def replay_line(settings: Settings, impl: str, case: Case) -> str:
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


def _with_replay(result: CaseResult, settings: Settings, case: Case) -> CaseResult:
    evidence = {
        **result.evidence,
        "base_seed": settings.seed,
        "replay": replay_line(settings, result.impl, case),
    }
    seed = result.seed or case_seed(settings.seed, case.id)
    return replace(result, evidence=evidence, seed=seed)


def _point_latest(report_dir: Path) -> None:
    """Make ``<parent>/latest`` a symlink to the newest report directory."""
    link = report_dir.parent / "latest"
    try:
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(report_dir.name)
    except OSError:
        pass
