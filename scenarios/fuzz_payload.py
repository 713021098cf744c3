"""Hypothesis generates payloads: binary data and lines of random lengths in random
chunks, up to several MiB on streams; datagrams from 0 bytes to the transport's limit.

Invariant: an echo server (chunk by chunk, or line by line through ``rfile`` and a
``wfile`` of any buffer size) returns every stream payload exactly, however it was
split, and answers every datagram with exactly its first ``max_packet_size`` bytes;
every request completes its lifecycle and nothing leaks.
"""

from __future__ import annotations

from harness import Context, scenario

# ``harness.fuzz`` (Hypothesis, about 0.1 s of CPU) is imported by a case when it
# runs, not here: every process that only lists or runs other cases loads this module.

#: Seconds per case when no --fuzz-budget is given (the CI budget).
BUDGET = 0.5
#: Inputs per example (one server each), and the measured seconds per example.
STEPS = 25
COST = {"stream": 0.08, "datagram": 0.065}


@scenario(
    "fuzz.payload.stream",
    title="Random payloads in random chunks are echoed exactly",
    transports=("tcp", "unix_stream"),
    kinds=("threading",),
    checks=("lifecycle", "concurrency", "resources"),
    deadline=1800.0,
)
def stream_payloads(ctx: Context, inputs: int | None = None) -> None:
    """Binary payloads and lines of random lengths, sent in random chunks and up to
    several MiB, come back exactly; ``inputs`` runs that many instead of the budget."""
    from harness.fuzz import FuzzRun, StreamPayloadMachine, plan

    fuzz_plan = plan(ctx, BUDGET, COST["stream"], STEPS, inputs)
    FuzzRun(ctx, fuzz_plan).run(StreamPayloadMachine)


@scenario(
    "fuzz.payload.datagram",
    title="Datagrams of every size up to the limit come back cut to max_packet_size",
    transports=("udp", "udp6", "unix_dgram"),
    kinds=("threading",),
    checks=("lifecycle", "concurrency", "resources"),
    deadline=1800.0,
)
def datagram_payloads(ctx: Context, inputs: int | None = None) -> None:
    """Datagrams from 0 bytes to the transport's limit (65,507 for UDP, 65,527 for UDP
    over IPv6, 131,072 here for Unix) are answered with their first max_packet_size
    bytes, for any max_packet_size."""
    from harness.fuzz import DatagramPayloadMachine, FuzzRun, plan

    fuzz_plan = plan(ctx, BUDGET, COST["datagram"], STEPS, inputs)
    FuzzRun(ctx, fuzz_plan).run(DatagramPayloadMachine)
