"""Forked children of a green-threaded worker keep only the green thread that forked."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys

import pytest
from helpers import ROOT
from helpers.host import lacks

from harness._control.agents import PATCHES
from harness._model.errors import LoadError
from harness._runtime.greenfork import _CHILD_HOOKS, isolate_forked_children

# A ForkingTCPServer whose children each send three datagrams to a socketpair that a
# green thread of the parent reads (as the event log's reader does).  Every handler
# then waits for its client, which lets the other green threads of the child run.
FORKING_SERVER = """
import os, socket, socketserver, sys, threading
from harness._runtime.greenfork import isolate_forked_children
if sys.argv[2] == "isolate":
    isolate_forked_children(sys.argv[1])
rx, tx = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
got = []

def reader():
    while (data := rx.recv(100)) != b"stop":
        got.append(data)

class Handler(socketserver.BaseRequestHandler):
    def handle(self):
        for i in range(3):
            tx.send(b"%d" % i)
        self.request.recv(1)

reading = threading.Thread(target=reader, daemon=True)
reading.start()
server = socketserver.ForkingTCPServer(("127.0.0.1", 0), Handler)
threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True).start()
parent = os.getpid()
clients = [socket.create_connection(server.server_address, timeout=10) for _ in range(5)]
for client in clients:
    client.sendall(b"x")
for client in clients:
    client.recv(1)
server.shutdown()
server.server_close()
tx.send(b"stop")
reading.join(10)
if os.getpid() == parent:
    print("received", len(got), flush=True)
"""


def _patched_python(patch: str, code: str, *args: str) -> subprocess.CompletedProcess[str]:
    if importlib.util.find_spec(patch) is None:
        pytest.skip(lacks(patch, f"{patch} is not installed (tox -e {patch} installs it)"))
    return subprocess.run(
        [sys.executable, "-c", f"{PATCHES[patch]}\n{code}", patch, *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


@pytest.mark.parametrize("patch", sorted(PATCHES))
def test_forked_children_leave_the_parents_green_threads_behind(patch: str) -> None:
    proc = _patched_python(patch, FORKING_SERVER, "isolate")
    assert proc.returncode == 0, proc.stderr[-2000:]
    # A child running the parent's reader would have taken some of the 15 datagrams.
    assert proc.stdout.splitlines() == ["received 15"], proc.stderr[-2000:]


def test_every_patch_has_its_fork_isolation() -> None:
    assert set(_CHILD_HOOKS) == set(PATCHES)


def test_no_patch_needs_no_isolation() -> None:
    isolate_forked_children(None)


def test_unknown_patch_is_refused_with_the_choices() -> None:
    with pytest.raises(LoadError, match=r"'asyncio'; expected one of gevent, eventlet"):
        isolate_forked_children("asyncio")
