"""Running one case in this process: set up, run, check, clean up, judge.

The executor is the same whether the case runs in a supervised worker, in
the pytest plugin or directly from a test.  It never lets an exception out:
every outcome becomes a ``CaseResult``.  When a case leaves this process in a
state it cannot repair (a thread stuck in the implementation), the outcome
says ``tainted`` and the supervisor retires the process.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import sys
import sysconfig
import tempfile
import threading
import time
import traceback
import types
import zlib
from dataclasses import dataclass
from typing import Any

from harness._checks.concurrency import observed_design
from harness._execution.postchecks import POST_CHECKS
from harness._model.errors import Abort, Hang, Unsupported
from harness._model.implementation import Implementation
from harness._model.records import CaseResult, Finding, LifecycleEvent, Verdict
from harness._model.scenario import Case
from harness._model.settings import CaseOptions
from harness._model.variants import TRANSPORTS, host_supports, server_class_name
from harness._runtime.context import Context, bookkeeping
from harness._runtime.deadline import dump_stacks
from harness._runtime.eventlog import HARNESS_THREAD_PREFIX, MAX_EVENTS
from harness._runtime.resources import leak_findings, reap_and_kill, settle, take_snapshot
from harness._runtime.wirelog import timeline
from harness._wire.capture import CaseCapture, case_slug

#: How long leftovers may take to wind down after teardown before they are leaks.
LEAK_GRACE = 2.0


@dataclass(frozen=True)
class CaseOutcome:
    """A result plus whether this process can still be trusted with more cases."""

    result: CaseResult
    tainted: bool = False


def case_seed(base_seed: int, case_id: str) -> int:
    """A per-case seed: stable across runs and independent of case order."""
    return (base_seed * 1_000_003 + zlib.crc32(case_id.encode())) & 0xFFFFFFFF


def execute(impl: Implementation, case: Case, options: CaseOptions | None = None) -> CaseOutcome:
    """Run ``case`` against ``impl`` and judge it."""
    options = options or CaseOptions()
    started = time.monotonic()
    seed = case_seed(options.seed, case.id)
    reason = unsupported_reason(impl, case)
    if reason:
        return CaseOutcome(_result(impl, case, Verdict.UNSUPPORTED, started, seed, reason=reason))
    tmpdir = tempfile.mkdtemp(prefix="sockspec-")  # mkdtemp makes it 0700
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
        evidence["stacks"] = exc.stacks
    except Abort as exc:
        reason = exc.reason
        ctx.fail("scenario.abort", exc.reason)
    except Exception as exc:
        verdict, reason = _judge_exception(ctx, exc)
        evidence["traceback"] = _format(exc)
    teardown_hang = _teardown(ctx)
    if capture is not None:
        evidence.update(capture.finish())
    if teardown_hang is not None:
        if verdict is not Verdict.HANG:
            verdict, reason = (
                Verdict.HANG,
                teardown_hang.reason + green_hint(teardown_hang.stacks, ctx.impl.spec),
            )
            evidence["stacks"] = teardown_hang.stacks
        tainted = True
    # Settle first: daemon handler threads and children may still be finishing
    # their requests, and the lifecycle checks must see the complete story.
    leaks = settle(baseline, LEAK_GRACE, ignore_fds=ctx.log.fds())
    ctx.log.sync()
    _observe_design(ctx)
    if ctx.log.dropped:
        # The lifecycle story is incomplete: checking it would only invent findings.
        ctx.fail(
            "events.overflow",
            f"the server produced more than {MAX_EVENTS:,} lifecycle events in one case "
            f"({ctx.log.dropped:,} dropped): a request loop without end?",
            expected=f"at most {MAX_EVENTS:,} events",
            observed=f"{MAX_EVENTS + ctx.log.dropped:,} events",
        )
    elif verdict not in (Verdict.ERROR, Verdict.UNSUPPORTED):
        # A hang or crash still reports what the log shows (the cause, often).
        _post_checks(ctx)
        _loop_stopped(ctx)
        _serve_errors(ctx)
        _listeners_closed(ctx)
    if "resources" in ctx.case.spec.checks and verdict is not Verdict.CRASH:
        ctx.findings.extend(leak_findings(leaks))
    if leaks.children:
        reap_and_kill(leaks.children)
    tainted |= bool(leaks.threads)  # stuck threads cannot be stopped: retire the process
    ctx.log.sync()
    events = ctx.log.events()
    evidence["events"] = len(events)
    evidence["timeline"] = timeline(events, ctx.started)
    evidence["t0"] = ctx.started  # event-log times are monotonic; timeline/wire are t - t0
    if ctx.notes:
        evidence["notes"] = ctx.notes
    if ctx.findings or verdict not in (Verdict.PASS, Verdict.UNSUPPORTED):
        evidence["event_log"] = [_compact(e) for e in events[:2000]]
        evidence["wire"] = ctx.wire
    return verdict, reason, evidence, tainted


def _run_body(ctx: Context) -> None:
    """Run the scenario function in a harness thread, bounded by the case deadline."""
    box: dict[str, BaseException] = {}

    def body() -> None:
        try:
            ctx.case.spec.func(ctx, **ctx.case.params)
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=body, name=f"{HARNESS_THREAD_PREFIX}scenario", daemon=True)
    thread.start()
    thread.join(ctx.time_left())
    if thread.is_alive():
        raise Hang(
            f"case did not finish within its {ctx.case.spec.deadline:g}s deadline", dump_stacks()
        )
    if "error" in box:
        raise box["error"]


def _teardown(ctx: Context) -> Hang | None:
    bookkeeping(ctx).release()
    hang: Hang | None = None
    for handle in reversed(ctx.servers):
        try:
            handle.close(timeout=max(2.0, min(5.0, ctx.time_left() + 2.0)))
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


def green_hint(stacks: str, spec: str = "SPEC") -> str:
    """A hint when a hang sits in a green library's primitives without its monkey-patching.

    eventlet and gevent cannot wake a waiter in another OS thread: a server of
    ``eventlet.green.SocketServer`` driven from the harness's plain threads
    hangs in ``shutdown()`` unless the worker is patched (``+eventlet``).
    """
    for library, probe in _GREEN_PROBES.items():
        if f"{os.sep}{library}{os.sep}" in stacks and not probe():
            return (
                f" (hint: it waits inside {library} from a plain OS thread; "
                f"run it as --impl {spec}+{library} to monkey-patch first)"
            )
    return ""


def _eventlet_patched() -> bool:
    patcher = sys.modules.get("eventlet.patcher")
    return bool(patcher is not None and patcher.is_monkey_patched("thread"))


def _gevent_patched() -> bool:
    monkey = sys.modules.get("gevent.monkey")
    return bool(monkey is not None and monkey.is_module_patched("threading"))


_GREEN_PROBES = {"eventlet": _eventlet_patched, "gevent": _gevent_patched}


def _observe_design(ctx: Context) -> None:
    """Name the concurrency design the log shows (evidence, pass or fail)."""
    design = observed_design(ctx)
    if design:
        ctx.note("design", design)


#: Hooks only a running server loop calls.
_LOOP_HOOKS = frozenset(("get_request", "service_actions"))


def _loop_stopped(ctx: Context) -> None:
    """After ``shutdown()`` returned, the loop ended: no loop hook ran, no thread serves on.

    A hook of the server loop (``service_actions``, ``get_request``) in a
    serving thread — or in a forked copy of it — after ``shutdown()`` returned
    and before the loop was started again means the loop kept running.
    """
    events = ctx.log.events()
    serving = {e.thread_id for e in events if e.name == "serve_forever" and e.phase == "call"}
    for handle in ctx.servers:
        if handle.survived_shutdown:
            ctx.fail(
                "shutdown.loop_continues",
                "serve_forever() was still running after shutdown() returned",
                expected="the serving thread ends when shutdown() returns",
                observed="the serve_forever() thread still alive",
            )
    after: dict[int, float] = {}  # server id -> when its last shutdown() returned
    late: list[LifecycleEvent] = []
    for event in events:
        if event.name == "shutdown" and event.phase == "return":
            after[event.server] = event.t
        elif event.name in ("serve_forever", "handle_request") and event.phase == "call":
            after.pop(event.server, None)  # served again: a new loop
        elif (
            event.name in _LOOP_HOOKS
            and event.server in after
            and event.thread_id in serving
            and event.phase in ("call", "point")
        ):
            late.append(event)
    if late:
        pids = sorted({e.pid for e in late})
        ctx.fail(
            "shutdown.loop_continues",
            f"the server loop ran {len(late)} more hook call(s) ({late[0].name} first) after "
            "shutdown() had returned",
            expected="no service_actions()/get_request() once shutdown() returns",
            observed=f"{len(late)} call(s) in pid(s) {', '.join(map(str, pids))}",
        )


def _listeners_closed(ctx: Context) -> None:
    """``server_close()`` returned with the listening socket still open: a no-op close.

    Said cause-first, before the descriptor count that shows the same leak.
    """
    closed = {e.server for e in ctx.log.events("server_close") if e.phase == "return"}
    for handle in ctx.servers:
        sid = getattr(handle.server, "_sockspec_server_id", None)
        sock = getattr(handle.server, "socket", None)
        if sid in closed and isinstance(sock, socket.socket) and sock.fileno() != -1:
            ctx.fail(
                "hooks.noop",
                "server_close() returned with the listening socket still open: it does not "
                "close the server's socket",
                expected="the server's socket closed when server_close() returns",
                observed=f"fd {sock.fileno()} still open",
            )
            return


def _serve_errors(ctx: Context) -> None:
    """``serve_forever()`` itself raised (EMFILE included): say so, cause first."""
    for event in ctx.log.events("serve_forever"):
        if event.phase == "raise" and event.exc_type not in _EXPECTED_EXITS:
            ctx.fail(
                "serve_forever.raised",
                f"serve_forever() raised {event.exc_type}: {_last_line(event.exc)}",
                expected="serve_forever() runs until shutdown()",
                observed=_last_line(event.exc),
                traceback=(event.exc or "")[-2000:],
            )


#: How a loop may end by design (a scenario's handler exits the server on purpose).
_EXPECTED_EXITS = ("SystemExit", "KeyboardInterrupt")


def _last_line(text: str | None) -> str:
    lines = [line for line in (text or "").splitlines() if line.strip()]
    return lines[-1].strip() if lines else ""


#: Exceptions a scenario raises when it cannot parse what the server sent.
_UNPARSABLE = (json.JSONDecodeError, UnicodeDecodeError)


def _judge_exception(ctx: Context, exc: BaseException) -> tuple[Verdict, str]:
    """An exception out of the scenario: the implementation's fault, or the scenario's?

    The implementation's when its traceback passes through the implementation:
    its module, the modules of its classes' bases (their MRO) or modules it
    imported (a helper module of the library) — a ``fail`` naming the frame.
    A socket error a client saw, or a reply the scenario could not parse, is
    an observation about the server too (``fail``).  Anything else is a broken
    scenario or harness (``error``), never blamed on the server.
    """
    text = f"{type(exc).__name__}: {exc}"
    prefixes = _impl_paths(ctx.impl)
    frames = traceback.extract_tb(exc.__traceback__)
    mine = [f for f in frames if prefixes and os.path.realpath(f.filename).startswith(prefixes)]
    if mine:
        frame = mine[-1]
        where = f"{frame.name}() at {frame.filename}:{frame.lineno}"
        ctx.fail(
            "implementation.raised",
            f"the implementation raised {text} in {where}",
            observed=text,
            frame=where,
        )
        return Verdict.FAIL, f"implementation raised {text} in {frame.name}()"
    if isinstance(exc, OSError):
        ctx.fail(
            "clients.io", f"a client saw {text}", expected="the exchange completes", observed=text
        )
        return Verdict.FAIL, f"client saw {text}"
    if isinstance(exc, _UNPARSABLE):
        ctx.fail(
            "replies.unparsable",
            f"the server sent what the scenario could not parse: {text}",
            expected="a well-formed reply",
            observed=text,
        )
        return Verdict.FAIL, f"unparsable reply: {text}"
    return Verdict.ERROR, f"scenario raised {text}"


def _impl_paths(impl: Implementation) -> tuple[str, ...]:
    """Path prefixes of the code that is the implementation's.

    Its own module or package; the modules defining the bases (MRO) of the
    classes it offers; and the modules it imported, or imported names from —
    except the harness and the Python installation's own library, unless one
    of those is the implementation itself or a base of its classes (an adapter
    over ``socketserver`` owns ``socketserver.py``'s frames, not ``socket.py``'s).
    """
    own = _module_paths(impl.module)
    bases: set[str] = set()
    imported: set[str] = set()
    for value in vars(impl.module).values():
        if isinstance(value, type):
            for base in value.__mro__[:-1]:
                bases.update(_module_paths(sys.modules.get(base.__module__)))
        if isinstance(value, types.ModuleType):
            imported.update(_module_paths(value))
        elif callable(value):
            imported.update(_module_paths(sys.modules.get(getattr(value, "__module__", "") or "")))
    imported = {p for p in imported if not p.startswith(_HARNESS_DIR) and not _is_stdlib(p)}
    bases = {p for p in bases if not p.startswith(_HARNESS_DIR)}
    return tuple(sorted({*own, *bases, *imported}))


def _module_paths(module: types.ModuleType | None) -> tuple[str, ...]:
    if module is None:
        return ()
    paths = getattr(module, "__path__", None)
    if paths:
        return tuple(os.path.realpath(p) + os.sep for p in paths)
    file = getattr(module, "__file__", None)
    return (os.path.realpath(file),) if file else ()


def _is_stdlib(path: str) -> bool:
    """True for a path in the Python installation's own library (not an installed package)."""
    parts = path.split(os.sep)
    return (
        path.startswith(_STDLIB_DIRS)
        and "site-packages" not in parts
        and ("dist-packages" not in parts)
    )


_HARNESS_DIR = os.path.dirname(os.path.dirname(os.path.realpath(__file__))) + os.sep
_STDLIB_DIRS = tuple(
    {
        os.path.realpath(sysconfig.get_paths()[key]) + os.sep
        for key in ("stdlib", "platstdlib")
        if key in sysconfig.get_paths()
    }
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
