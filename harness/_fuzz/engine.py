"""Hypothesis inside a scenario: budgets, seeds, one clean world per example, reports.

A fuzz case is an ordinary scenario whose body hands a
``RuleBasedStateMachine`` to ``FuzzRun.run``.  The run is fixed before the
first example: Hypothesis is seeded from the case's seed (``@seed`` on the
machine factory, no example database), and the budget becomes a number of
examples through a per-case cost estimate (``plan``).  So one seed and one
budget name exactly one sequence of examples, and the replay command —
``python -m harness run --impl … --select '<case>' --seed <run seed>`` (plus
``--fuzz-budget`` when one was given) — repeats the run and finds the same
failure in the same example; shrinking is deterministic too, unless it hits
its time limit (the evidence then says so).  Hypothesis also draws a few
integers from constants in the local modules loaded; a CLI worker loads the
same modules whatever else it ran, so its replays see the same pool.  A
wall-clock limit (``WALL_FACTOR`` × budget, stretched by the host's load)
stops generation early on a machine too slow for the estimate; the summary
line says so.

Each example gets a fresh sub-context (``Example``); the machine runs every
step through ``Example.step``.  A falsifying example, once shrunk, becomes
findings on the case's context with check id ``fuzz.<check>`` and evidence
``transcript`` (the minimal steps as readable lines) and ``replay``.
"""

from __future__ import annotations

import math
import re
import shlex
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from hypothesis import HealthCheck, Phase, Verbosity, seed, settings
from hypothesis.control import current_build_context
from hypothesis.stateful import RuleBasedStateMachine, run_state_machine_as_test

from harness._fuzz.example import Abandon, Example, FuzzFailure
from harness._runtime.context import bookkeeping
from harness._runtime.load import load_allowance

if TYPE_CHECKING:
    from harness._runtime.context import Context

#: Generation stops (without failing) once this many budgets have passed ...
WALL_FACTOR = 3.0
#: ... times the host's load per CPU, up to this many times: on a loaded machine (CI
#: running several suites side by side) every example takes longer, and a limit in
#: plain seconds would cut the planned examples short, so that whether a bug found in
#: a late example is found would depend on the load, not on the seed and the budget.
MAX_LOAD_ALLOWANCE = 4.0
#: Seconds kept free before the case deadline for shrinking and teardown.
RESERVE = 20.0
#: After a failure, shrinking may take this many budgets (at least SHRINK_MIN seconds).
SHRINK_FACTOR = 4.0
SHRINK_MIN = 20.0
#: ... and stops once the smallest failing example has not shrunk for this long.
SHRINK_STALL = 10.0
#: The same two limits for an implementation that already showed a repeated symptom
#: (a known hang or serve-thread death, ``_model.phases``): it is broken in a way
#: every case shows, and its failing examples each wait out timeouts, so a long
#: shrink costs a lot and tells little.
SHRINK_MIN_KNOWN = 3.0
SHRINK_STALL_KNOWN = 1.5

#: The failed checks each implementation's fuzz cases already shrank in this worker:
#: a later case failing the same way shrinks within the ``_KNOWN`` limits (a repeated
#: symptom costs once; its first case's transcript is the small one).
_shrunk: dict[str, set[str]] = {}


class _Interrupt(KeyboardInterrupt):
    """Stop Hypothesis between examples.

    Hypothesis lets a ``KeyboardInterrupt`` through without recording the
    example it interrupted; any other exception would be recorded, and an
    example that ends before its first draw would then look like flaky data
    generation.  Never leaves ``FuzzRun.run``.
    """


class _BudgetSpent(_Interrupt):
    """The wall-clock limit passed before any failure: stop generating."""


class _ShrinkSpent(_Interrupt):
    """Shrinking ran out of time: report the smallest failing example seen so far."""


class _CaseEnded(_Interrupt):
    """The executor ended the case (a dead server, a hang): its verdict is known."""


@dataclass(frozen=True)
class FuzzPlan:
    """How much one fuzz case does, fixed before its first example."""

    budget: float  # seconds asked for (``--fuzz-budget`` or the case's default)
    examples: int  # Hypothesis max_examples
    steps: int  # stateful_step_count: steps per example at most
    wall_limit: float  # seconds after which no new example starts
    inputs: int | None = None  # stop after this many generated inputs (payload soak)


def plan(
    ctx: Context, default_budget: float, example_cost: float, steps: int, inputs: int | None = None
) -> FuzzPlan:
    """The plan for ``ctx``: ``--fuzz-budget`` (or ``default_budget``) seconds at an
    estimated ``example_cost`` seconds per example; ``inputs`` fixes the step count
    instead (the examples then come from it)."""
    budget = ctx.options.fuzz_budget or default_budget
    if budget <= 0:
        raise ValueError(f"fuzz budget must be positive, got {budget!r} seconds")
    if inputs is not None:
        examples = math.ceil(inputs / steps) * 2 + 10  # the run stops at ``inputs``
        wall = ctx.time_left() - RESERVE
    else:
        examples = max(3, round(budget / example_cost))
        allowed = (budget * WALL_FACTOR + 2.0) * load_allowance(MAX_LOAD_ALLOWANCE)
        wall = min(allowed, ctx.time_left() - RESERVE)
    return FuzzPlan(budget, examples, steps, max(1.0, wall), inputs)


@dataclass(frozen=True)
class FuzzStats:
    """What a fuzz run did."""

    examples: int
    steps: int
    inputs: int  # generated inputs sent (payload runs; 0 for stateful ones)
    seconds: float
    stopped_early: bool
    failed_at: int | None  # example index of the first failure
    found_after: float | None  # seconds from the start to the first failure

    @property
    def steps_per_second(self) -> float:
        """Steps run per second of the whole run."""
        return self.steps / self.seconds if self.seconds > 0 else 0.0

    def to_json(self, fuzz_plan: FuzzPlan) -> dict[str, Any]:
        """The figures kept as the case's evidence (``notes.fuzz``)."""
        return {
            "budget_s": fuzz_plan.budget,
            "max_examples": fuzz_plan.examples,
            "examples": self.examples,
            "steps": self.steps,
            "inputs": self.inputs,
            "seconds": round(self.seconds, 3),
            "steps_per_s": round(self.steps_per_second, 1),
            "stopped_early": self.stopped_early,
            "failed_at": self.failed_at,
            "found_after_s": None if self.found_after is None else round(self.found_after, 3),
        }

    def summary(self) -> str:
        """One line for the case's output."""
        text = (
            f"fuzz: {self.examples} examples, {self.steps} steps in {self.seconds:.2f}s "
            f"({self.steps_per_second:.0f} steps/s)"
        )
        if self.inputs:
            text += f"; {self.inputs} inputs ({self.inputs / max(self.seconds, 1e-9):.0f}/s)"
        if self.failed_at is not None:
            text += f"; first failure in example {self.failed_at} after {self.found_after:.2f}s"
        if self.stopped_early:
            text += "; stopped early at the wall-clock limit"
        return text


class FuzzRun:
    """Runs one fuzz case's state machine and reports what it found."""

    def __init__(self, ctx: Context, fuzz_plan: FuzzPlan) -> None:
        self.ctx = ctx
        self.plan = fuzz_plan
        self.started = time.monotonic()
        self.examples = 0
        self.steps = 0
        self.inputs = 0
        self.failed_at: int | None = None
        self.found_after: float | None = None
        self.stopped_early = False
        self.smallest: FuzzFailure | None = None  # while shrinking: the best so far
        self.improved = 0.0  # seconds from the start when ``smallest`` last got smaller
        self._current: Example | None = None

    # -- called by the machine ------------------------------------------------
    def example(self) -> Example:
        """A fresh world for the next example (from the machine's ``__init__``)."""
        self._account()
        if bookkeeping(self.ctx).ended.is_set():
            raise _CaseEnded()
        now = time.monotonic() - self.started
        if self.failed_at is None:
            done = self.plan.inputs is not None and self.inputs >= self.plan.inputs
            if done or now > self.plan.wall_limit:
                self.stopped_early = not done
                raise _BudgetSpent()
        elif now > self._shrink_limit() and not current_build_context().is_final:
            raise _ShrinkSpent()
        self.examples += 1
        self._current = Example(self.ctx, self.examples)
        return self._current

    def _account(self) -> None:
        previous, self._current = self._current, None
        if previous is None:
            return
        self.steps += previous.steps
        self.inputs += previous.inputs
        failure = previous.failure
        if failure is not None and (self.smallest is None or _size(failure) < _size(self.smallest)):
            self.smallest, self.improved = failure, time.monotonic() - self.started
        if previous.failed_time is not None and self.failed_at is None:
            self.failed_at = previous.index
            self.found_after = previous.failed_time - self.started

    def _shrink_limit(self) -> float:
        """Seconds from the start after which shrinking stops: it has run long, or the
        smallest failing example has not become smaller for a while."""
        known = self._brief_shrink() != ""
        spare = max(SHRINK_MIN_KNOWN if known else SHRINK_MIN, SHRINK_FACTOR * self.plan.budget)
        stalled = max(SHRINK_STALL_KNOWN if known else SHRINK_STALL, self.plan.budget / 10)
        case_end = self.ctx.deadline - self.started - RESERVE / 2
        return min((self.found_after or 0.0) + spare, self.improved + stalled, case_end)

    def _brief_shrink(self) -> str:
        """Why shrinking gets the ``_KNOWN`` limits ("": it does not): the implementation
        showed a repeated symptom, or an earlier case of it already shrank a failure of
        the same checks as the smallest one found here.  Never with phase deadlines off."""
        if not self.ctx.clock.enabled:
            return ""
        if self.ctx.clock.known:
            return "a repeated symptom"
        if self.smallest is None:
            return ""
        checks = {finding.check for finding in self.smallest.findings}
        return "same checks" if checks <= _shrunk.get(self.ctx.impl.spec, set()) else ""

    # -- the run ----------------------------------------------------------------
    def run(self, machine: Callable[[FuzzRun], RuleBasedStateMachine]) -> FuzzStats:
        """Run ``machine`` under Hypothesis; findings land on the case's context."""

        def factory() -> RuleBasedStateMachine:
            return machine(self)

        seed(self.ctx.seed)(factory)
        try:
            # Any factory will do (as documented); the annotation only names classes.
            factory_type = cast("type[RuleBasedStateMachine]", factory)
            run_state_machine_as_test(factory_type, settings=self._settings())
        except (_BudgetSpent, _CaseEnded):
            pass
        except _ShrinkSpent:
            self._account()
            if self.smallest is not None:
                note = "shrinking stopped at its time limit"
                if self._brief_shrink() == "same checks":
                    note += (
                        f" ({SHRINK_MIN_KNOWN:g}s, or {SHRINK_STALL_KNOWN:g}s without a smaller "
                        "example: an earlier case of this implementation already shrank a "
                        "failure of the same checks)"
                    )
                self._report(self.smallest, note=note)
        except Abandon as exc:
            self._abandon(exc)
        except FuzzFailure as exc:
            self._report(exc)
        except Exception as exc:
            self._account()
            found = [e for e in getattr(exc, "exceptions", ()) if isinstance(e, FuzzFailure)]
            failure = found[0] if found else self.smallest
            if failure is None:
                raise
            self._report(failure, note=f"flaky: {type(exc).__name__}: {str(exc)[:300]}")
        self._account()
        stats = FuzzStats(
            self.examples,
            self.steps,
            self.inputs,
            time.monotonic() - self.started,
            self.stopped_early,
            self.failed_at,
            self.found_after,
        )
        print(stats.summary(), flush=True)
        self.ctx.note("fuzz", stats.to_json(self.plan))
        return stats

    def _settings(self) -> settings:
        return settings(
            max_examples=self.plan.examples,
            stateful_step_count=self.plan.steps,
            deadline=None,
            database=None,
            derandomize=False,
            phases=(Phase.explicit, Phase.generate, Phase.shrink),
            suppress_health_check=list(HealthCheck),
            report_multiple_bugs=False,
            print_blob=True,
            verbosity=Verbosity.quiet,
        )

    # -- reporting --------------------------------------------------------------
    def replay(self) -> str:
        """The command that repeats this run exactly."""
        ctx = self.ctx
        words = [
            "python -m harness run",
            f"--impl {shlex.quote(ctx.impl.spec)}",
            f"--select {shlex.quote(ctx.case.id)}",
            f"--seed {ctx.base_seed}",
            f"--profile {ctx.case.profile}",
        ]
        if ctx.options.fuzz_budget is not None:
            words.append(f"--fuzz-budget {ctx.options.fuzz_budget:g}")
        if ctx.scale != 1.0:
            words.insert(0, f"SOCKSPEC_DEADLINE_SCALE={ctx.scale:g}")
        return " ".join(words)

    def _evidence(self, lines: list[str], error: BaseException) -> dict[str, Any]:
        evidence: dict[str, Any] = {
            "transcript": "\n".join(lines),
            "replay": self.replay(),
            "steps": sum(1 for line in lines if line[:3].strip().isdigit()),
            "found_in_example": self.failed_at,
            "found_after_s": None if self.found_after is None else round(self.found_after, 3),
            "examples_run": self.examples,
            "seed": self.ctx.seed,
        }
        blob = _reproduce_blob(error)
        if blob:
            evidence["hypothesis"] = blob
        return evidence

    def _report(self, failure: FuzzFailure, note: str = "") -> None:
        checks = _shrunk.setdefault(self.ctx.impl.spec, set())
        checks.update(finding.check for finding in failure.findings)
        evidence = self._evidence(failure.lines, failure)
        if note:
            evidence["note"] = note
        for finding in failure.findings:
            extra = dict(finding.evidence)
            if "transcript" in extra:  # a check's lifecycle transcript of one connection
                extra["lifecycle"] = extra.pop("transcript")
            self.ctx.fail(
                f"fuzz.{finding.check}",
                finding.message,
                expected=finding.expected,
                observed=finding.observed,
                conn=finding.conn,
                **{**extra, **evidence},
            )

    def _abandon(self, abandon: Abandon) -> None:
        self._account()
        if self.smallest is not None:  # a hang while shrinking: keep what was found
            self._report(self.smallest, note="shrinking stopped by the hang below")
        self.ctx.fail(
            "fuzz.abandoned",
            f"fuzzing stopped without shrinking: {abandon.error}",
            expected="every step completes",
            observed=f"{type(abandon.error).__name__}: {abandon.error}",
            **self._evidence(abandon.lines, abandon),
        )
        raise abandon.error


def _reproduce_blob(error: BaseException) -> str | None:
    """Hypothesis' ``@reproduce_failure(...)`` line from the error's notes, if any."""
    for note in getattr(error, "__notes__", ()):
        found = re.search(r"@reproduce_failure\([^)]*\)", str(note))
        if found:
            return found.group(0)
    return None


def _size(failure: FuzzFailure) -> tuple[int, int]:
    """How big a failing example is: its steps, then its transcript's length."""
    return len(failure.lines), sum(len(line) for line in failure.lines)
