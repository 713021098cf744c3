"""Phase deadlines: how long each phase of a case may take before it is a ``hang``.

A wrong server usually shows itself in one phase of a case (serving never
starts, ``shutdown()`` never returns, a handler never ends), long before the
case deadline.  Each phase therefore has its own deadline, sized to what the
phase needs on a correct server (measured on ``reference`` and the stdlib of
3.8-3.13, where these phases take milliseconds) with a wide margin for a loaded
machine, and stretched by ``SOCKSPEC_DEADLINE_SCALE`` like every deadline.
The case deadline remains the last resort.

Repeated symptoms cost once: when ``REPEAT_AFTER`` cases of one implementation
have hung in the same phase with the same stack signature, later cases may
end that phase after ``SHORT_DEADLINE`` -- but only if, at that moment, the
stacks show the very same signature; otherwise the full deadline still runs.

No I/O here: the values only (the waiting lives in ``_runtime.deadline``).
"""

from __future__ import annotations

from dataclasses import dataclass

#: Full phase deadlines in seconds, before ``SOCKSPEC_DEADLINE_SCALE``.
PHASE_DEADLINES: dict[str, float] = {
    # shutdown() returns within one poll interval (0.01 s) of an idle loop; in
    # teardown every gate is open and every client closed, so handlers end at once.
    "shutdown": 2.0,
    # the serve_forever() thread ends right after shutdown() returned.
    "serve_join": 1.0,
    # server_close() closes a socket; threading/forking servers join handlers.
    "server_close": 3.0,
    # how long a scenario may go on after its serve_forever() thread died on
    # its own (an exception, or a return without shutdown()) before the case
    # ends as ``fail``: a scenario that expects the death finishes well within it.
    "after_serve_death": 1.0,
    # the teardown's wait for a scenario still running after a dead server or a
    # hang ended the case: the verdict is known, and it had after_serve_death.
    "scenario_join_ended": 0.2,
    # leftovers winding down after a case that already ended as hang or dead
    # server (its verdict is known; leaks only add evidence).  A case that ran
    # to its end keeps the executor's full LEAK_GRACE.
    "leak_grace_ended": 0.05,
    # each teardown call after the scenario itself hung: the verdict is known,
    # a stuck implementation only adds evidence.
    "teardown_after_hang": 0.5,
    # ... and after a hang the stacks showed to be one the implementation already
    # had (a shortened deadline or a quick stall): earlier cases hold its teardown,
    # and the worker carries its stuck threads on (``carry``).  A call left running
    # ends on its own (a loop within its poll interval) or stays stuck as before.
    "teardown_after_known_hang": 0.01,
    # leftovers after such a known hang: its stuck threads never leave, and the rest
    # (a serving loop ending) adds nothing to a verdict earlier cases already had.
    "leak_grace_known_hang": 0.01,
    # ... and the teardown's wait for a scenario still running after such a known
    # hang: one blocked in a wait of its own (a raw socket's select(), a timed wait)
    # runs on to its timeout, and earlier cases already showed what it would add.
    # Its descriptors are then left unjudged (the scenario's own are no leak).
    "scenario_join_known_hang": 0.02,
}

#: Phases whose hangs count as a repeated symptom, besides the above.
CASE_PHASE = "case"

#: The phase under which repeated serve-thread deaths are counted (by how they
#: died): later deaths of the same kind end the case after ``SHORT_DEADLINE``.
DEATH_PHASE = "after_serve_death"

#: Cases that must hang the same way, each judged with the full deadline, before a
#: shortened deadline is allowed: the first occurrence always pays in full, and
#: a shortened deadline still needs the stacks to show that very hang at that
#: moment, so one is enough (with two, every symptom cost two full deadlines,
#: in parallel workers often four, before any case was spared).
REPEAT_AFTER = 1

#: The shortened deadline in seconds (before scale) for a phase with a known hang:
#: shutdown() and server_close() took at most 0.05 s on stdlib and reference over
#: 998 cases at load 17, and only a broken implementation has a known hang: one
#: whose stacks, at the end of this deadline, show that very hang.  Five poll
#: intervals of the harness's serving loops (0.01 s).
SHORT_DEADLINE = 0.05

#: Hooks a serving loop idle in ``select()`` runs on every poll (``service_actions``):
#: neither progress (``EventLog.progress``) nor a stuck thread (``PhaseClock``).
IDLE_POLLS = frozenset(("service_actions",))

#: Client waits: a scenario's client waiting for a reply, or for the server's EOF.
#: Their full deadline is the client's own timeout; a full wait that ended while
#: the server made no progress and had threads stuck in its code is a symptom
#: (``client_stalls`` in the evidence), counted like a hang.
CLIENT_REPLY = "client reply"
CLIENT_EOF = "client EOF"
CLIENT_PHASES = (CLIENT_REPLY, CLIENT_EOF)

#: The full deadline of a client's wait for a reply or an EOF, and of a scenario's
#: wait for server events (seconds, before scale), when its own timeout is longer:
#: a correct server answers in milliseconds and logs lifecycle events as it goes
#: (0.1 s at most on reference and stdlib).  The wait ends at it, as its own
#: timeout would, only once nothing was received and no lifecycle event arrived
#: for that long.
CLIENT_PHASE_DEADLINE = 3.0

#: The EOF of a stream client whose request the server has already ended is due at
#: once: a correct server shuts the socket down inside ``shutdown_request()``, so the
#: FIN is on its way before that hook returns (microseconds on loopback).  Such a
#: client's wait for EOF ends after this long (seconds, before scale) with nothing
#: received, no lifecycle event and no thread of the server in its code: the same
#: timeout as its own, as the first time too -- the server has said it is done.
#: The margin is for the FIN's last hop only: on loopback it is queued to the
#: client by the sending call itself, or by a softirq soon after.
EOF_AFTER_END = 0.15

#: An overdue EOF (above) is a symptom too: once ``REPEAT_AFTER`` cases of an
#: implementation owed one, a later client's EOF is overdue after the short deadline
#: of this phase (``SHORT_DEADLINES``), and its clients ask that often. Only the end
#: of a request the server itself reported is waited for, never a reply.
EOF_OVERDUE = "EOF overdue"

#: A scenario waiting, with the default timeout, for lifecycle events a correct
#: server logs at once (``Context.wait_events``/``wait_requests_done``): judged as a
#: client wait is (a waited-out wait on a server that did nothing is a symptom).
#: A wait given its own timeout expects something timed, and is never shortened.
SERVER_EVENT = "server event"

#: Waits, whose symptoms end a wait as its own timeout and leave the verdict to the
#: scenario: never a whole case's hang.
WAIT_PHASES = (*CLIENT_PHASES, EOF_OVERDUE, SERVER_EVENT)

#: Shortened deadlines of phases that legitimately last longer on a correct
#: server: a whole case runs up to about 2 s on reference (fuzz, 200 forks); a
#: client wait ends early only after this long with no lifecycle event at all
#: (and the same stuck stacks as the known symptom).
SHORT_DEADLINES: dict[str, float] = {
    CASE_PHASE: 5.0,
    # a scenario that expects its serve thread to die (an interrupt that leaves the
    # loop) has its checks to finish: they run the scenario's code, not a hook's.
    DEATH_PHASE: 0.1,
    CLIENT_REPLY: 0.5,
    CLIENT_EOF: 0.5,
    SERVER_EVENT: 0.5,
    # a FIN on loopback is in the client's buffer when shutdown_request() returns,
    # or a softirq later (microseconds): the first case's 0.15 s margin is for a
    # loaded host's scheduling, and this implementation already owed an EOF.
    EOF_OVERDUE: 0.05,
}


#: A whole case of an implementation with known hangs also ends once, after at
#: least ``STALL_AFTER`` seconds, its stacks match a known hang and no lifecycle
#: event has arrived for ``STALL_AFTER`` seconds.
STALL_AFTER = 1.0

#: ... or after ``QUICK_STALL_AFTER`` without a lifecycle event when every thread
#: stuck in the implementation is stuck in the same call (innermost function and
#: its caller) as a thread of a known hang, none of them calling back into a
#: handler hook (``CALLS_OUT``): a handler at work looks different.  Checked every
#: ``QUICK_STALL_STEP``.  A thread in a known hang's very call, not calling out,
#: is where that hang sat forever; a correct server's threads pass such a call in
#: microseconds (between two hooks) or wait in an idle loop, so a silence of a few
#: progress polls tells a stall from a pause.
QUICK_STALL_AFTER = 0.05
QUICK_STALL_STEP = 0.05

#: How often a stalling wait reads the event count (cheap: new rows only) until the
#: silence is long enough to look at the stacks.
PROGRESS_POLL = 0.02


def short_deadline(phase: str) -> float:
    """The shortened deadline of ``phase`` in seconds, before scale."""
    return SHORT_DEADLINES.get(phase, SHORT_DEADLINE)


@dataclass(frozen=True)
class KnownHang:
    """A phase in which the implementation already hung with this stack signature."""

    phase: str
    signature: str
    cases: int  # how many cases hung this way so far

    def to_json(self) -> list[object]:
        """``[phase, signature, cases]`` for the worker's command line."""
        return [self.phase, self.signature, self.cases]

    @classmethod
    def from_json(cls, data: list[object] | tuple[object, ...] | KnownHang) -> KnownHang:
        """Rebuild from ``to_json`` (or pass through an instance)."""
        if isinstance(data, KnownHang):
            return data
        phase, signature, cases = data
        return cls(str(phase), str(signature), int(cases))  # type: ignore[call-overload]
