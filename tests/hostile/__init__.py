"""Hostile implementations and scenario files, each with the result a run must give.

Where ``tests/mutants`` holds broken implementations that the catalogue must
*catch*, this table holds inputs that attack the *harness*: code that exits,
kills itself, blocks, forks, floods stdout and stderr, prints control
characters or raises from odd places, at import or during a case.  For each,
the documented result: the exit status, the one line on stderr (for a run
that cannot start), and whether results.json is absent, complete or partial.
None may give a silent exit, a hang of the run or a traceback.

An implementation entry's ``source`` is appended to a copy of the running
interpreter's stdlib ``socketserver.py``; a scenario entry's ``source`` is the
body of a scenario in a ``--scenarios`` directory.  Either is the whole module
when it starts with ``#!alone``.
"""

from __future__ import annotations

import socketserver
from dataclasses import dataclass, field
from pathlib import Path

#: One quick case every entry selects (sync TCP, 20 clients, no injected fault).
CASE = "lifecycle.handler.order[tcp-sync-fault=none-clients=20]"
#: The case id of the scenario entries' own scenario.
OWN = "hostile.probe.case[tcp-sync]"

_SCENARIO = """
from harness import scenario

@scenario("hostile.probe.case", title="hostile", transports=["tcp"], kinds=["sync"])
def case(ctx):
    '''The server starts.'''
    ctx.server()
    {body}
"""


@dataclass(frozen=True)
class Hostile:
    """One hostile input and the result the run must give."""

    name: str
    kind: str  # "impl" or "scenario"
    source: str
    status: int
    message: str = ""  # in the one stderr line of a run that cannot start
    results: str = "complete"  # "none", "complete" or "partial"
    verdict: str = ""  # of the one case, when results exist
    env: dict[str, str] = field(default_factory=dict)

    def write(self, directory: Path) -> list[str]:
        """Write the file into ``directory``; the ``run`` arguments that use it."""
        if self.kind == "scenario":
            folder = directory / "scenarios"
            folder.mkdir()
            alone = self.source.startswith("#!alone")
            text = self.source if alone else _SCENARIO.format(body=self.source)
            (folder / f"{self.name}.py").write_text(text)
            return ["--impl", "stdlib", "--scenarios", str(folder), "--select", OWN]
        path = directory / f"hostile_{self.name}.py"
        stdlib = Path(socketserver.__file__).read_text()
        text = self.source if self.source.startswith("#!alone") else stdlib + self.source
        path.write_text(text)
        return ["--impl", str(path), "--select", CASE]


def _at_import(code: str) -> str:
    return f"#!alone\nimport os, signal, sys, threading\n{code}\n"


_RAISE_CONTROL = "raise RuntimeError('\\x1b[2J\\x1b]0;owned\\x07 \\ud800 <b>|bold|</b> `tick`')"

_FLOOD = """
import sys as _sys
_sys.stdout.write("out " * 250_000)
_sys.stderr.write("err\\x1b[31m " * 250_000)
"""

_FORK_AT_IMPORT = """
import os as _os, threading as _threading
_PIDS = _os.environ["HOSTILE_PIDS"]
for _ in range(8):  # bounded: 8 children, each blocking forever
    _pid = _os.fork()
    if _pid == 0:
        _threading.Event().wait()
    with open(_PIDS, "a") as _f:
        _f.write(f"{_pid}\\n")
"""

#: Every handler (thread or forked child) writes its pid to $HOSTILE_PIDS and blocks
#: forever: a case against it hangs, with threads (or children) that never return.
HANGING_HANDLERS = """
import os as _os, threading as _threading
def _hang(self, request, client_address, server):
    with open(_os.environ["HOSTILE_PIDS"], "a") as _f:
        _f.write(f"{_os.getpid()}\\n")
    _threading.Event().wait()
BaseRequestHandler.__init__ = _hang
"""

HOSTILE: tuple[Hostile, ...] = (
    Hostile(
        "exit0_at_import",
        "impl",
        _at_import("os._exit(0)"),
        2,
        "ended the worker process (exited with status 0)",
        "none",
    ),
    Hostile(
        "exit3_at_import",
        "impl",
        _at_import("os._exit(3)"),
        2,
        "ended the worker process (exited with status 3)",
        "none",
    ),
    Hostile(
        "sigkill_at_import",
        "impl",
        _at_import("os.kill(os.getpid(), signal.SIGKILL)"),
        2,
        "ended the worker process (killed by SIGKILL)",
        "none",
    ),
    Hostile(
        "blocks_at_import",
        "impl",
        _at_import("threading.Event().wait()"),
        2,
        "did not finish within 3s",
        "none",
        env={"SOCKSPEC_LOAD_TIMEOUT": "3"},
    ),
    Hostile(
        "system_exit_at_import",
        "impl",
        _at_import("sys.exit(0)"),
        2,
        "failed to import: SystemExit",
        "none",
    ),
    Hostile(
        "keyboard_interrupt_at_import",
        "impl",
        _at_import("raise KeyboardInterrupt"),
        2,
        "failed to import: KeyboardInterrupt",
        "none",
    ),
    Hostile(
        "control_characters_at_import",
        "impl",
        _at_import("raise ValueError('\\x1b[2J\\ud800 gone')"),
        2,
        "failed to import: ValueError: ␛[2J\ufffd gone",
        "none",
    ),
    Hostile("floods_output_at_import", "impl", _FLOOD, 0, "", "complete", "pass"),
    Hostile(
        "forks_at_import", "impl", _FORK_AT_IMPORT, 0, "", "complete", "pass"
    ),  # the children die with the probe and every worker
    Hostile(
        "scenario_raises_control_characters",
        "scenario",
        _RAISE_CONTROL,
        2,
        "",
        "complete",
        "error",
    ),
    Hostile(
        "kills_itself_in_case",
        "impl",
        "\nimport os as _os, signal as _signal\n"
        "BaseServer.finish_request = lambda *a: _os.kill(_os.getpid(), _signal.SIGKILL)\n",
        1,
        "",
        "complete",
        "crash",
    ),
    Hostile(
        "scenario_exits_at_import",
        "scenario",
        _at_import("os._exit(0)"),
        2,
        "loading the scenarios ended the worker process (exited with status 0)",
        "none",
    ),
    Hostile(
        "scenario_blocks_at_import",
        "scenario",
        _at_import("threading.Event().wait()"),
        2,
        "loading the scenarios did not finish within 3s",
        "none",
        env={"SOCKSPEC_LOAD_TIMEOUT": "3"},
    ),
    Hostile(
        "scenario_exits_in_case",
        "scenario",
        "import os\n    os._exit(0)",
        1,
        "",
        "complete",
        "crash",
    ),
    Hostile(
        "scenario_floods_output",
        "scenario",
        "import sys\n    print('\\x1b[2J' * 100000)\n    sys.stderr.write('x' * 1000000)",
        0,
        "",
        "complete",
        "pass",
    ),
    Hostile(
        "scenario_raises_keyboard_interrupt",
        "scenario",
        "raise KeyboardInterrupt",
        1,
        "",
        "complete",
        "crash",
    ),
)


def by_name(name: str) -> Hostile:
    """The entry called ``name``."""
    return next(h for h in HOSTILE if h.name == name)
