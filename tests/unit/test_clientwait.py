"""Client waits as phases: a reply or EOF a stuck server never sends costs once."""

from __future__ import annotations

import importlib.util
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from mutants import by_name

from harness import Verdict, load_implementation
from harness._control.symptoms import Symptoms
from harness._execution.discovery import discover, select_cases
from harness._execution.execute import execute
from harness._model.phases import (
    CLIENT_EOF,
    CLIENT_REPLY,
    EOF_AFTER_END,
    EOF_OVERDUE,
    QUICK_STALL_AFTER,
    REPEAT_AFTER,
    SERVER_EVENT,
    KnownHang,
)
from harness._model.records import ClientResult, Endpoint, LifecycleEvent
from harness._model.scenario import Case
from harness._model.settings import CaseOptions
from harness._runtime.clients import ClientTimeout, DatagramClient, StreamClient
from harness._runtime.clientwait import IDLE_SERVER, ClientWatch, requests_ended
from harness._runtime.context import Bookkeeping, Context
from harness._runtime.deadline import PhaseClock, call_with_deadline
from harness._runtime.eventlog import EventLog
from harness._runtime.instrument import address_text
from harness._runtime.swarm import Recv, Send, run_swarm
from harness._runtime.unixpeer import request_inode
from harness.support import in_main_thread

THREADING_ECHO = "echo.concurrent[tcp-threading-clients=100]"
STUCK = "process_request_thread>finish_request>__init__"


def _case(case_id: str) -> Case:
    (case,) = [c for c in select_cases(discover(), (case_id,), "stress") if c.id == case_id]
    return case


@pytest.fixture
def stuck_impl(tmp_path: Path) -> Iterator[str]:
    """A thread stuck in a function of an "implementation" file; yields that file's folder."""
    source = tmp_path / "impl.py"
    source.write_text("def handle(event):\n    event.wait(30)\n")
    spec = importlib.util.spec_from_file_location("stuck_impl_for_test", source)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    release = threading.Event()
    thread = threading.Thread(target=module.handle, args=(release,), daemon=True)
    thread.start()
    try:
        yield str(tmp_path)
    finally:
        release.set()
        thread.join(5)


def _silent_client(timeout: float) -> tuple[StreamClient, socket.socket]:
    ours, theirs = socket.socketpair()
    return StreamClient(ours, timeout), theirs


def _timed_silent_recv(watch: ClientWatch, timeout: float) -> float:
    """Seconds a watched client waited for a byte its peer never sends (it times out)."""
    client, peer = _silent_client(timeout)
    client.watch = watch
    started = time.monotonic()
    with client, peer, pytest.raises(ClientTimeout):
        client.recv_exact(1)
    return time.monotonic() - started


def test_idle_polls_are_not_progress() -> None:
    log = EventLog()
    try:
        before = log.progress()
        log.emit("service_actions", "point")
        assert log.progress() == before
        log.emit("get_request", "call")
        assert log.progress() == before + 1
    finally:
        log.close()


def test_a_full_client_wait_on_a_stuck_server_is_a_symptom(stuck_impl: str) -> None:
    clock = PhaseClock(impl_paths=[stuck_impl])
    clock.older = frozenset()  # the fixture's thread belongs to "this case"
    watch = ClientWatch(clock, lambda: 7)
    client, peer = _silent_client(1.5)
    client.watch = watch
    with client, peer, pytest.raises(ClientTimeout, match=r"recv_exact\(4\) timed out after 1.5 s"):
        client.recv_exact(4)
    assert watch.symptoms == [(CLIENT_REPLY, "handle")]
    assert watch.notes == []


def test_a_known_client_symptom_ends_the_wait_early_as_the_same_timeout(stuck_impl: str) -> None:
    known = (KnownHang(CLIENT_EOF, "handle", REPEAT_AFTER),)
    clock = PhaseClock(known=known, impl_paths=[stuck_impl])
    clock.older = frozenset()
    watch = ClientWatch(clock, lambda: 7)
    client, peer = _silent_client(10.0)
    client.watch = watch
    started = time.monotonic()
    with client, peer, pytest.raises(ClientTimeout, match=r"timed out after 10 s"):
        client.recv_until_eof()
    assert time.monotonic() - started < 4.0
    assert "deadline shortened from 10s" in watch.notes[0]
    assert "earlier cases of this implementation waited out client EOF" in watch.notes[0]
    assert watch.symptoms == []


def test_a_known_client_symptom_waits_on_while_the_server_makes_progress(
    stuck_impl: str,
) -> None:
    known = (KnownHang(CLIENT_REPLY, "handle", REPEAT_AFTER),)
    clock = PhaseClock(known=known, impl_paths=[stuck_impl])
    clock.older = frozenset()
    events = iter(range(10**6))
    watch = ClientWatch(clock, lambda: next(events))  # a new event on every look
    assert _timed_silent_recv(watch, 2.0) >= 1.9
    assert watch.notes == [] and watch.symptoms == []


def test_a_full_event_log_ends_the_wait_at_once() -> None:
    """A request loop without end fails the case (events.overflow) whatever the clients get."""
    full = threading.Event()
    watch = ClientWatch(PhaseClock(), lambda: 7, overflowed=full.is_set)
    full.set()
    assert _timed_silent_recv(watch, 10.0) < 4.0
    assert "the event log was full" in watch.notes[0]


def test_other_stacks_or_no_phase_deadlines_wait_the_full_timeout(stuck_impl: str) -> None:
    for clock in (
        PhaseClock(known=(KnownHang(CLIENT_REPLY, "elsewhere", 2),), impl_paths=[stuck_impl]),
        PhaseClock(
            enabled=False, known=(KnownHang(CLIENT_REPLY, "handle", 2),), impl_paths=[stuck_impl]
        ),
    ):
        clock.older = frozenset()
        watch = ClientWatch(clock, lambda: 7)
        assert _timed_silent_recv(watch, 1.6) >= 1.5
        assert watch.notes == []


def _waiting_context(known: tuple[KnownHang, ...] = (), scale: float = 1.0) -> Context:
    options = CaseOptions(known_hangs=known, deadline_scale=scale)
    return Context(load_implementation("stdlib"), _case(THREADING_ECHO), 0, "/nonexistent", options)


def _timed(wait: Callable[[], bool]) -> float:
    started = time.monotonic()
    assert wait() is False  # no server: the events never come
    return time.monotonic() - started


def test_a_waited_out_event_wait_on_an_idle_server_is_a_symptom() -> None:
    ctx = _waiting_context(scale=0.4)  # a 2 s wait; its phase deadline 1.2 s
    try:
        assert 1.1 <= _timed(lambda: ctx.wait_events("handle", 1)) < 1.9
        assert ctx.watch.symptoms == [(SERVER_EVENT, IDLE_SERVER)]
        assert "server event phase deadline (1.2s) passed" in ctx.watch.phase_notes[0]
    finally:
        ctx.log.close()


def test_a_silent_wait_ends_at_its_phase_deadline_as_its_own_timeout() -> None:
    """No known symptom needed: 3 s (times the scale) of nothing is the full phase."""
    watch = ClientWatch(PhaseClock(scale=0.3), lambda: 7)  # phase deadline 0.9 s
    assert 0.85 <= _timed_silent_recv(watch, 5.0) < 2.5
    assert "client reply phase deadline (0.9s) passed" in watch.phase_notes[0]
    assert watch.symptoms == [(CLIENT_REPLY, IDLE_SERVER)] and watch.notes == []
    # Without phase deadlines the client waits out its own timeout.
    off = ClientWatch(PhaseClock(enabled=False, scale=0.3), lambda: 7)
    assert _timed_silent_recv(off, 1.6) >= 1.5
    assert off.phase_notes == []


def test_a_handler_at_work_in_scenario_code_keeps_a_wait_from_its_phase_deadline(
    tmp_path: Path,
) -> None:
    """The implementation has called a hook (code of this package, standing in for a
    scenario's handler), which takes its time: the client is not waiting in vain."""
    source = tmp_path / "impl.py"
    source.write_text("def calls(hook, event):\n    hook(event)\n")
    namespace: dict[str, object] = {}
    exec(compile(source.read_text(), str(source), "exec"), namespace)
    release = threading.Event()
    hook = lambda event: call_with_deadline(lambda: event.wait(30), 30.0, "a hook")  # noqa: E731
    thread = threading.Thread(target=namespace["calls"], args=(hook, release), daemon=True)
    thread.start()
    try:
        clock = PhaseClock(scale=0.3, impl_paths=[str(tmp_path)])  # phase deadline 0.9 s
        clock.older = frozenset()
        watch = ClientWatch(clock, lambda: 7)
        assert _timed_silent_recv(watch, 1.6) >= 1.5
        assert watch.phase_notes == []
    finally:
        release.set()
        thread.join(5)


def test_a_server_with_live_children_is_no_idle_server() -> None:
    """Handlers in child processes (a forking server, a process pool) show in no stack:
    a silent wait then is neither ended at its phase deadline nor a symptom."""
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        watch = ClientWatch(PhaseClock(scale=0.3), lambda: 7)  # phase deadline 0.9 s
        assert _timed_silent_recv(watch, 1.6) >= 1.5
        assert watch.phase_notes == [] and watch.symptoms == []
    finally:
        child.kill()
        child.wait(5)


def test_bytes_still_arriving_keep_a_wait_from_its_phase_deadline() -> None:
    """A long reply trickling in, no lifecycle event: the client is not waiting in vain."""
    watch = ClientWatch(PhaseClock(scale=0.2), lambda: 7)  # phase deadline 0.6 s
    client, peer = _silent_client(5.0)
    client.watch = watch
    stop = threading.Event()

    def trickle() -> None:
        for _ in range(15):  # a byte every 0.1 s for 1.5 s, then the rest
            if stop.wait(0.1):
                return
            peer.sendall(b"x")
        peer.sendall(b"y" * 5)

    sender = threading.Thread(target=trickle, daemon=True)
    sender.start()
    try:
        with client, peer:
            assert len(client.recv_exact(20)) == 20  # two stepped waits see each byte
    finally:
        stop.set()
        sender.join(5)
    assert watch.phase_notes == []


def _tcp_pair() -> tuple[socket.socket, socket.socket]:
    """A connected TCP client and the server's side of it (over loopback)."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        client = socket.create_connection(listener.getsockname()[:2], timeout=5)
        listener.settimeout(5)
        server_side, _ = listener.accept()
    return client, server_side


def _wait_for_eof(
    ours: socket.socket,
    theirs: socket.socket,
    *detail: object,
    ended: bool = True,
    scale: float = 0.3,
    late: float = 0.0,
    probe: float | None = None,
    known: tuple[KnownHang, ...] = (),
) -> tuple[float, ClientWatch]:
    """How long a client waited for an EOF the server never sent, and the watch's
    notes: get_request() returned its request with ``detail``, and shutdown_request()
    returned if ``ended``; the wait began ``late`` seconds after that.  ``probe``:
    the wait is ``is_eof(probe)`` (False at its end), not ``recv_until_eof()``.
    ``known``: the implementation's known hangs and symptoms."""
    client = StreamClient(ours, 5.0)
    log = EventLog()
    try:
        log.emit("get_request", "return", 1, 0, None, *detail)
        if ended:
            log.emit("shutdown_request", "return", 1)
        clock = PhaseClock(scale=scale, known=known)
        client.watch = ClientWatch(clock, log.progress, events=log.events)
        if late:
            client.watch.still()  # sampled now: the request's end is the last event seen
            assert not threading.Event().wait(late)
        started = time.monotonic()
        with client, theirs:
            if probe is not None:
                assert client.is_eof(probe) is False
            else:
                with pytest.raises(ClientTimeout):
                    client.recv_until_eof()
        return time.monotonic() - started, client.watch
    finally:
        log.close()


@pytest.mark.parametrize("ended", [True, False])
def test_an_eof_is_overdue_once_the_server_ended_the_request(ended: bool) -> None:
    """shutdown_request() returned for this client's request: a correct server's FIN
    was sent before that, so the EOF wait ends soon, as its own timeout; until it
    returned, only the phase deadline ends it."""
    ours, theirs = _tcp_pair()
    # The EOF is due after 0.075 s; the phase deadline is 0.9 s.
    address = address_text(ours.getsockname())
    waited, watch = _wait_for_eof(ours, theirs, "client_address", address, ended=ended)
    notes = watch.phase_notes
    if ended:
        assert waited < 0.6 and "the EOF was overdue" in notes[0]
    else:
        assert waited >= 0.85 and "phase deadline (0.9s) passed" in notes[0]


def test_an_overdue_eof_costs_its_full_margin_once_per_implementation() -> None:
    """The first overdue EOF of an implementation is a symptom, judged with the full
    margin (``EOF_AFTER_END``); once the controller knows it, a later case's EOF is
    overdue after the short deadline, its clients asking as often, and the evidence
    says the deadline was shortened and why."""
    ours, theirs = _tcp_pair()
    address = address_text(ours.getsockname())
    _, watch = _wait_for_eof(ours, theirs, "client_address", address, scale=1.0)
    assert watch.symptoms == [(EOF_OVERDUE, IDLE_SERVER)] and watch.notes == []
    assert watch.step == pytest.approx(0.1)
    owed = (KnownHang(EOF_OVERDUE, IDLE_SERVER, REPEAT_AFTER),)
    ours, theirs = _tcp_pair()
    address = address_text(ours.getsockname())
    _, watch = _wait_for_eof(ours, theirs, "client_address", address, scale=1.0, known=owed)
    assert watch.step == pytest.approx(0.05)
    assert watch.symptoms == [] and "the EOF was overdue" in watch.phase_notes[0]
    assert "deadline shortened from 0.15s to 0.05s" in watch.notes[0]
    assert "1 earlier cases of this implementation owed an EOF" in watch.notes[0]


def test_an_eof_probe_ends_once_its_eof_is_overdue() -> None:
    """``is_eof`` with a timeout shorter than the phase deadline (a probe) is watched
    too: an EOF the server owes ends it early, with the answer its timeout gives."""
    ours, theirs = _tcp_pair()
    address = address_text(ours.getsockname())
    # Scale 0.3: the EOF is due after 0.075 s, the phase deadline is 0.9 s.
    waited, watch = _wait_for_eof(ours, theirs, "client_address", address, probe=0.85)
    notes = watch.phase_notes
    assert waited < 0.6 and "the EOF was overdue" in notes[0]


@pytest.mark.parametrize("answered", [True, False])
def test_children_that_all_answered_from_idle_loops_are_an_idle_server(answered: bool) -> None:
    """A server run in a child (its loop idle in select()) is idle when the child's
    stack was read; a child that could not be judged may have a handler at work."""
    children = (lambda scale: "serve_forever") if answered else (lambda scale: None)
    watch = ClientWatch(PhaseClock(children=children), lambda: 0)
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        assert watch._stuck() == (IDLE_SERVER if answered else "")
    finally:
        child.kill()
        child.wait(10)


def test_an_unbound_unix_clients_eof_is_overdue_by_its_peer(tmp_path: Path) -> None:
    """An unbound Unix client's address is '' like every other's: its request is found
    by its socket's peer, the accepted socket get_request() recorded."""
    path = str(tmp_path / "s")
    with socket.socket(socket.AF_UNIX) as listener:
        listener.bind(path)
        listener.listen()
        listener.settimeout(5)
        ours = socket.socket(socket.AF_UNIX)
        ours.settimeout(5)
        ours.connect(path)
        theirs, _ = listener.accept()
    inode = request_inode(theirs)
    waited, watch = _wait_for_eof(ours, theirs, "client_address", "", "inode", inode)
    notes = watch.phase_notes
    assert waited < 0.6 and "the EOF was overdue" in notes[0]


def test_requests_ended_needs_every_request_from_each_address() -> None:
    def event(seq: int, name: str, conn: int, **detail: object) -> LifecycleEvent:
        return LifecycleEvent(seq, name, "return", conn, seq / 10, 1, 1, "t", False, detail=detail)

    taken = [event(0, "get_request", 1, client_address="127.0.0.1:5000"),
             event(1, "get_request", 2, client_address="127.0.0.1:5000")]  # fmt: skip
    one = [*taken, event(2, "shutdown_request", 1)]
    assert requests_ended(one, [("127.0.0.1", 5000)]) is None  # the second request is open
    # Ended when the last of them ended.
    assert requests_ended([*one, event(3, "shutdown_request", 2)], [("127.0.0.1", 5000)]) == 0.3
    assert requests_ended(one, [("127.0.0.1", 5001)]) is None  # no request from there
    assert requests_ended([event(0, "get_request", 1, client_address="")], [""]) is None


def test_a_later_client_finds_its_eof_overdue_from_the_end_of_its_request() -> None:
    """The silence that makes an EOF overdue counts from the request's end (the log's
    time), not from when the client began to wait: a client that starts waiting long
    after its request ended stops after one step."""
    ours, theirs = _tcp_pair()
    # At scale 2 the EOF is due 2 * EOF_AFTER_END (0.3 s) after the request ended, and
    # a step is 2 * CLIENT_STEP (0.2 s).
    address = address_text(ours.getsockname())
    waited, watch = _wait_for_eof(ours, theirs, "client_address", address, scale=2.0, late=0.8)
    notes = watch.phase_notes
    # At the first step: a wait that counted the silence from its own start could not
    # end before 2 * EOF_AFTER_END (at its second step, 0.4 s).
    assert waited < 2 * EOF_AFTER_END, waited
    assert "the EOF was overdue" in notes[0]


def test_a_later_wait_like_one_the_case_already_ended_costs_little() -> None:
    watch = ClientWatch(PhaseClock(scale=0.3), lambda: 7)
    first = _timed_silent_recv(watch, 5.0)  # ends at the 0.9 s phase deadline
    second = _timed_silent_recv(watch, 5.0)
    assert first >= 0.85 and second < 0.7
    assert "an earlier wait of this case that had already ended so" in watch.notes[0]


def test_after_an_overdue_eof_a_wait_of_another_phase_on_the_idle_server_costs_little() -> None:
    """A case whose server owed a client its EOF, and is still idle: a later wait of
    another phase (a capture waiting to see that FIN on the wire) ends once silent for
    the quick stall, as the earlier one did.  Before any wait of the case ended, it
    does not."""
    ours, theirs = _tcp_pair()
    _, watch = _wait_for_eof(ours, theirs, "client_address", address_text(ours.getsockname()))
    fresh = ClientWatch(watch.clock, lambda: 7)
    for each in (watch, fresh):
        each.still()  # sampled now: the silence is measured from here
    assert not threading.Event().wait(QUICK_STALL_AFTER)
    assert not fresh.ends(SERVER_EVENT, 0.1, 5.0, "an event wait", quiet=0.1)
    assert watch.ends(SERVER_EVENT, 0.1, 5.0, "an event wait", quiet=0.1)
    assert "an earlier wait of this case that had already ended so" in watch.notes[-1]


def test_a_known_event_wait_symptom_ends_a_default_wait_early() -> None:
    ctx = _waiting_context((KnownHang(SERVER_EVENT, IDLE_SERVER, REPEAT_AFTER),))
    try:
        assert _timed(lambda: ctx.wait_events("handle", 1)) < 4.0  # not 5 s
        assert "deadline shortened from 5s" in ctx.watch.notes[0]
        # A wait given its own timeout expects something timed: never shortened.
        assert _timed(lambda: ctx.wait_events("handle", 1, timeout=1.6)) >= 1.5
    finally:
        ctx.log.close()


def test_client_stalls_count_only_in_failing_cases() -> None:
    symptoms = Symptoms()
    stall = {"client_stalls": [{"phase": CLIENT_REPLY, "signature": STUCK}]}
    passed = _case(THREADING_ECHO).record("m", Verdict.PASS, 1.0, evidence=stall)
    failed = _case(THREADING_ECHO).record("m", Verdict.FAIL, 1.0, evidence=stall)
    for _ in range(REPEAT_AFTER):
        symptoms.record(passed)
    assert symptoms.known("m") == ()
    for _ in range(REPEAT_AFTER):
        symptoms.record(failed)
    assert symptoms.known("m") == (KnownHang(CLIENT_REPLY, STUCK, REPEAT_AFTER),)


def test_a_known_client_symptom_never_shortens_a_correct_server() -> None:
    known = (KnownHang(CLIENT_EOF, STUCK, REPEAT_AFTER),)
    result = execute(
        load_implementation("reference"), _case(THREADING_ECHO), CaseOptions(known_hangs=known)
    ).result
    assert result.verdict is Verdict.PASS
    assert "deadline_shortened" not in result.evidence
    assert "client_stalls" not in result.evidence


def test_every_handler_hanging_costs_the_swarm_timeout_once(tmp_path: Path) -> None:
    impl = load_implementation(str(by_name("every_handler_hangs").write(tmp_path)))
    known = (KnownHang(CLIENT_EOF, STUCK, REPEAT_AFTER),)

    def judge() -> tuple[Verdict, str, float]:
        result = execute(impl, _case(THREADING_ECHO), CaseOptions(known_hangs=known)).result
        evidence = result.evidence
        return result.verdict, evidence["client_wait_shortened"], evidence["phase_times"]["case"]

    # In a child, as a worker would: the hung handler threads are not daemons and would
    # keep this process from ever exiting; the child leaves with os._exit.
    call = in_main_thread(judge, timeout=60.0)
    assert call.status == "returned", call
    verdict, shortened, case_time = call.value
    assert verdict is Verdict.HANG  # as with the full wait: server_close() joins
    assert shortened.startswith("deadline shortened from 15s")
    assert case_time < 5.0  # not the swarm's 15 s


def test_a_swarm_stops_waiting_once_the_case_has_ended() -> None:
    """A dead server or a hang ended the case: its swarm returns at once, not after 10 s."""
    watch = ClientWatch(PhaseClock(), lambda: 7)
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.settimeout(10)
        endpoint = Endpoint("tcp", socket.AF_INET, socket.SOCK_STREAM, listener.getsockname())
        box: list[list[ClientResult]] = []
        swarm = threading.Thread(
            target=lambda: box.append(
                run_swarm(endpoint, [[Send(b"x"), Recv(1)]], timeout=10.0, watch=watch)
            )
        )
        swarm.start()
        accepted, _ = listener.accept()  # the client now waits for a reply that never comes
        with accepted:
            started = time.monotonic()
            watch.end()
            swarm.join(5)
            took = time.monotonic() - started
    assert not swarm.is_alive()
    assert took < 2.0  # not the swarm's 10 s
    assert [r.error for r in box[0]] == ["timeout"]
    assert watch.notes == []  # the verdict was already known: nothing to explain


@pytest.mark.parametrize("kind", ["stream", "datagram"])
def test_a_read_blocked_when_the_case_ends_is_woken_and_ends_as_its_timeout(kind: str) -> None:
    """The teardown closes the clients of an ended case and waits for its scenario: a
    read still blocked then is woken at once, and ends as a timeout (not as an EOF or
    an empty datagram the server never sent), within far less than one wait step."""
    book = Bookkeeping()
    watch = ClientWatch(PhaseClock(scale=10.0), lambda: 0, ended=book.ended)  # 1 s steps
    if kind == "stream":
        ours, theirs = _tcp_pair()
        client: StreamClient | DatagramClient = StreamClient(ours, timeout=30.0)
        read: Callable[[], object] = client.recv_until_eof  # type: ignore[union-attr]
    else:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        client = DatagramClient(ours, timeout=30.0)
        read = client.recv
    client.watch = watch
    book.clients.append(client)
    outcome: dict[str, object] = {}
    blocked = threading.Event()

    def reader() -> None:
        blocked.set()
        try:
            outcome["result"] = read()
        except BaseException as exc:
            outcome["error"] = exc

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    assert blocked.wait(5)
    _until_in_socket_call(thread)
    started = time.monotonic()
    watch.end()
    book.release()
    thread.join(5)
    took = time.monotonic() - started
    theirs.close()
    assert not thread.is_alive()
    assert isinstance(outcome.get("error"), ClientTimeout), outcome
    assert took < 0.5, took  # a step is 1 s: the close alone would leave it blocked


def _until_in_socket_call(thread: threading.Thread, timeout: float = 5.0) -> None:
    """Wait until ``thread`` is inside the socket call of a client's read (the lambda
    ``_Deadline.wait`` calls)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        frame = sys._current_frames().get(thread.ident or -1)
        if frame is not None and frame.f_code.co_name == "<lambda>":
            return
        time.sleep(0.001)
    raise AssertionError("the read never began")
