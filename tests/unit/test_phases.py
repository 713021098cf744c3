"""Fast verdicts: a dead serve thread, phase deadlines, repeated hangs, spare workers."""

from __future__ import annotations

import os
import selectors
import socket
import threading
import time
from pathlib import Path

import pytest
from mutants import by_name

from harness import Context, Verdict, load_implementation, scenario
from harness._control.spare import SpareWorkers
from harness._control.symptoms import Symptoms
from harness._execution.carry import CARRY_CASES, CARRY_FDS, CarryBudget
from harness._execution.discovery import discover, select_cases
from harness._execution.execute import execute
from harness._model.errors import Hang
from harness._model.phases import (
    CASE_PHASE,
    DEATH_PHASE,
    PHASE_DEADLINES,
    REPEAT_AFTER,
    SHORT_DEADLINE,
    KnownHang,
    short_deadline,
)
from harness._model.records import CaseResult
from harness._model.scenario import Case, spec_of
from harness._model.settings import CaseOptions, Settings
from harness._runtime.deadline import (
    LOAD_STRETCH,
    SELECT_FOR_EVER,
    PhaseClock,
    innermost,
    stuck_chains,
)
from harness._runtime.load import usable_cpus

ECHO = "echo.concurrent[tcp-sync-clients=100]"
HANDLE_RAISES = "errors.handler.exception[tcp-sync-hook=handle-failures=3]"


@pytest.fixture(autouse=True)
def _idle_host(monkeypatch: pytest.MonkeyPatch) -> None:
    """Deadlines as on an idle host: tox runs four suites side by side, and a loaded
    host stretches full phase deadlines (tested on its own below)."""
    monkeypatch.setattr(os, "getloadavg", lambda: (0.0, 0.0, 0.0))


def _case(case_id: str) -> Case:
    (case,) = [c for c in select_cases(discover(), (case_id,), "stress") if c.id == case_id]
    return case


def test_a_dead_serve_thread_fails_the_case_at_once_with_its_traceback(tmp_path: Path) -> None:
    impl = load_implementation(str(by_name("serve_thread_dies_on_first_error").write(tmp_path)))
    result = execute(impl, _case(HANDLE_RAISES)).result
    assert result.verdict is Verdict.FAIL
    assert result.reason.startswith("serve_forever() died with InjectedError")
    assert "serve.died" in {f.check for f in result.findings}
    assert "InjectedError" in result.evidence["traceback"]
    assert result.duration < 10.0  # the 20 s case deadline was not waited out


def test_a_serve_forever_that_returns_on_its_own_is_a_failure(tmp_path: Path) -> None:
    impl = load_implementation(str(by_name("serve_forever_returns_early").write(tmp_path)))
    result = execute(impl, _case("echo.concurrent[tcp-threading-clients=100]")).result
    assert result.verdict is Verdict.FAIL
    assert result.reason == "serve_forever() returned although shutdown() was never called"


def test_teardown_shutdown_hangs_after_its_phase_deadline_with_phase_and_signature(
    tmp_path: Path,
) -> None:
    impl = load_implementation(str(by_name("shutdown_never_returns").write(tmp_path)))
    outcome = execute(impl, _case(ECHO))
    evidence = outcome.result.evidence
    assert outcome.result.verdict is Verdict.HANG
    assert outcome.result.reason == "shutdown() did not return within 2s"
    assert evidence["hang_phase"] == "shutdown"
    assert "shutdown" in evidence["hang_signature"]
    assert "deadline_shortened" not in evidence


def test_a_known_hang_is_judged_after_the_short_deadline_and_says_so(tmp_path: Path) -> None:
    impl = load_implementation(str(by_name("shutdown_never_returns").write(tmp_path)))
    first = execute(impl, _case(ECHO)).result.evidence
    known = KnownHang("shutdown", first["hang_signature"], REPEAT_AFTER)
    again = execute(impl, _case(ECHO), CaseOptions(known_hangs=(known,))).result
    assert again.verdict is Verdict.HANG
    # shutdown() waits for ever for a loop that has ended: known as soon as seen.
    assert again.evidence["deadline_shortened"].startswith("deadline shortened from 2s to 0.0")
    assert "waits for ever" in again.evidence["deadline_shortened"]
    assert again.evidence["hang_signature"] == first["hang_signature"]
    assert again.evidence["stacks"]


def test_a_shortened_deadline_waits_on_when_the_stacks_differ() -> None:
    clock = PhaseClock(known=(KnownHang("shutdown", "elsewhere", REPEAT_AFTER),))
    done = threading.Event()
    threading.Timer(0.3, done.set).start()
    started = time.monotonic()
    clock.wait(done.wait, "shutdown", 5.0, "shutdown()")  # no Hang: the call returned
    assert 0.2 < time.monotonic() - started < 4.0


def test_a_phase_deadline_raises_hang_with_the_full_deadline_in_the_reason() -> None:
    with pytest.raises(Hang, match=r"^shutdown\(\) did not return within 0.05s$") as info:
        PhaseClock().wait(threading.Event().wait, "shutdown", 0.05, "shutdown()")
    assert info.value.phase == "shutdown"


def test_phase_limits_scale_and_switch_off() -> None:
    assert PhaseClock(scale=3.0).limit("shutdown", 60.0) == 6.0
    assert PhaseClock().limit("shutdown", 0.5) == 0.5  # never beyond the caller's own limit
    assert PhaseClock(enabled=False).limit("shutdown", 5.0) == 5.0
    assert PhaseClock().limit("no-such-phase", 5.0) == 5.0


@pytest.mark.parametrize(("load", "stretch"), [(1.0, 1.0), (3.0, 1.5), (16.0, LOAD_STRETCH)])
def test_a_loaded_host_stretches_full_phase_deadlines(
    monkeypatch: pytest.MonkeyPatch, load: float, stretch: float
) -> None:
    """A first occurrence is judged with the deadline stretched by the load per CPU
    (slow but correct code under CI load is not a hang); a known hang's is not."""
    monkeypatch.setattr(os, "getloadavg", lambda: (load, 0.0, 0.0))
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1})
    full = PHASE_DEADLINES["shutdown"]
    assert PhaseClock().limit("shutdown", 60.0) == pytest.approx(full * stretch)
    assert PhaseClock().without_limits().stretch == stretch
    assert PhaseClock(enabled=False).limit("shutdown", 5.0) == 5.0


def test_the_reference_never_meets_a_phase_deadline_in_teardown() -> None:
    result = execute(load_implementation("reference"), _case(ECHO)).result
    assert result.verdict is Verdict.PASS
    assert result.evidence["phase_times"]["shutdown"] < 1.0


def _hang(impl: str, signature: str, shortened: bool = False) -> CaseResult:
    evidence = {"hang_phase": "shutdown", "hang_signature": signature}
    if shortened:
        evidence["deadline_shortened"] = "..."
    return _case(ECHO).record(impl, Verdict.HANG, 1.0, evidence=evidence)


def test_symptoms_become_known_after_repeat_after_full_deadline_hangs() -> None:
    symptoms = Symptoms()
    for _ in range(REPEAT_AFTER - 1):
        symptoms.record(_hang("m", "shutdown"))
    symptoms.record(_hang("m", "shutdown", shortened=True))  # does not count
    symptoms.record(_hang("other", "shutdown"))
    assert symptoms.known("m") == ()
    symptoms.record(_hang("m", "shutdown"))
    assert symptoms.known("m") == (KnownHang("shutdown", "shutdown", REPEAT_AFTER),)
    assert symptoms.known("stdlib") == ()


def test_case_options_carry_known_hangs_through_json() -> None:
    options = CaseOptions(known_hangs=(KnownHang("shutdown", "a>b", 3),))
    assert CaseOptions(**options.to_json()) == options


def test_phase_deadlines_switch_from_the_environment() -> None:
    assert Settings.from_env({}).phase_deadlines
    assert not Settings.from_env({"SOCKSPEC_PHASE_DEADLINES": "0"}).phase_deadlines
    assert not Settings.from_env({"SOCKSPEC_PHASE_DEADLINES": "0"}).case_options().phase_deadlines


class _FakeWorker:
    def __init__(self, spec: str) -> None:
        self.spec = spec
        self.killed = False

    def alive(self) -> bool:
        return not self.killed

    def kill(self) -> None:
        self.killed = True

    close = kill


def test_a_spare_worker_is_started_ahead_and_taken_once() -> None:
    started: list[str] = []

    def start(spec: str) -> _FakeWorker:
        started.append(spec)
        return _FakeWorker(spec)

    spares = SpareWorkers(start)  # type: ignore[arg-type]
    assert spares.take("m") is None  # none prepared: the caller starts one itself
    spares.prepare("m")
    spares.prepare("m")  # at most one per implementation
    worker = spares.take("m")
    assert worker is not None and worker.spec == "m"  # type: ignore[attr-defined]
    assert started == ["m"]
    spares.prepare("m")
    spares.close()
    assert spares.take("m") is None


def test_spares_go_up_to_depth_per_implementation() -> None:
    started: list[str] = []

    def start(spec: str) -> _FakeWorker:
        started.append(spec)
        return _FakeWorker(spec)

    spares = SpareWorkers(start, depth=2)  # type: ignore[arg-type]
    for _ in range(3):
        spares.prepare("m")  # two slots may retire their workers at once
    spares.prepare("n")
    taken = [spares.take("m"), spares.take("m"), spares.take("m")]
    assert [w is not None for w in taken] == [True, True, False]
    assert sorted(started) == ["m", "m", "n"]
    spares.close()
    assert spares.take("n") is None  # closed: the ready one was killed


def test_jobs_default_is_the_usable_cpus() -> None:
    assert usable_cpus() >= 1


def test_a_spare_taken_by_another_slot_at_once_is_joined_safely() -> None:
    # Regression: prepare() once listed the spare before starting its thread, and
    # another slot's take() joined the unstarted thread (RuntimeError ended the run).
    spares = SpareWorkers(_FakeWorker, depth=2)  # type: ignore[arg-type]
    errors: list[BaseException] = []

    def prepare_and_take() -> None:
        try:
            for _ in range(200):
                spares.prepare("m")
                spares.take("m")
        except BaseException as exc:
            errors.append(exc)

    slots = [threading.Thread(target=prepare_and_take) for _ in range(2)]
    for slot in slots:
        slot.start()
    for slot in slots:
        slot.join(30)
    spares.close()
    assert not errors


def test_a_worker_carries_on_only_after_a_repeated_hang_and_within_its_budget() -> None:
    budget = CarryBudget()
    assert not budget.carry(_hang("m", "shutdown"))  # a first hang: stuck state unknown
    assert budget.carry(_hang("m", "shutdown", shortened=True))
    budget.carried = CARRY_CASES
    assert not budget.carry(_hang("m", "shutdown", shortened=True))  # enough carried: retire


def test_a_worker_holding_too_many_descriptors_is_retired() -> None:
    budget = CarryBudget()
    budget.fds -= CARRY_FDS + 1  # as if that many were opened since it was ready
    assert not budget.carry(_hang("m", "shutdown", shortened=True))


def test_threads_older_than_the_case_are_not_in_its_signature(tmp_path: Path) -> None:
    # A worker that carried on after a hang still holds that case's stuck thread:
    # a later case's signature must be the same as in a fresh worker.
    impl = load_implementation(str(by_name("shutdown_never_returns").write(tmp_path)))
    fresh = execute(impl, _case(ECHO)).result.evidence["hang_signature"]
    again = execute(impl, _case(ECHO)).result.evidence["hang_signature"]
    assert fresh == again
    clock = PhaseClock(impl_paths=[str(tmp_path)])
    assert clock.signature() == ""  # both cases' stuck threads are older than this clock


def test_a_case_stuck_where_a_known_hang_was_stuck_is_shortened_only_for_the_case() -> None:
    known = (KnownHang("server_close", "server_close>server_close", REPEAT_AFTER),)
    clock = PhaseClock(known=known)
    assert innermost("__init__>server_close | serve_forever") == {"server_close", "serve_forever"}
    match, how = clock._match(CASE_PHASE, "__init__>server_close")
    assert match == known[0] and "same functions (server_close)" in how
    assert clock._match("server_close", "__init__>server_close") == (None, "")  # exact only
    assert clock._match(CASE_PHASE, "__init__>server_bind") == (None, "")


def test_repeated_serve_deaths_become_known_and_shorten_the_grace() -> None:
    symptoms = Symptoms()
    died = _case(ECHO).record("m", Verdict.FAIL, 1.0, evidence={"death_signature": "returned"})
    for _ in range(REPEAT_AFTER):
        symptoms.record(died)
    assert symptoms.known("m") == (KnownHang(DEATH_PHASE, "returned", REPEAT_AFTER),)
    clock = PhaseClock(known=symptoms.known("m"))
    grace, note = clock.death_grace("returned", 5.0)
    assert grace == short_deadline(DEATH_PHASE) and "died the same way (returned)" in note
    assert clock.death_grace("OSError", 5.0) == (1.0, "")  # another death: full grace
    assert PhaseClock(enabled=False, known=symptoms.known("m")).death_grace("returned", 5.0) == (
        5.0,
        "",
    )


def test_a_stalled_case_matching_a_known_hang_ends_early_but_an_idle_loop_does_not() -> None:
    known = (KnownHang("server_close", "process_request_thread>__init__ | server_close>join", 2),)
    clock = PhaseClock(known=known)
    match, how = clock._stall_match("process_request_thread>__init__ | serve_forever")
    assert match == known[0] and "(__init__)" in how
    assert clock._stall_match("serve_forever") == (None, "")  # idle in select: not stuck
    assert clock._stall_match("handle_request>get_request") == (None, "")


def test_a_quick_stall_needs_the_same_call_and_no_handler_at_work() -> None:
    known = (KnownHang("shutdown", "serve_forever>process_request>finish_request>__init__", 2),)
    clock = PhaseClock(known=known)
    # The same stuck call under another outer loop matches, an idle loop beside it aside.
    match, how = clock._quick_match(
        "handle_request>process_request>finish_request>__init__ | serve_forever"
    )
    assert match == known[0] and "finish_request>__init__" in how
    # A handler running a hook (a scenario's code) is at work, not stuck.
    assert clock._quick_match("process_request_thread>finish_request>__init__+") == (None, "")
    # Stuck in the same function, but called from elsewhere: only the 1 s rule may match.
    assert clock._quick_match("process_request_thread>setup>__init__") == (None, "")
    assert clock._stall_match("process_request_thread>setup>__init__")[0] == known[0]
    assert innermost("a>b+") == {"b"}


def test_shutdown_waiting_for_an_idle_loop_is_not_stuck() -> None:
    """A loop idle in select() ends shutdown()'s wait at its next poll (up to 0.5 s by
    default): a thread in shutdown() beside it matches no known hang in shutdown."""
    known = (KnownHang("shutdown", "serve_forever>finish_request>__init__ | shutdown", 2),)
    clock = PhaseClock(known=known)
    assert clock._quick_match("serve_forever | shutdown") == (None, "")
    assert clock._stall_match("serve_forever | shutdown") == (None, "")
    # With no loop idle (it returned, or is stuck in a handler), shutdown() is stuck.
    assert clock._quick_match("shutdown")[0] == known[0]
    # ... because of the loop: beside a loop stuck in a handler it waits for that.
    assert stuck_chains("serve_forever>finish_request>__init__ | shutdown") == {
        "serve_forever>finish_request>__init__"
    }


def test_a_wait_for_a_stuck_handler_matches_the_handlers_known_hang() -> None:
    """server_close() joining threads, collect_children() reaping processes: beside a
    handler stuck in a known call, they are stuck because of it; alone, on their own."""
    known = (KnownHang("shutdown", "serve_forever>finish_request>__init__ | shutdown", 1),)
    clock = PhaseClock(known=known)
    for waiter in ("server_close>join", "serve_forever>service_actions>collect_children"):
        signature = f"process_request_thread>finish_request>__init__ | {waiter}"
        assert stuck_chains(signature) == {"process_request_thread>finish_request>__init__"}
        assert clock._quick_match(signature)[0] == known[0]
        assert stuck_chains(waiter) == {waiter}
        assert clock._quick_match(waiter) == (None, "")


def _impl_file(folder: Path, source: str) -> dict[str, object]:
    """The names ``source`` defines, run from ``folder/impl.py``: functions whose frames
    lie in an "implementation" file (``impl_paths=[folder]``)."""
    path = folder / "impl.py"
    path.write_text(source)
    namespace: dict[str, object] = {}
    exec(compile(source, str(path), "exec"), namespace)
    return namespace


def test_a_chain_that_called_back_into_the_harness_is_marked(tmp_path: Path) -> None:
    """The implementation calling a harness hook ends its chain in ``+``; waiting in its
    own code (or the standard library) leaves it unmarked."""
    namespace = _impl_file(
        tmp_path,
        "def waits(event):\n    event.wait(30)\n\ndef calls(hook, event):\n    hook(event)\n",
    )
    release = threading.Event()
    threads = [
        threading.Thread(target=namespace["waits"], args=(release,), daemon=True),
        # A function of this package (harness/) stands in for an instrumented hook.
        threading.Thread(target=namespace["calls"], args=(_harness_hook, release), daemon=True),
    ]
    for thread in threads:
        thread.start()
    try:
        clock = PhaseClock(impl_paths=[str(tmp_path)])
        clock.older = frozenset()
        deadline = time.monotonic() + 5
        while clock.signature().count(" | ") < 1 and time.monotonic() < deadline:
            release.wait(0.01)
        assert clock.signature() == "calls+ | waits"
    finally:
        release.set()
        for thread in threads:
            thread.join(5)


def _harness_hook(event: threading.Event) -> None:
    from harness._runtime.deadline import call_with_deadline

    call_with_deadline(lambda: event.wait(30), 30.0, "a hook")


#: Releases the scenario below from its own wait (at the end of the test).
_OWN_WAIT_OVER = threading.Event()


@scenario(
    "t.own_wait", title="a scenario in a wait of its own", transports=("tcp",), kinds=("sync",)
)
def _stays_in_its_own_wait(ctx: Context) -> None:
    """A client's request is never ended; meanwhile the scenario waits on its own,
    with a socket of its own open (no watched client: the case's end cannot wake it)."""
    ctx.server()
    ctx.connect().send(b"hello\n")
    with socket.socket():
        _OWN_WAIT_OVER.wait(10.0)


def test_after_a_known_hang_a_scenario_in_its_own_wait_is_waited_for_briefly(
    tmp_path: Path,
) -> None:
    """After a known hang the verdict and its evidence are known: the teardown waits
    for a scenario still running only ``scenario_join_known_hang``, and the
    descriptors it still holds are left unjudged (said so), not blamed on the server."""
    impl = load_implementation(str(by_name("every_handler_hangs").write(tmp_path)))
    spec = spec_of(_stays_in_its_own_wait)
    assert spec is not None
    (case,) = spec.cases()
    stuck = "serve_forever>_handle_request_noblock>process_request>finish_request>__init__"
    known = (KnownHang("shutdown", stuck, REPEAT_AFTER),)
    try:
        result = execute(impl, case, CaseOptions(known_hangs=known)).result
    finally:
        _OWN_WAIT_OVER.set()
    assert result.verdict is Verdict.HANG
    assert "earlier cases of this implementation hung in shutdown" in result.reason
    assert "descriptor leaks were not judged" in result.evidence["fds_not_judged"]
    assert "resources.fds" not in {f.check for f in result.findings}
    # The join before this change (scenario_join_ended) alone took 0.2 s.
    assert PHASE_DEADLINES["scenario_join_known_hang"] < PHASE_DEADLINES["scenario_join_ended"]


def test_a_loop_blocked_in_select_without_timeout_is_stuck_not_idle(tmp_path: Path) -> None:
    """A serving loop in a selector's select() with no timeout can never poll: its chain
    ends in ``SELECT_FOR_EVER`` and counts as stuck.  With a timeout, or with a pipe of
    its own registered beside the listening socket (woken by shutdown()), it is idle."""
    namespace = _impl_file(
        tmp_path,
        "import selectors\n\n"
        "def serve_forever(selector, timeout):\n    return selector.select(timeout)\n",
    )
    clock = PhaseClock(impl_paths=[str(tmp_path)])
    clock.older = frozenset()
    for timeout, pipes, expected in (
        (None, 1, f"serve_forever>{SELECT_FOR_EVER}"),
        (30.0, 1, "serve_forever"),
        (None, 2, "serve_forever"),
    ):
        pairs = [socket.socketpair() for _ in range(pipes)]
        selector = selectors.PollSelector()
        for reader, _ in pairs:
            selector.register(reader, selectors.EVENT_READ)
        loop = threading.Thread(
            target=namespace["serve_forever"], args=(selector, timeout), daemon=True
        )
        loop.start()
        try:
            deadline = time.monotonic() + 5
            while clock.signature() != expected and time.monotonic() < deadline:
                time.sleep(0.01)  # a poll of another thread's stack: nothing to wait on
            assert clock.signature() == expected
        finally:
            pairs[0][1].send(b"x")  # wakes the loop
            loop.join(5)
            selector.close()
            for pair in pairs:
                for sock in pair:
                    sock.close()
    assert stuck_chains(f"serve_forever>{SELECT_FOR_EVER} | shutdown") == {
        f"serve_forever>{SELECT_FOR_EVER}"
    }


def test_a_known_hang_with_a_loop_blocked_for_ever_ends_at_once(tmp_path: Path) -> None:
    """Nothing in a teardown wakes a loop blocked in select() with no timeout: a known
    hang of ``shutdown`` with such a loop ends as soon as the stacks show it, well
    within the short deadline, and says why; the first one is judged in full."""
    impl = load_implementation(str(by_name("serve_forever_blocks_in_select").write(tmp_path)))
    # Unix, not TCP: no stray connection to a reused port can wake the loop.
    case = _case("echo.concurrent[unix_stream-sync-clients=100]")
    first = execute(impl, case).result
    assert first.verdict is Verdict.HANG
    assert first.evidence["hang_signature"] == f"serve_forever>{SELECT_FOR_EVER} | shutdown"
    assert first.reason == "shutdown() did not return within 2s"
    known = KnownHang("shutdown", first.evidence["hang_signature"], REPEAT_AFTER)
    again = execute(impl, case, CaseOptions(known_hangs=(known,))).result
    assert again.verdict is Verdict.HANG
    assert "waits for ever (in select()" in again.evidence["deadline_shortened"]
    assert again.evidence["phase_times"]["shutdown"] < SHORT_DEADLINE


@pytest.mark.parametrize("timeout", [None, 0.001])
def test_a_known_hang_ends_at_once_only_when_the_implementation_waits_for_ever(
    tmp_path: Path, timeout: float | None
) -> None:
    """A thread of the implementation in a threading wait with no timeout, and no
    other: nothing can wake it, so a known hang with its stacks ends at once.  One
    waiting with a timeout (it wakes on its own) is judged after the short deadline."""
    namespace = _impl_file(
        tmp_path, "def stuck(event, timeout):\n    while not event.wait(timeout):\n        pass\n"
    )
    release = threading.Event()
    thread = threading.Thread(target=namespace["stuck"], args=(release, timeout), daemon=True)
    clock = PhaseClock(
        known=(KnownHang("call", "stuck", REPEAT_AFTER),),
        impl_paths=[str(tmp_path)],
        children=lambda scale: "",  # no child process (None: children not judged)
    )
    thread.start()
    try:
        with pytest.raises(Hang) as info:
            clock.wait(threading.Event().wait, "call", 5.0, "a call")
        # Children that could not be judged may be at work: no claim.
        unjudged = PhaseClock(impl_paths=[str(tmp_path)])
        unjudged.older = clock.older
        assert unjudged._frozen() == ""
        assert bool(clock._frozen()) is (timeout is None)
    finally:
        release.set()
        thread.join(5)
    if timeout is None:
        assert "waits for ever (in select() or a threading wait" in info.value.reason
        assert clock.took["call"] < SHORT_DEADLINE
    else:
        assert info.value.reason.startswith(f"a call did not return within {SHORT_DEADLINE:g}s")
        assert clock.took["call"] >= SHORT_DEADLINE
