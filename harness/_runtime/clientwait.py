"""Client waits as phases: a reply or an EOF that a stuck server will never send.

When every handler of an implementation hangs, each client of each case waits
out its own timeout (5-15 s).  The clients of a case therefore wait in steps
and ask this watch, between steps, whether they may stop:

* a wait whose own timeout is longer than its phase's full deadline
  (``CLIENT_PHASE_DEADLINE``, sized to what a correct server needs) ends at
  that deadline once the client received nothing and no lifecycle event
  arrived for that long: the same ``ClientTimeout`` as its own timeout, noted
  in the evidence (``client_phase_deadline``);
* a wait that runs its full (phase) deadline while no lifecycle event arrived
  for ``STALL_AFTER`` is a *symptom*: its phase (``client reply``/``client EOF``)
  and the stuck signature (the implementation's threads outside its idle
  loops, or ``IDLE_SERVER`` when there are none) go into the evidence
  (``client_stalls``) and the controller counts them like hangs
  (``_control.symptoms``);
* once ``REPEAT_AFTER`` cases of the implementation showed the same symptom,
  a later wait of that phase ends after the phase's short deadline -- only if
  no lifecycle event arrived for as long and the stacks show the very same
  stuck signature -- and a later wait of the same case that looks the same
  as one already ended early ends after ``QUICK_STALL_AFTER``.  Each ends as
  the full wait would have (the client's own ``ClientTimeout``, a swarm
  client's ``timeout``), so the scenario judges it the same way; the case's
  evidence says ``deadline_shortened`` and why.

A correct implementation has no symptoms and answers well within the phase
deadline, so its clients never stop early.
A full event log (``events.overflow``: a request loop without end) makes the
case fail whatever its clients get, so it ends their waits too.

Once the executor has ended the case (a dead server or a hang: the verdict is
known), ``end()`` stops every waiting client at once, so the scenario thread
finishes instead of outliving its case.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Collection, Iterable
from typing import Any

from harness._model.phases import (
    CLIENT_EOF,
    CLIENT_PHASE_DEADLINE,
    EOF_AFTER_END,
    EOF_OVERDUE,
    IDLE_POLLS,
    QUICK_STALL_AFTER,
    STALL_AFTER,
    short_deadline,
)
from harness._model.records import LifecycleEvent
from harness._runtime.deadline import CALLS_OUT, PhaseClock, chains
from harness._runtime.instrument import address_text
from harness._runtime.resources import live_children
from harness._runtime.unixpeer import peer_inode

#: How often a waiting client asks whether it may stop (seconds, before scale): the
#: shortest early end (``QUICK_STALL_AFTER``) should not wait a whole step more.
CLIENT_STEP = 0.1

#: The stuck signature of a server none of whose threads is in its code outside the
#: idle serving loops: the reply or EOF will not come from a handler still at work
#: (a request kept open, a reply dropped). Matched like any other signature.
IDLE_SERVER = "(idle server)"


class ClientWatch:
    """The client waits of one case (thread-safe: clients wait in any thread)."""

    def __init__(
        self,
        clock: PhaseClock,
        progress: Callable[[], int],
        ended: threading.Event | None = None,
        overflowed: Callable[[], bool] = lambda: False,
        events: Callable[[], Iterable[LifecycleEvent]] = tuple,
    ) -> None:
        self.clock = clock
        # The case's lifecycle events so far: whether a client's request has ended.
        self._events = events
        # True once the event log is full: the case fails (``events.overflow``)
        # whatever the clients get, so their waits are over.
        self._overflowed = overflowed
        #: Set when the executor ended the case (``end``).
        self.ended = ended if ended is not None else threading.Event()
        self._wakers: list[Callable[[], None]] = []
        self._progress = progress
        self._lock = threading.Lock()
        self._seen = -1
        self._since = time.monotonic()
        #: The implementation already owed an EOF in an earlier case (``EOF_OVERDUE``).
        self._owed = clock.known.get((EOF_OVERDUE, IDLE_SERVER))
        #: How often a waiting client asks (seconds): as often as an owed EOF is due.
        step = min(CLIENT_STEP, short_deadline(EOF_OVERDUE)) if self._owed else CLIENT_STEP
        self.step = step * clock.scale
        #: ``(phase, stuck signature)`` of full waits on a server that did nothing.
        self.symptoms: list[tuple[str, str]] = []
        #: Why waits were shortened (evidence ``deadline_shortened``).
        self.notes: list[str] = []
        #: Waits that ended at their phase deadline (evidence ``client_phase_deadline``).
        self.phase_notes: list[str] = []
        #: ``(phase, stuck signature)`` of this case's waits that ended early.
        self._ended: set[tuple[str, str]] = set()

    @property
    def active(self) -> bool:
        """False with phase deadlines off: clients then wait as they always did."""
        return self.clock.enabled

    def end(self) -> None:
        """The case has ended: every client still waiting stops at once."""
        self.ended.set()
        with self._lock:
            wakers = list(self._wakers)
        for wake in wakers:
            wake()

    def wake_on_end(self, wake: Callable[[], None]) -> Callable[[], None]:
        """Call ``wake`` (from any thread) when the case ends; returns the undo."""
        with self._lock:
            self._wakers.append(wake)

        def undo() -> None:
            with self._lock:
                self._wakers.remove(wake)

        return undo

    def still(self) -> float:
        """Seconds since the last lifecycle event that was not an idle poll."""
        with self._lock:
            count, now = self._progress(), time.monotonic()
            if count != self._seen:
                self._seen, self._since = count, now
            return now - self._since

    def ends(
        self,
        phase: str,
        waited: float,
        full: float,
        what: str,
        quiet: float | None = None,
        peers: Collection[Any] = (),
    ) -> bool:
        """Whether a client that waited ``waited`` of its ``full`` seconds in ``phase``
        may stop now (its outcome is the same timeout), noting why if it may.
        ``quiet``: how long the client has received nothing (None: not known, and
        then only a known symptom ends the wait).  ``peers``: the local addresses
        of the waiting stream clients, by which their requests are found."""
        if self.ended.is_set():
            return True  # the verdict is known: the rest of the wait would add nothing
        if self.active and self._overflowed():
            # A request loop without end fills the log in a second or two; its
            # clients would wait out their full timeouts while it spins on.
            with self._lock:
                if not self.notes:
                    self.notes.append(
                        f"deadline shortened from {full:g}s to {waited:.1f}s: the event log "
                        "was full (events.overflow), so the case fails whatever the clients get"
                    )
            return True
        still = self.still()  # sampled on every step: a full wait needs it too
        if not self.active:
            return False
        return (
            self._repeat_ends(phase, waited, full, what, still)
            or self._known_ends(phase, waited, full, what, still)
            or self._eof_overdue(phase, waited, full, what, still, quiet, peers)
            or self._phase_deadline(phase, waited, full, what, still, quiet)
        )

    def _eof_overdue(
        self,
        phase: str,
        waited: float,
        full: float,
        what: str,
        still: float,
        quiet: float | None,
        peers: Collection[Any],
    ) -> bool:
        """Whether an EOF the server owes is overdue: it ended the request of every
        waiting client (``shutdown_request()`` returned, so a correct server's FIN
        is already here), no lifecycle event came for ``EOF_AFTER_END`` since, the
        client received nothing in this wait, and no thread of the server is in its code.
        Whatever the wait's own timeout: a correct server never gets here (its FIN
        is in the client's buffer before ``shutdown_request()`` returns), so a short
        probe (``is_eof``) ends as early, with the answer its timeout would give.

        The silence is read from the event log's own times: from the end of the
        request, not from when this client began to wait (a later client of the
        same case finds its EOF just as overdue), and not from when a waiting client
        last sampled the log (up to a step late).

        Once earlier cases of the implementation owed an EOF (``EOF_OVERDUE``), it is
        overdue after that phase's short deadline; the first such EOF of a run is a
        symptom (``client_stalls``) for the controller to count."""
        full = EOF_AFTER_END * self.clock.scale
        due = min(full, short_deadline(EOF_OVERDUE) * self.clock.scale) if self._owed else full
        if (
            phase != CLIENT_EOF
            or not peers
            or quiet is None
            or quiet < self.step  # a whole step with nothing received: no client still reading
            or still + self.step < due  # sampled: at most a step short of the real silence
        ):
            return False
        events = list(self._events())
        ended = requests_ended(events, peers)
        if ended is None:
            return False
        silent = time.monotonic() - max(ended, last_progress(events))
        if silent < due or self._stuck() != IDLE_SERVER:
            return False
        with self._lock:
            self._ended.add((phase, IDLE_SERVER))
            if self._owed is None:
                self.symptoms.append((EOF_OVERDUE, IDLE_SERVER))
            else:
                self.notes.append(
                    f"deadline shortened from {full:g}s to {due:g}s: {what} found its EOF "
                    f"overdue, and {self._owed.cases} earlier cases of this implementation "
                    "owed an EOF the same way"
                )
            self.phase_notes.append(
                f"{what} ended after {waited:.1f}s of its {full:g}s timeout: the server had "
                f"ended its request (shutdown_request() returned), and for {silent:.2f}s "
                "since, no lifecycle event came, nothing was received and no server thread "
                "was at work: the EOF was overdue"
            )
        return True

    def _repeat_ends(self, phase: str, waited: float, full: float, what: str, still: float) -> bool:
        """Whether the wait may end as one of this case's own waits already ended (at
        its phase deadline, or as a known symptom): the same phase and stuck stacks,
        and no lifecycle event for ``QUICK_STALL_AFTER``.  A case whose every batch of
        clients waits for the same missing EOF pays that wait once.  On a server still
        idle (``IDLE_SERVER``) a wait of any phase ends so after one of any phase did:
        nothing of the server is at work, and it has already left a wait of this case
        unanswered (an EOF it owed, say, which a capture then waits to see on the wire)."""
        quick = QUICK_STALL_AFTER * self.clock.scale
        if waited < quick or still < quick:
            return False
        idle_before = any(s == IDLE_SERVER for _, s in self._ended)
        if not idle_before and not any(p == phase for p, _ in self._ended):
            return False
        signature = self._stuck()
        same = (phase, signature) in self._ended or (signature == IDLE_SERVER and idle_before)
        if not signature or not same:
            return False
        with self._lock:
            self.notes.append(
                f"deadline shortened from {full:g}s to {waited:.1f}s: {what} got nothing in "
                f"{phase} and no lifecycle event for {still:.1f}s, with the same stacks as "
                "an earlier wait of this case that had already ended so"
            )
        return True

    def _phase_deadline(
        self, phase: str, waited: float, full: float, what: str, still: float, quiet: float | None
    ) -> bool:
        """Whether the wait ran out the full deadline of its phase (``CLIENT_PHASE_DEADLINE``,
        shorter than the client's own timeout): nothing received and no lifecycle event
        for that long, and no handler hook running code of the scenario's (which may
        take as long as it likes).  Like a full wait, it is a symptom (``expired``)."""
        limit = CLIENT_PHASE_DEADLINE * self.clock.scale
        if quiet is None or full <= limit or min(quiet, still) < limit:
            return False
        # One look at the stacks (each asks the children too) serves every test here.
        now = self.clock.look()
        if any(chain.endswith(CALLS_OUT) for chain in chains(now[0])):
            return False  # a handler hook at work (a scenario's slow handler): not silence
        signature = self._stuck(now)
        if not signature:
            return False  # handlers in child processes may be at work: no stack shows it
        self.expired(phase, signature)
        with self._lock:
            self._ended.add((phase, signature))
            self.phase_notes.append(
                f"{what} ended after {waited:.1f}s of its {full:g}s timeout: the {phase} "
                f"phase deadline ({limit:g}s) passed with nothing received and no "
                f"lifecycle event for {still:.1f}s"
            )
        return True

    def _known_ends(self, phase: str, waited: float, full: float, what: str, still: float) -> bool:
        """Whether the wait may end as a known symptom: earlier cases waited out the
        same phase with the same stacks, and no lifecycle event came for the phase's
        short deadline."""
        known = self.clock.known
        if not any(p == phase for p, _ in known):
            return False
        short = min(full, short_deadline(phase) * self.clock.scale)
        if waited < short or still < short:
            return False
        signature = self._stuck()
        match = known.get((phase, signature)) if signature else None
        if match is None:
            return False
        note = (
            f"deadline shortened from {full:g}s to {waited:.1f}s: {what} got nothing in "
            f"{phase}, no lifecycle event for {still:.1f}s and {match.cases} earlier cases "
            f"of this implementation waited out {phase} with the same stacks"
        )
        with self._lock:
            self._ended.add((phase, signature))
            self.notes.append(note)
        return True

    def expired(self, phase: str, stuck: str | None = None) -> None:
        """A client waited out its full timeout in ``phase``: a symptom if the server
        did nothing meanwhile (its threads stuck in its code, or all idle).
        ``stuck``: ``_stuck()`` as the caller just found it (default: looked up now)."""
        if not self.active or self.still() < STALL_AFTER * self.clock.scale:
            return
        signature = self._stuck() if stuck is None else stuck
        if not signature:
            return
        with self._lock:
            self.symptoms.append((phase, signature))

    def _stuck(self, looked: tuple[str, bool] | None = None) -> str:
        """Where the implementation's threads are stuck (``stuck_signature`` of the
        stacks ``looked`` at, default: now, ``PhaseClock.look``), or ``IDLE_SERVER``
        when none is in its code -- unless the process has live children that could
        not all be judged: then "", as handlers may be at work in them (a process
        pool) where no stack shows it, and the wait is no symptom.  Children that
        all answered from idle serving loops (a server run in a child) are idle."""
        signature, judged = self.clock.look() if looked is None else looked
        stuck = self.clock.stuck_signature(signature)
        if stuck:
            return stuck
        return IDLE_SERVER if judged or not live_children() else ""


def requests_ended(events: Iterable[LifecycleEvent], peers: Collection[Any]) -> float | None:
    """When the server had ended the request of each client in ``peers``: the time the
    last of their requests reached the end of ``shutdown_request()``; None while one
    is open, or when a client's requests are not known.

    A client is its local address (an inet or a bound Unix client's), which
    ``get_request()`` returned as the client's, or its socket (an unbound Unix
    client, whose address ``''`` tells no clients apart), whose peer is the request's
    accepted socket (``unixpeer``)."""
    wanted = [_client_key(peer) for peer in peers]
    if not all(wanted):
        return None
    taken: dict[str, list[int]] = {}
    ended: dict[int, float] = {}
    for event in events:
        if event.phase != "return" or event.conn is None:
            continue
        if event.name == "get_request":
            for key in (event.detail.get("client_address"), _inode_key(event.detail.get("inode"))):
                if isinstance(key, str) and key in wanted:
                    taken.setdefault(key, []).append(event.conn)
        elif event.name == "shutdown_request":
            ended[event.conn] = event.t
    if not all(key in taken and all(conn in ended for conn in taken[key]) for key in wanted):
        return None
    return max(ended[conn] for key in wanted for conn in taken[key])


def _client_key(peer: Any) -> str:
    """How a waiting client's requests are found in the log ("": they cannot be)."""
    if isinstance(peer, socket.socket):
        return _inode_key(peer_inode(peer))
    address = address_text(peer)
    return address if isinstance(address, str) else ""


def _inode_key(inode: Any) -> str:
    return f"unix socket {inode}" if isinstance(inode, int) and inode else ""


def last_progress(events: Iterable[LifecycleEvent]) -> float:
    """The time of the last event that was not an idle poll (0.0: none)."""
    return max((event.t for event in events if event.name not in IDLE_POLLS), default=0.0)
