"""Fuzzing tools for scenarios: Hypothesis state machines and payload generators.

``plan(ctx)`` turns the case's budget and seed into a deterministic run;
``FuzzRun`` drives a machine and turns a falsifying example into findings with
a readable transcript and a replay command.  The machines are the ones the
built-in ``fuzz.*`` cases use.
"""

from harness._fuzz.datagram import DatagramMachine
from harness._fuzz.engine import FuzzRun, plan
from harness._fuzz.payload import DatagramPayloadMachine, StreamPayloadMachine
from harness._fuzz.stream import StreamMachine

__all__ = [
    "DatagramMachine",
    "DatagramPayloadMachine",
    "FuzzRun",
    "StreamMachine",
    "StreamPayloadMachine",
    "plan",
]
