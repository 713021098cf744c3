"""The probe process: loads implementations and discovers scenarios for the controller.

Started by the controller as ``python -m harness._execution.probe CONFIG``
for ``list``, and for a run none of whose implementations the controller's
interpreter loads (otherwise that run's first worker answers the plan).
Implementations and scenario modules are user code; a probe that they end,
kill or block costs the controller nothing but a one-line error.  The answer
is one JSON line on a dedicated descriptor (the code may print anything to
stdout): ``loading`` messages name what is being imported (so a probe that
dies or blocks can be blamed precisely), then one ``plan`` or ``fatal``.  The
probe then ends at once, skipping the code's exit hooks.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from harness._execution.discovery import discover, select_cases
from harness._execution.lifeline import tie_to_parent
from harness._model.errors import SockspecError
from harness._model.plan import case_ref, scenario_ref
from harness._model.scenario import ScenarioSpec
from harness._runtime.loading import load_implementation


def _send(fd: int, message: dict[str, Any]) -> None:
    view = memoryview((json.dumps(message) + "\n").encode())
    while view:
        view = view[os.write(fd, view) :]


def plan(config: dict[str, Any], out: int) -> dict[str, Any]:
    """Load every implementation, discover and select the cases; the ``plan`` message."""
    impls = []
    for spec in config["impls"]:
        _send(out, {"type": "loading", "what": f"implementation {spec!r}"})
        impl = load_implementation(spec)
        file = getattr(impl.module, "__file__", None)
        impls.append({"spec": spec, "features": sorted(impl.features), "file": file})
    _send(out, {"type": "loading", "what": "the scenarios"})
    specs = discover([Path(d) for d in config["scenario_dirs"]])
    return {"type": "plan", "impls": impls, **selected(specs, config["select"], config["profile"])}


def selected(specs: Sequence[ScenarioSpec], select: Sequence[str], profile: str) -> dict[str, Any]:
    """The scenarios and the cases ``select`` picks in ``profile``, as the plan's JSON
    (the first worker of a run answers with it too: see ``harness._execution.worker``)."""
    refs = {s.id: scenario_ref(s) for s in specs}
    cases = select_cases(specs, tuple(select), profile)
    return {
        "scenarios": [r.to_json() for r in refs.values()],
        "cases": [case_ref(c, refs[c.spec.id]).to_json() for c in cases],
    }


def main(argv: list[str]) -> int:
    """Answer the controller once; returns the exit status."""
    config = json.loads(argv[0])
    out = int(config["result_fd"])
    tie_to_parent(int(config["parent"]), config.get("leftovers"))
    try:
        message = plan(config, out)
    except SockspecError as exc:
        message = {"type": "fatal", "error": str(exc)}
    _send(out, message)
    return 0


if __name__ == "__main__":
    sys.stdout.flush()
    status = main(sys.argv[1:])
    os._exit(status)  # never run the loaded code's atexit hooks or wait for its threads
