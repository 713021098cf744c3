"""Supervising worker processes: deadlines, hangs, crashes, replacement.

Each worker runs in its own session (process group), so killing the group
also ends any children a forking server left behind.  A case whose worker does
not report by the hard deadline is a ``hang`` (after faulthandler's stack dump
is collected); a worker that dies mid-case is a ``crash``.  Either way the
worker is replaced and the run goes on.
"""

from __future__ import annotations

import json
import os
import selectors
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness._control.agents import parse_spec, worker_command
from harness._model.errors import LoadError
from harness._model.phases import KnownHang
from harness._model.plan import CaseRef
from harness._model.records import CaseResult, Verdict
from harness._model.settings import CaseOptions
from harness._runtime.tempdirs import LEDGER, remove_listed

#: Extra time the supervisor allows beyond a case's own deadline (teardown, leak grace).
HARD_DEADLINE_MARGIN = 15.0


class Worker:
    """One worker process bound to one implementation."""

    def __init__(
        self,
        impl: str,
        options: CaseOptions,
        scenario_dirs: list[str],
        start_timeout: float = 60.0,
        spawned: Callable[[Worker], None] | None = None,
        plan: dict[str, Any] | None = None,
    ) -> None:
        """Start the worker and wait until it is ready; ``spawned(self)`` is called once
        its process runs, before that wait, so that a stop can kill a worker still
        starting (its work directory is removed only by ``kill``).

        With ``plan`` (``select`` and ``profile``) the worker also answers what the
        probe process would (``self.plan``): a run's first worker saves it a process.
        A start that fails raises ``LoadError``, one line naming what was being loaded.
        """
        self.impl = impl
        spec = parse_spec(impl)
        command = worker_command(spec)
        self.workdir = Path(tempfile.mkdtemp(prefix="sockspec-worker-"))
        read_fd, write_fd = os.pipe()
        config = {
            "impl": spec.module,
            "label": impl,
            "patch": spec.patch,
            "options": options.to_json(),
            "scenario_dirs": scenario_dirs,
            "result_fd": write_fd,
            "workdir": str(self.workdir),
            "parent": os.getpid(),
            **({"plan": plan} if plan is not None else {}),
        }
        with open(self.workdir / "worker.err", "wb") as err:  # the child keeps its own copy
            self.proc = subprocess.Popen(
                [*command, json.dumps(config)],
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=err,
                pass_fds=(write_fd,),
                start_new_session=True,
                cwd=os.getcwd(),
                env=worker_env(),
            )
        os.close(write_fd)
        self._reader = os.fdopen(read_fd, "rb", buffering=0)
        self._buffer = b""
        self._eof = False
        self.scale = options.deadline_scale
        if spawned is not None:
            spawned(self)
        try:
            ready = self._ready(start_timeout)
        except BaseException:  # it failed to start, or Ctrl-C: no worker is left behind
            self.kill()
            raise
        self.features = frozenset(ready.get("features", ()))
        self.file: str | None = ready.get("file")
        self.plan: dict[str, Any] | None = ready.get("plan")

    def _ready(self, timeout: float) -> dict[str, Any]:
        """The ready message; else a LoadError naming what was being loaded."""
        deadline = time.monotonic() + timeout
        what = f"implementation {self.impl!r}"
        while True:
            message = self._receive(max(0.0, deadline - time.monotonic()))
            if message is None or message.get("type") != "loading":
                break
            what = str(message.get("what", what))
        if message is not None and message.get("type") == "ready":
            return message
        if message is not None:  # fatal: the loader's own one-line error
            error = str(message.get("error") or "the worker failed")
        else:
            error = not_loaded(self.proc, what, timeout, self._stderr_tail(), "worker")
        raise LoadError(error.strip().splitlines()[-1])

    def run(self, case: CaseRef, known: tuple[KnownHang, ...] = ()) -> tuple[CaseResult, bool]:
        """Run one case (told of the ``known`` hangs of this implementation);
        returns the result and whether the worker is still usable."""
        started = time.monotonic()
        try:
            self._command({"id": case.id, "known_hangs": [k.to_json() for k in known]})
        except OSError:
            return _result(
                case, self.impl, Verdict.CRASH, started, "worker died before the case"
            ), False
        limit = case.spec.deadline * self.scale + HARD_DEADLINE_MARGIN
        deadline = started + limit
        while True:
            message = self._receive(max(0.0, deadline - time.monotonic()))
            if message is None:
                return self._lost(case, started, limit), False
            if message.get("type") == "result":
                result = CaseResult.from_json(message["result"])
                return result, not message.get("tainted") and self.alive()
            if message.get("type") == "fatal":
                raise LoadError(str(message.get("error")))

    def _lost(self, case: CaseRef, started: float, limit: float) -> CaseResult:
        """The worker stopped answering: a crash if it died, else a hang."""
        code = self.proc.poll()
        if code is None and self._eof:
            # The pipe closes a moment before the exiting process can be reaped.
            try:
                code = self.proc.wait(5.0)
            except subprocess.TimeoutExpired:
                code = None
        output = read_tail(self.workdir / "case.out")
        if code is not None:
            how = (
                f"killed by {signal.Signals(-code).name}"
                if code < 0
                else f"exited with status {code}"
            )
            evidence = {"output": output} if output else {}
            self.kill()
            return _result(
                case, self.impl, Verdict.CRASH, started, f"worker process {how}", evidence
            )
        stacks = self._dump_stacks()
        self.kill()
        evidence = {"stacks": stacks, **({"output": output} if output else {})}
        reason = f"no result within the hard deadline of {limit:g}s"
        return _result(case, self.impl, Verdict.HANG, started, reason, evidence)

    def _dump_stacks(self) -> str:
        try:
            os.kill(self.proc.pid, signal.SIGUSR1)
        except OSError:
            return ""
        path = self.workdir / "stacks.txt"
        deadline = time.monotonic() + 2.0
        size = -1
        while time.monotonic() < deadline:  # wait for the dump to stop growing
            current = path.stat().st_size if path.exists() else 0
            if current and current == size:
                break
            size = current
            time.sleep(0.1)
        return read_tail(path)

    def _command(self, message: dict[str, Any]) -> None:
        if self.proc.stdin is None:
            raise OSError("worker has no command pipe")
        self.proc.stdin.write((json.dumps(message) + "\n").encode())
        self.proc.stdin.flush()

    def _receive(self, timeout: float) -> dict[str, Any] | None:
        deadline = time.monotonic() + timeout
        with selectors.DefaultSelector() as sel:
            sel.register(self._reader, selectors.EVENT_READ)
            while b"\n" not in self._buffer:
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                try:
                    if not sel.select(min(left, 0.25)):
                        # A forked child may hold the pipe open after the worker died.
                        if self.proc.poll() is not None:
                            self._eof = True
                            return None
                        continue
                    chunk = self._reader.read(65536)
                except (OSError, ValueError):  # killed meanwhile (a stop): the pipe is closed
                    self._eof = True
                    return None
                if not chunk:
                    self._eof = True
                    return None
                self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        message: dict[str, Any] = json.loads(line)
        return message

    def alive(self) -> bool:
        """True while the worker process runs."""
        return self.proc.poll() is None

    def _stderr_tail(self) -> str:
        return read_tail(self.workdir / "worker.err")

    def close(self) -> None:
        """Ask the worker to finish, then make sure its whole group is gone."""
        try:
            if self.proc.stdin:
                self.proc.stdin.close()
            self.proc.wait(5.0)
        except (OSError, subprocess.TimeoutExpired):
            pass
        self.kill()

    def kill(self) -> None:
        """Kill the worker's process group (with any children) and reap the worker."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except OSError:
            pass
        try:
            self.proc.wait(10.0)
        except subprocess.TimeoutExpired:
            pass
        self._reader.close()
        if self.proc.stdin:
            try:
                self.proc.stdin.close()
            except OSError:
                pass
        # The worker's case directories (socket files) are listed in its ledger.
        remove_listed(str(self.workdir / LEDGER))
        _remove_tree(self.workdir)


def worker_env(**extra: str) -> dict[str, str]:
    """The environment of a worker or probe: ours, with this harness first on the path."""
    root = str(Path(__file__).resolve().parents[2])
    existing = os.environ.get("PYTHONPATH", "")
    path = root + (os.pathsep + existing if existing else "")
    return {**os.environ, "PYTHONPATH": path, **extra}


def not_loaded(
    proc: subprocess.Popen[bytes], what: str, timeout: float, stderr: str, role: str
) -> str:
    """One line: why the ``role`` process (probe or worker) gave no answer while
    loading ``what``: how it ended and its last line of stderr, or that it blocked."""
    try:
        code: int | None = proc.wait(1.0)  # the pipe closes a moment before the exit
    except subprocess.TimeoutExpired:
        code = None
    if code is None:
        return f"loading {what} did not finish within {timeout:g}s (an import that blocks?)"
    how = f"killed by {signal.Signals(-code).name}" if code < 0 else f"exited with status {code}"
    last = [line.strip() for line in stderr.splitlines() if line.strip()][-1:]
    tail = f": {last[0][:200]}" if last else ""
    return f"loading {what} ended the {role} process ({how}){tail}"


def read_tail(path: Path, limit: int = 20_000) -> str:
    try:
        return path.read_bytes()[-limit:].decode("utf-8", "replace")
    except OSError:
        return ""


def _remove_tree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def _result(
    case: CaseRef,
    impl: str,
    verdict: Verdict,
    started: float,
    reason: str,
    evidence: dict[str, Any] | None = None,
) -> CaseResult:
    return case.record(impl, verdict, time.monotonic() - started, evidence=evidence, reason=reason)
