"""Soak the payload fuzzers: N generated inputs against one implementation.

Usage::

    python -m harness bench soak [--inputs 100000] [--impl reference] [--seed 0]
                                      [--transports tcp,unix_stream,udp,udp6,unix_dgram]

The inputs are shared out over the payload cases (``fuzz.payload.stream`` on
tcp and unix_stream, ``fuzz.payload.datagram`` on udp, udp6 and unix_dgram),
each run in this process by the harness's own executor with an input count
instead of a time budget, so every input gets the checks of a catalogue run:
exact replies, lifecycles, handle_error, no leaked descriptors, threads or
children after each example and after each case, no hang (every call has a
deadline).  A crash ends the script.  Prints one line per case and the total:
inputs, seconds, inputs/s and the verdict; exit status 0 only if every case passed.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence

from harness._execution.discovery import discover
from harness._execution.execute import execute
from harness._model.scenario import Case, ScenarioSpec
from harness._model.settings import CaseOptions
from harness._runtime.loading import load_implementation

SCENARIOS = {
    "tcp": "fuzz.payload.stream",
    "unix_stream": "fuzz.payload.stream",
    "udp": "fuzz.payload.datagram",
    "udp6": "fuzz.payload.datagram",
    "unix_dgram": "fuzz.payload.datagram",
}


def _spec(scenario_id: str) -> ScenarioSpec:
    for spec in discover():
        if spec.id == scenario_id:
            return spec
    raise SystemExit(f"scenario {scenario_id!r} not found")


def soak(impl_spec: str, inputs: int, seed: int, transports: Sequence[str]) -> bool:
    """Run ``inputs`` inputs over ``transports``; print the figures; True if all passed."""
    impl = load_implementation(impl_spec)
    share, extra = divmod(inputs, len(transports))
    total_inputs, started, ok = 0, time.monotonic(), True
    for n, transport in enumerate(transports):
        spec = _spec(SCENARIOS[transport])
        count = share + (1 if n < extra else 0)
        case = Case(spec, transport, spec.kinds[0], {"inputs": count})
        t0 = time.monotonic()
        result = execute(impl, case, CaseOptions(seed=seed)).result
        seconds = time.monotonic() - t0
        done = int(result.evidence.get("notes", {}).get("fuzz", {}).get("inputs", 0))
        total_inputs += done
        ok &= result.verdict.value == "pass"
        print(
            f"{case.id:60} {result.verdict.value:5} {done:8,} inputs {seconds:8.1f}s "
            f"{done / seconds:8.0f} inputs/s",
            flush=True,
        )
        for finding in result.findings[:3]:
            print(f"    {finding.check}: {finding.message}")
            transcript = finding.evidence.get("transcript")
            if transcript:
                print("    " + str(transcript).replace("\n", "\n    "))
    seconds = time.monotonic() - started
    verdict = "pass" if ok else "FAIL"
    summary = {
        "impl": impl_spec,
        "inputs": total_inputs,
        "seconds": round(seconds, 1),
        "inputs_per_s": round(total_inputs / seconds),
        "verdict": verdict,
    }
    print(
        f"total: {total_inputs:,} inputs in {seconds:.1f}s "
        f"({total_inputs / seconds:,.0f} inputs/s) against {impl_spec}: {verdict}"
    )
    print(json.dumps(summary))
    return ok


def main(argv: Sequence[str] | None = None) -> int:
    """Parse arguments, soak, return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", type=int, default=100_000)
    parser.add_argument("--impl", default="reference")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--transports", default=",".join(SCENARIOS))
    args = parser.parse_args(argv)
    transports = [t for t in args.transports.split(",") if t]
    unknown = [t for t in transports if t not in SCENARIOS]
    if unknown:
        parser.error(f"unknown transport(s) {', '.join(unknown)}; expected {', '.join(SCENARIOS)}")
    return 0 if soak(args.impl, args.inputs, args.seed, transports) else 1


if __name__ == "__main__":
    sys.exit(main())
