"""Hypothesis drives one server through random sequences of client and server steps.

Invariant: whatever the order of steps — clients connecting, sending in random
chunks, half-closing, resetting, staying idle past the handler's timeout;
datagrams of random sizes; ``handle_request()``, ``serve_forever()`` started
and stopped with ``shutdown()``, ``server_close()`` and a restart on the same
address — after every step each request's hooks so far follow the lifecycle,
every reply is the handler's reply (a prefix of it when the connection was cut
short), ``handle_request()`` with nobody there waits ``server.timeout``, and
at the end of each sequence every request completed its lifecycle, each raised
exception reached ``handle_error`` once, and nothing leaked.  A failure is
shrunk to a minimal sequence and reported with a transcript and a replay command.
"""

from __future__ import annotations

from harness import Context, scenario

# ``harness.fuzz`` (Hypothesis, about 0.1 s of CPU) is imported by the case when it
# runs, not here: every process that only lists or runs other cases loads this module.

#: Seconds per case when no --fuzz-budget is given (the CI budget).
BUDGET = 1.2
#: Steps per example at most, and the measured seconds per example by variant
#: (the budget becomes max_examples = budget / cost, so a seed and a budget fix the run).
STEPS = 12
COST = {
    ("tcp", "sync"): 0.14,
    ("tcp", "threading"): 0.1,
    ("tcp", "forking"): 0.16,
    ("udp", "sync"): 0.095,
    ("udp", "threading"): 0.1,
    ("udp", "forking"): 0.15,
}


@scenario(
    "fuzz.stateful",
    title="Random sequences of client and server steps keep every rule",
    transports=("tcp", "udp"),
    checks=("lifecycle", "concurrency", "resources"),
    deadline=1800.0,
)
def stateful(ctx: Context) -> None:
    """Any sequence of connects, sends, half-closes, resets, idle clients, datagrams,
    handle_request(), serve_forever()/shutdown(), server_close() and restarts keeps
    the lifecycle, reply, timeout and resource rules after every step."""
    from harness.fuzz import DatagramMachine, FuzzRun, StreamMachine, plan

    machine = StreamMachine if ctx.transport.is_stream else DatagramMachine
    cost = COST[ctx.case.transport, ctx.kind]
    FuzzRun(ctx, plan(ctx, BUDGET, cost, STEPS)).run(machine)
