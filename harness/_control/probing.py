"""Asking a probe process what to run: implementations' features and the selected cases.

The controller never imports implementations or scenario modules itself (see
``harness._execution.probe``).  The probe gets a deadline; however it ends
without answering — an exit at import, a signal, a blocking import — becomes
one ``LoadError`` line naming what it was loading, and its whole process group
is killed before this returns.
"""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness._control.supervisor import not_loaded, read_tail, worker_env
from harness._model.errors import LoadError
from harness._model.plan import CaseRef, ScenarioRef


@dataclass(frozen=True)
class ProbedImpl:
    """An implementation as the probe found it."""

    spec: str
    features: frozenset[str]
    file: str | None = None


@dataclass(frozen=True)
class Plan:
    """The probe's answer."""

    impls: tuple[ProbedImpl, ...]
    scenarios: tuple[ScenarioRef, ...]
    cases: tuple[CaseRef, ...]


def probe(
    impls: Sequence[str],
    scenario_dirs: Sequence[Path],
    select: Sequence[str],
    profile: str,
    timeout: float,
) -> Plan:
    """Load ``impls`` and discover the scenarios in a probe process; raises LoadError."""
    read_fd, write_fd = os.pipe()
    config: dict[str, Any] = {
        "impls": list(impls),
        "scenario_dirs": [str(d) for d in scenario_dirs],
        "select": list(select),
        "profile": profile,
        "result_fd": write_fd,
        "parent": os.getpid(),
    }
    with tempfile.TemporaryDirectory(prefix="sockspec-probe-", ignore_cleanup_errors=True) as tmp:
        config["leftovers"] = tmp  # the probe removes it if we die first
        err_path = Path(tmp) / "probe.err"
        with open(err_path, "wb") as err:
            proc = subprocess.Popen(
                [sys.executable, "-m", "harness._execution.probe", json.dumps(config)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=err,
                pass_fds=(write_fd,),
                start_new_session=True,
                env=worker_env(),
            )
        os.close(write_fd)
        silence = ""
        try:
            with os.fdopen(read_fd, "rb", buffering=0) as reader:
                answer, what = _answer(reader, proc, time.monotonic() + timeout)
            if answer is None:  # told before the kill below, which would hide how it ended
                silence = not_loaded(proc, what, timeout, read_tail(err_path), "probe")
        finally:
            _kill_group(proc)
        if answer is None:
            raise LoadError(silence)
    if answer.get("type") != "plan":
        raise LoadError(str(answer.get("error", "the probe process failed")))
    return read_plan(answer)


def _answer(
    reader: Any, proc: subprocess.Popen[bytes], deadline: float
) -> tuple[dict[str, Any] | None, str]:
    """The final message (None if none came in time) and what was last being loaded."""
    buffer, what = b"", "the implementations"
    with selectors.DefaultSelector() as sel:
        sel.register(reader, selectors.EVENT_READ)
        while True:
            while b"\n" in buffer:
                line, buffer = buffer.split(b"\n", 1)
                message = json.loads(line)
                if message.get("type") != "loading":
                    return message, what
                what = str(message.get("what", what))
            left = deadline - time.monotonic()
            if left <= 0:
                return None, what
            if not sel.select(min(left, 0.25)):
                if proc.poll() is not None:  # a forked child may hold the pipe open
                    return None, what
                continue
            chunk = reader.read(65536)
            if not chunk:
                return None, what
            buffer += chunk


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except OSError:
        pass
    try:
        proc.wait(10.0)
    except subprocess.TimeoutExpired:
        pass


def read_plan(answer: dict[str, Any]) -> Plan:
    """The plan a probe (or a run's first worker, without ``impls``) answered."""
    scenarios = {s.id: s for s in (ScenarioRef.from_json(d) for d in answer["scenarios"])}
    return Plan(
        impls=tuple(
            ProbedImpl(d["spec"], frozenset(d["features"]), d.get("file"))
            for d in answer.get("impls", ())
        ),
        scenarios=tuple(scenarios.values()),
        cases=tuple(CaseRef.from_json(d, scenarios) for d in answer["cases"]),
    )
