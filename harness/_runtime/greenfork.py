"""Forked children of a green-threaded worker run only the green thread that forked.

With OS threads a forked child has one thread, the one that called ``fork()``;
for a ``ForkingMixIn`` server that thread handles the request and ends the
child with ``os._exit``.  Under gevent's or eventlet's monkey-patching every
thread is a green thread of one event hub, and a child inherits all of them,
still scheduled (gevent documents this under ``gevent.os.fork``).  In a
sockspec worker those are the harness's own threads: the scenario and its
clients, the event-log reader, the executor waiting to tear down.  Carried on
in a child they read the parent's lifecycle events off the shared channel,
talk to the parent's server, tear the case down and end the child with the
worker's ``os._exit(70)`` before its handler is done.

So a patched worker gives the forking green thread of each child a fresh hub
and leaves the inherited one, with every green thread waiting on it, behind:
the child then holds what a child of a threaded process holds.  This is
applied in workers started with ``+gevent``/``+eventlet`` only; it reaches
into each library's hub (gevent's sockets keep a reference to theirs).
"""

from __future__ import annotations

import gc
import os
from collections.abc import Callable
from typing import Any

from harness._model.errors import LoadError


def isolate_forked_children(patch: str | None) -> None:
    """Leave every green thread but the forking one behind in forked children of ``patch``.

    ``patch`` is the monkey-patching the worker was started with (``None``:
    real threads, nothing to do).  Raises ``LoadError`` for an unknown patch.
    """
    if patch is None:
        return
    hook = _CHILD_HOOKS.get(patch)
    if hook is None:
        raise LoadError(
            f"no fork isolation for patch {patch!r}; expected one of {', '.join(_CHILD_HOOKS)}"
        )
    if hasattr(os, "register_at_fork"):
        os.register_at_fork(after_in_child=hook)


def _fresh_eventlet_hub() -> None:
    """Eventlet: a new hub of the same class (and its own epoll) for the child.

    Green sockets, locks and timers look the hub up whenever they wait, so the
    child's thread moves over on its own; ``use_hub`` documents that listeners
    and timers of the old hub are never resumed.  (The inherited epoll instance
    is shared with the parent, so the child must not use it anyway.)
    """
    from eventlet import hubs

    hubs.use_hub(type(hubs.get_hub()))


def _fresh_gevent_hub() -> None:
    """Gevent: a new hub on a loop of its own, and the inherited sockets moved onto it.

    Not the default loop: it holds every watcher of the parent's green threads.
    A gevent socket keeps the hub it was made under and one read and one write
    watcher of that hub's loop, so those are replaced on every socket (the
    forking thread's request socket among them; the others are never used).
    """
    from gevent._hub_local import get_hub_if_exists, set_hub
    from gevent._socketcommon import SocketMixin
    from gevent.hub import Hub

    inherited = get_hub_if_exists()
    if inherited is None:
        return
    fresh = Hub(default=False)
    set_hub(fresh)
    for obj in gc.get_objects():
        if isinstance(obj, SocketMixin) and obj.hub is inherited:
            _move_socket(obj, fresh)


def _move_socket(sock: Any, hub: Any) -> None:
    fd = sock.fileno()
    if fd < 0:
        return
    try:
        read, write = hub.loop.io(fd, 1), hub.loop.io(fd, 2)
    except OSError:
        return  # a client socket _forksafe closed in this child: nothing will use it
    sock.hub, sock._read_event, sock._write_event = hub, read, write


_CHILD_HOOKS: dict[str, Callable[[], None]] = {
    "gevent": _fresh_gevent_hub,
    "eventlet": _fresh_eventlet_hub,
}
