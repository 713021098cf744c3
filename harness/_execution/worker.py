"""The worker process: loads one implementation and runs the cases it is sent.

Started by the supervisor as ``python -m harness._execution.worker CONFIG``.  Commands
arrive as JSON lines on stdin; messages go back as JSON lines on a dedicated
descriptor (not stdout, which the implementation may write to).  The worker's
own stdout and stderr are pointed at a per-case file, so whatever the server
prints becomes evidence.  ``SIGUSR1`` makes faulthandler dump every thread's
stack, which the supervisor asks for before killing a hung worker.
"""

from __future__ import annotations

import faulthandler
import gc
import json
import os
import signal
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from harness._execution.carry import CarryBudget
from harness._execution.discovery import discover, select_cases
from harness._execution.execute import execute
from harness._execution.lifeline import tie_to_parent
from harness._execution.probe import selected
from harness._model.errors import SockspecError
from harness._model.settings import CaseOptions
from harness._runtime.childstacks import arm as arm_children
from harness._runtime.context import impl_paths
from harness._runtime.greenfork import isolate_forked_children
from harness._runtime.loading import load_implementation
from harness._runtime.tempdirs import LEDGER, keep_ledger

STDERR_TAIL = 20_000


def _send(fd: int, message: dict[str, Any]) -> None:
    data = (json.dumps(message) + "\n").encode()
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _redirect_output(path: Path) -> None:
    """Point fds 1 and 2 at ``path`` (truncated) so the next case's output lands there."""
    sys.stdout.flush()
    sys.stderr.flush()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)


def _tail(path: Path) -> str:
    try:
        data = path.read_bytes()
    except OSError:
        return ""
    return data[-STDERR_TAIL:].decode("utf-8", "replace")


def main(argv: list[str]) -> int:
    """Serve cases until stdin closes; returns the exit status."""
    config = json.loads(argv[0])
    out = int(config["result_fd"])
    workdir = Path(config["workdir"])
    keep_ledger(str(workdir / LEDGER))
    if "parent" in config:
        tie_to_parent(int(config["parent"]), str(workdir))
    stacks = open(workdir / "stacks.txt", "w")  # noqa: SIM115 - lives as long as the process
    faulthandler.register(signal.SIGUSR1, file=stacks, all_threads=True)
    # Line-buffered, write-through text streams: forked children print too.
    sys.stdout = open(1, "w", buffering=1, closefd=False)  # noqa: SIM115
    sys.stderr = open(2, "w", buffering=1, closefd=False)  # noqa: SIM115
    label = config.get("label", config["impl"])
    try:
        isolate_forked_children(config.get("patch"))
        # Named before each import, so that one that kills or blocks the process is blamed.
        _send(out, {"type": "loading", "what": f"implementation {label!r}"})
        impl = replace(load_implementation(config["impl"]), spec=label)
        _send(out, {"type": "loading", "what": "the scenarios"})
        specs = discover([Path(d) for d in config["scenario_dirs"]])
        # Forked children (a forking server's handlers) tell where they are stuck.
        arm_children(str(workdir), impl_paths(impl))
    except SockspecError as exc:
        _send(out, {"type": "fatal", "error": str(exc)})
        return 2
    cases = {c.id: c for c in select_cases(specs, (), "stress")}
    options = CaseOptions(**config["options"])
    # What is loaded by now (the implementation, the scenarios and what they import:
    # scapy, hypothesis) lives as long as the worker.  Frozen out of the collector's
    # reach, the collection a case with descriptors left makes (``settle``) scans only
    # what the cases made: 6 ms less a collection here.
    gc.freeze()
    ready = {
        "type": "ready",
        "pid": os.getpid(),
        "features": sorted(impl.features),
        "file": getattr(impl.module, "__file__", None),
    }
    if "plan" in config:  # the run's first worker also says what the run is to judge
        ready["plan"] = selected(specs, config["plan"]["select"], config["plan"]["profile"])
    _send(out, ready)
    budget = CarryBudget()  # a repeated hang need not retire the worker
    for line in sys.stdin:
        request = json.loads(line)
        case = cases.get(request["id"])
        if case is None:
            _send(out, {"type": "fatal", "error": f"unknown case {request['id']!r}"})
            return 2
        capture = workdir / "case.out"
        _redirect_output(capture)
        _send(out, {"type": "start", "id": case.id})
        # Hangs the controller saw in earlier cases (this worker may be new).
        known = tuple(request.get("known_hangs", ()))
        outcome = execute(impl, case, replace(options, known_hangs=known) if known else options)
        if os.getpid() != config["pid"]:
            os._exit(70)  # a forked child must never report as the worker
        record = outcome.result.to_json()
        output = _tail(capture)
        if output and record["verdict"] != "pass":
            record["evidence"]["output"] = output
        elif output:  # a passing case's output is mostly the injected errors' reports
            record["evidence"]["output_bytes"] = capture.stat().st_size
        tainted = outcome.tainted and not budget.carry(outcome.result)
        _send(out, {"type": "result", "result": record, "tainted": tainted})
        if tainted:
            return 0
    return 0


if __name__ == "__main__":
    # The supervisor passes its own view of our pid to guard against forked children.
    cfg = json.loads(sys.argv[1])
    cfg["pid"] = os.getpid()
    sys.exit(main([json.dumps(cfg)]))
