"""Running one case in this process: set up, run, check, clean up, judge.

The executor is the same whether the case runs in a supervised worker, in
the pytest plugin or directly from a test.  It never lets an exception out:
every outcome becomes a ``CaseResult``.  When a case leaves this process in a
state it cannot repair (a thread stuck in the implementation), the outcome
says ``tainted`` and the supervisor retires the process.
"""

from __future__ import annotations

import shutil
import threading
import time
import traceback
from dataclasses import dataclass, replace
from typing import Any

from harness._execution.blame import green_hint, judge_exception
from harness._execution.evidence import bounded_evidence, bounded_findings
from harness._execution.postchecks import POST_CHECKS
from harness._execution.serving import observe_design, serving_checks
from harness._model.errors import Abort, Hang, ServeDied, Unsupported
from harness._model.implementation import Implementation
from harness._model.outcome import observe
from harness._model.phases import CASE_PHASE
from harness._model.plan import case_seed
from harness._model.records import CaseResult, Finding, LifecycleEvent, Verdict
from harness._model.scenario import Case
from harness._model.settings import CaseOptions
from harness._model.variants import TRANSPORTS, host_supports, server_class_name
from harness._runtime.context import Context, bookkeeping
from harness._runtime.eventlog import HARNESS_THREAD_PREFIX, MAX_EVENTS
from harness._runtime.resources import leak_findings, reap_and_kill, settle, take_snapshot
from harness._runtime.serverhandle import sockets_held
from harness._runtime.tempdirs import make_tempdir
from harness._runtime.wirelog import timeline
from harness._wire.capture import CaseCapture, case_slug

#: How long leftovers may take to wind down after teardown before they are leaks.
LEAK_GRACE = 2.0

#: Events an overflowed log keeps for the evidence (its first ones: how the loop began).
OVERFLOW_KEEP = 20_000


@dataclass(frozen=True)
class CaseOutcome:
    """A result plus whether this process can still be trusted with more cases."""

    result: CaseResult
    tainted: bool = False


def execute(impl: Implementation, case: Case, options: CaseOptions | None = None) -> CaseOutcome:
    """Run ``case`` against ``impl`` and judge it."""
    options = options or CaseOptions()
    started = time.monotonic()
    seed = case_seed(options.seed, case.id)
    reason = unsupported_reason(impl, case)
    if reason:
        return CaseOutcome(_result(impl, case, Verdict.UNSUPPORTED, started, seed, reason=reason))
    tmpdir = make_tempdir()  # mode 0700; listed for the supervisor to remove
    ctx = Context(impl, case, seed, tmpdir, options)
    capture = _attach_capture(ctx) if options.capture else None
    baseline = take_snapshot()
    try:
        verdict, reason, evidence, tainted = _run_and_check(ctx, baseline, capture)
    finally:
        ctx.log.close()
        shutil.rmtree(tmpdir, ignore_errors=True)
    if verdict is Verdict.PASS and ctx.findings:
        verdict = Verdict.FAIL
    return CaseOutcome(
        _result(impl, case, verdict, started, seed, ctx.findings, evidence, reason), tainted
    )


def _attach_capture(ctx: Context) -> CaseCapture:
    """``--capture``: one recorder for the case, watching every server it starts."""
    capture = CaseCapture(ctx.options.artifacts_dir, case_slug(ctx.impl.spec, ctx.case.id))
    bookkeeping(ctx).server_watchers.append(capture.watch)
    return capture


def unsupported_reason(impl: Implementation, case: Case) -> str:
    """Why ``case`` cannot run on ``impl`` here (missing feature or host support), or ""."""
    missing = impl.missing(case.spec.requires)
    if missing:
        return f"implementation {impl.spec!r} lacks {', '.join(missing)}"
    return host_supports(case.transport, case.kind) or family_missing(impl, case)


def family_missing(impl: Implementation, case: Case) -> str:
    """Why a partial implementation cannot serve the case's variant (no such class), or ""."""
    transport = TRANSPORTS[case.transport]
    for name in (transport.base + "Server", server_class_name(case.transport, case.kind),
                 transport.handler_base):  # fmt: skip
        if name not in impl.features:
            return f"implementation {impl.spec!r} lacks {name} (no {case.transport} {case.kind})"
    return ""


def _run_and_check(
    ctx: Context, baseline: Any, capture: CaseCapture | None
) -> tuple[Verdict, str, dict[str, Any], bool]:
    evidence: dict[str, Any] = {"base_seed": ctx.base_seed}
    verdict, reason, tainted = Verdict.PASS, "", False
    try:
        _run_body(ctx)
    except Unsupported as exc:
        verdict, reason = Verdict.UNSUPPORTED, exc.reason
    except Hang as exc:
        verdict, reason, tainted = (
            Verdict.HANG,
            exc.reason + green_hint(exc.stacks, ctx.impl.spec),
            True,
        )
        evidence.update(_hang_evidence(exc))
    except ServeDied as exc:
        verdict, reason = Verdict.FAIL, exc.reason
        ctx.fail(
            "serve.died",
            exc.reason,
            expected="serve_forever() runs until shutdown() is called",
            observed=exc.reason,
        )
        evidence["traceback"] = exc.traceback
        evidence["stacks"] = exc.stacks
        evidence["death_signature"] = exc.signature  # repeated deaths cost once (symptoms)
        if exc.note:
            evidence["deadline_shortened"] = exc.note
    except Abort as exc:
        reason = exc.reason
        ctx.fail("scenario.abort", exc.reason)
    except Exception as exc:
        verdict, reason = judge_exception(ctx, exc)
        evidence["traceback"] = _format(exc)
    hung = verdict is Verdict.HANG
    known = hung and bool(evidence.get("deadline_shortened"))
    teardown_hang = _teardown(ctx, hung, known)
    if capture is not None:
        evidence.update(capture.finish())
    if teardown_hang is not None:
        if verdict is not Verdict.HANG:
            verdict, reason = (
                Verdict.HANG,
                teardown_hang.reason + green_hint(teardown_hang.stacks, ctx.impl.spec),
            )
            evidence.update(_hang_evidence(teardown_hang))
        tainted = True
    # Settle first: daemon handler threads and children may still be finishing
    # their requests, and the lifecycle checks must see the complete story.
    ended = bookkeeping(ctx).ended.is_set() or verdict is Verdict.HANG
    grace = ctx.clock.limit("leak_grace_ended", LEAK_GRACE) if ended else LEAK_GRACE
    if known:
        grace = ctx.clock.limit("leak_grace_known_hang", grace)

    leaks = settle(
        baseline, grace, ignore_fds=ctx.log.fds(), pinned=lambda: sockets_held(ctx.servers)
    )
    scenario = bookkeeping(ctx).scenario_thread
    if known and leaks.fds and scenario is not None and scenario.is_alive():
        # Its short join over (scenario_join_known_hang), the scenario still runs and
        # may hold descriptors of its own (clients unwinding, a raw socket's select()),
        # which no look at them tells from the server's: the hang is one earlier cases
        # already showed, so descriptors are left unjudged, and the evidence says so.
        leaks = replace(leaks, fds={})
        evidence["fds_not_judged"] = (
            "after this known hang the scenario was still running, with descriptors "
            "of its own open: descriptor leaks were not judged"
        )
    ctx.log.sync()
    overflowed = ctx.log.dropped > 0
    if overflowed:
        # The lifecycle story is incomplete: checking it would only invent findings.
        ctx.fail(
            "events.overflow",
            f"the server produced more than {MAX_EVENTS:,} lifecycle events in one case "
            f"({ctx.log.dropped:,} dropped): a request loop without end?",
            expected=f"at most {MAX_EVENTS:,} events",
            observed=f"{MAX_EVENTS + ctx.log.dropped:,} events",
        )
        ctx.log.trim(OVERFLOW_KEEP)
    observe_design(ctx)
    if not overflowed and verdict not in (Verdict.ERROR, Verdict.UNSUPPORTED):
        # A hang or crash still reports what the log shows (the cause, often).
        _post_checks(ctx)
        serving_checks(ctx)
    if "resources" in ctx.case.spec.checks and verdict is not Verdict.CRASH:
        ctx.findings.extend(leak_findings(leaks))
    if leaks.children:
        reap_and_kill(leaks.children)
    tainted |= bool(leaks.threads)  # stuck threads cannot be stopped: retire the process
    ctx.log.sync()
    events = ctx.log.events()
    evidence["events"] = len(events)
    if ctx.options.observe:  # --oracle: what this side observably did, normalised
        evidence["observation"] = observe(events, ctx.wire, leaks.by_kind(), ctx.started)
    evidence["timeline"] = timeline(events, ctx.started)
    evidence["t0"] = ctx.started  # event-log times are monotonic; timeline/wire are t - t0
    if ctx.notes:
        evidence["notes"] = ctx.notes
    if ctx.clock.took:
        evidence["phase_times"] = {k: round(v, 4) for k, v in ctx.clock.took.items()}
    _client_wait_evidence(ctx, verdict, evidence)
    if ctx.findings or verdict not in (Verdict.PASS, Verdict.UNSUPPORTED):
        evidence.update(bounded_evidence(events, ctx.wire, ctx.findings, _compact))
        ctx.findings[:] = bounded_findings(ctx.findings, evidence)
    return verdict, reason, evidence, tainted


def _run_body(ctx: Context) -> None:
    """Run the scenario function in a harness thread, bounded by the case deadline.

    With phase deadlines, a serve thread that died on its own ends the case
    (``ServeDied``) once the scenario had ``after_serve_death`` to finish.
    """
    box: dict[str, BaseException] = {}
    book = bookkeeping(ctx)
    finished = threading.Event()

    def body() -> None:
        try:
            ctx.case.spec.func(ctx, **ctx.case.params)
        except BaseException as exc:
            box["error"] = exc
        finally:
            finished.set()
            book.wake.set()

    thread = threading.Thread(target=body, name=f"{HARNESS_THREAD_PREFIX}scenario", daemon=True)
    book.scenario_thread = thread
    thread.start()
    limit = ctx.case.spec.deadline * ctx.scale
    try:
        ctx.clock.wait(
            lambda wait: _body_done(ctx, finished, wait),
            CASE_PHASE,
            ctx.time_left(),
            "the scenario",
            reason=f"case did not finish within its {limit:g}s deadline",
            progress=ctx.log.progress,
        )
    except (Hang, ServeDied):
        ctx.watch.end()  # sets book.ended: the scenario's clients stop waiting
        raise
    if "error" in box:
        raise box["error"]


def _body_done(ctx: Context, finished: threading.Event, wait: float) -> bool:
    """Wait up to ``wait`` for the scenario; raises ``ServeDied`` once its grace is over."""
    book = bookkeeping(ctx)
    end = time.monotonic() + wait
    while not finished.is_set():
        left = end - time.monotonic()
        if not ctx.clock.enabled:
            return finished.wait(max(0.0, left))
        if book.serve_died.is_set():
            death = book.deaths[0]
            limit, death.note = ctx.clock.death_grace(death.signature, wait)
            grace = book.died_at + limit - time.monotonic()
            if finished.wait(max(0.0, min(left, grace))):
                return True
            if grace <= left:
                raise death
            return False
        if left <= 0:
            return False
        book.wake.wait(left)  # the scenario finished, or a serve thread died
    return True


def _client_wait_evidence(ctx: Context, verdict: Verdict, evidence: dict[str, Any]) -> None:
    """Waits ended early (``deadline_shortened``), and in a failing case each kind of
    wait that ran out its full timeout on a stuck server (``client_stalls``: counted by
    the controller, so that later cases of the implementation may end them early).
    A case can do both: one kind of wait already known, another seen for the first time."""
    watch = ctx.watch
    if watch.notes:
        evidence.setdefault("deadline_shortened", watch.notes[0])
        evidence["client_wait_shortened"] = watch.notes[0]
        evidence["client_waits_shortened"] = len(watch.notes)
    if watch.phase_notes:
        evidence["client_phase_deadline"] = watch.phase_notes[0]
        evidence["client_phase_deadlines"] = len(watch.phase_notes)
    if watch.symptoms and (verdict in (Verdict.FAIL, Verdict.HANG) or ctx.findings):
        distinct = dict.fromkeys(watch.symptoms)  # once per case, in order of appearance
        evidence["client_stalls"] = [{"phase": p, "signature": s} for p, s in distinct]


def _hang_evidence(hang: Hang) -> dict[str, Any]:
    """Stacks, and the phase and signature that let later cases recognise the hang."""
    evidence: dict[str, Any] = {"stacks": hang.stacks}
    if hang.phase:
        evidence["hang_phase"] = hang.phase
        evidence["hang_signature"] = hang.signature
    if hang.note:
        evidence["deadline_shortened"] = hang.note
    return evidence


def _teardown(ctx: Context, hung: bool = False, known: bool = False) -> Hang | None:
    """Stop and close every server the case started; the first hang, if any.

    After the case already hung (``hung``) its verdict is known and a stuck
    implementation only adds evidence, so each call gets ``teardown_after_hang``;
    after a hang recognised as one of the implementation's known hangs (``known``),
    whose teardown earlier cases already showed, ``teardown_after_known_hang``
    (and the scenario still running, ``scenario_join_known_hang``).
    """
    book = bookkeeping(ctx)
    book.release()
    if book.scenario_thread is not None and ctx.clock.enabled:
        # A scenario ended early (dead server, hang) unblocks once its clients are closed.
        # After a dead server or a hang the verdict is known: a short join.
        phase = "scenario_join_ended" if book.ended.is_set() else "serve_join"
        join = ctx.clock.limit(phase, 1.0)
        if known:
            join = ctx.clock.limit("scenario_join_known_hang", join)
        book.scenario_thread.join(join)
    hang: Hang | None = None
    limit = max(2.0, min(5.0, ctx.time_left() + 2.0))
    if hung:
        limit = ctx.clock.limit(
            "teardown_after_known_hang" if known else "teardown_after_hang", limit
        )
    for handle in reversed(ctx.servers):
        try:
            handle.close(timeout=limit, phased=True)
        except Hang as exc:
            hang = hang or exc
        except Exception as exc:
            ctx.fail(
                "teardown.server_close", f"closing the server raised {type(exc).__name__}: {exc}"
            )
    return hang


def _post_checks(ctx: Context) -> None:
    for name in ctx.case.spec.checks:
        try:
            POST_CHECKS[name](ctx)
        except Exception as exc:
            ctx.fail(
                "harness.check_error", f"post-check {name!r} raised {type(exc).__name__}: {exc}"
            )


def _compact(event: LifecycleEvent) -> dict[str, Any]:
    """An event for the evidence log: tracebacks cut to their last lines."""
    data = event.to_json()
    if data.get("exc"):
        data["exc"] = data["exc"][-800:]
    if isinstance(data.get("detail"), dict) and data["detail"].get("error"):
        data["detail"] = {**data["detail"], "error": str(data["detail"]["error"])[-800:]}
    return data


def _format(exc: BaseException) -> str:
    return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))[-8000:]


def _result(
    impl: Implementation,
    case: Case,
    verdict: Verdict,
    started: float,
    seed: int,
    findings: list[Finding] | None = None,
    evidence: dict[str, Any] | None = None,
    reason: str = "",
) -> CaseResult:
    duration = time.monotonic() - started
    return case.record(
        impl.spec,
        verdict,
        duration,
        findings=findings or (),
        evidence=evidence,
        reason=reason,
        seed=seed,
    )
