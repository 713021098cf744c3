"""Client sockets must not leak into a forking server's children.

The harness's clients live in the same process as the server under test, so
every child a ``ForkingMixIn`` server forks inherits copies of every client
socket open at that moment.  A client's ``close()`` (or RST) then never
reaches the peer while any child still holds a copy, and a forked handler
waiting for EOF waits forever — a harness artefact, not a server bug.

Client sockets are therefore registered here, and an ``os.register_at_fork``
hook closes them in every child.  Each registration remembers the socket's
inode, so a descriptor number that was closed and reused for something else
(the server's own request socket, say) is never touched.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterable

try:
    # The C function even where a green library patched ``os.close``: gevent's
    # only schedules the close on its event loop, and in a forked child of a
    # green-threaded worker the parent's loop never runs again (_greenfork).
    from posix import close as _close_now
except ImportError:  # pragma: no cover - no fork without posix
    _close_now = os.close

_tracked: dict[int, int] = {}  # fd -> inode of the client socket it was


def track(sock: socket.socket) -> int:
    """Register a client socket; returns its descriptor (for ``forget``)."""
    fd = sock.fileno()
    try:
        _tracked[fd] = os.fstat(fd).st_ino
    except OSError:
        pass
    return fd


def forget(fds: Iterable[int]) -> None:
    """Drop registrations (call once the sockets are closed)."""
    for fd in fds:
        _tracked.pop(fd, None)


def _close_client_sockets_in_child() -> None:
    # Runs in the child right after fork: one thread, no locks needed.
    for fd, inode in list(_tracked.items()):
        try:
            if os.fstat(fd).st_ino == inode:
                _close_now(fd)
        except OSError:
            pass
    _tracked.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_close_client_sockets_in_child)
