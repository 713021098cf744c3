"""Instrumentation: record every lifecycle hook by subclassing the implementation.

The implementation's module is never edited.  ``instrument_server`` and
``instrument_handler`` build subclasses whose hooks emit an event on entry and
on return or raise, then defer to the implementation through the MRO.

Connection ids are given out when ``get_request`` returns and are found again
from the request object (the same object travels through every later hook and
into the handler), so forked children, which inherit the mapping, tag their
events with the right id too.

Observing must not change what is observed: the harness never keeps a
reference that decides when or whether a request's socket closes.  It records
facts instead — ``close_request`` returned with the descriptor still open
(``fd_open`` on its return event), a request collected before any
``close_request`` (a ``request_released`` point event).
"""

from __future__ import annotations

import itertools
import os
import socket
import sys
import threading
import traceback
import weakref
from collections.abc import Callable
from typing import Any

from harness._runtime.eventlog import EventLog
from harness._runtime.unixpeer import request_inode

#: Server hooks and the index of their ``request`` argument (None: no request).
SERVER_HOOKS: dict[str, int | None] = {
    "server_bind": None,
    "server_activate": None,
    "serve_forever": None,
    "shutdown": None,
    "handle_request": None,
    "get_request": None,
    "verify_request": 0,
    "process_request": 0,
    "finish_request": 0,
    "shutdown_request": 0,
    "close_request": 0,
    "handle_error": 0,
    "handle_timeout": None,
    "server_close": None,
}

#: Hooks recorded as a single ``point`` event: they run on every poll.
POINT_HOOKS: tuple[str, ...] = ("service_actions",)

HANDLER_HOOKS: tuple[str, ...] = ("setup", "handle", "finish")

_server_ids = itertools.count(1)


def instrument_server(base: type, log: EventLog) -> type:
    """A subclass of server class ``base`` that records its hooks into ``log``."""
    sid = next(_server_ids)
    namespace: dict[str, Any] = {"_sockspec_server_id": sid}
    for name, request_arg in SERVER_HOOKS.items():
        method = getattr(base, name, None)
        if callable(method):
            namespace[name] = _wrap_server_hook(name, method, request_arg, log, sid)
    for name in POINT_HOOKS:
        method = getattr(base, name, None)
        if callable(method):
            namespace[name] = _wrap_point_hook(name, method, log, sid)
    return type(f"Instrumented{base.__name__}", (base,), namespace)


def instrument_handler(base: Any, log: EventLog) -> type:
    """A subclass of handler class ``base`` that records construction and its hooks."""

    def __init__(self: Any, request: Any, client_address: Any, server: Any) -> None:
        self._sockspec_conn = conn = _lookup(server, request)
        self._sockspec_sid = sid = getattr(server, "_sockspec_server_id", 0)
        address = address_text(client_address)
        log.emit(
            "handler_init",
            "point",
            conn,
            sid,
            None,
            "instance",
            id(self),
            "client_address",
            address,
        )
        base.__init__(self, request, client_address, server)

    # Class-level defaults: hooks read these without getattr() even on an
    # instance whose __init__ was bypassed.
    namespace: dict[str, Any] = {"__init__": __init__, "_sockspec_conn": None, "_sockspec_sid": 0}
    for name in HANDLER_HOOKS:
        method = getattr(base, name, None)
        if callable(method):
            namespace[name] = _wrap_handler_hook(name, method, log)
    return type(f"Instrumented{base.__name__}", (base,), namespace)


#: Closed requests still recognised by id (a hook called again on one is attributed).
RETAINED_CLOSED = 4096

_retire_lock = threading.Lock()


def _lookup(server: Any, request: Any) -> int | None:
    state = server.__dict__
    table = state.get("_sockspec_conns")
    if table is None:
        return None
    key = id(request)
    entry = table.get(key)
    if entry is not None and entry[1]() is request:
        conn: int = entry[0]
        return conn
    closed: int | None = state["_sockspec_closed"].get(key)
    return closed


def _retire(server: Any, request: Any) -> None:
    """Stop tracking a closed request; remember its id's connection for a while.

    The table never holds a stream request itself (only a weak reference), so
    whether and when its socket closes is the implementation's doing alone:
    an implementation that forgets ``close_request`` but drops its last
    reference still closes the socket through CPython's reference counting,
    with or without the harness.  The last ``RETAINED_CLOSED`` ids map to their
    connection as plain ints, so a hook called again on a request soon after
    its close (a double close) is still attributed; a live request with a
    reused id is found first, in the table of open ones.
    """
    state = server.__dict__
    table = state.get("_sockspec_conns")
    if table is None:
        return
    with _retire_lock:  # handler threads close concurrently; eviction iterates
        entry = table.pop(id(request), None)
        if entry is None or entry[1]() is not request:
            return
        closed = state["_sockspec_closed"]
        closed[id(request)] = entry[0]
        while len(closed) > RETAINED_CLOSED:
            del closed[next(iter(closed))]


def still_open(request: Any) -> bool:
    """True for a stream request whose socket was not closed (datagram requests are tuples).

    ``socket.close()`` with makefile objects still open (a handler whose
    ``finish`` raised before closing ``rfile``/``wfile``) only drops a reference:
    the descriptor stays open though the socket was closed, so ``_closed`` (set
    by ``close()``) or outstanding makefile references (``_io_refs``; eventlet's
    green socket has no ``_closed``) mean "not left open by close_request".
    """
    if not isinstance(request, socket.socket):
        return False
    if getattr(request, "_closed", False) or getattr(request, "_io_refs", 0):
        return False
    try:
        return request.fileno() != -1
    except OSError:
        return False


def _reference(request: Any, on_release: Callable[[Any], None]) -> Callable[[], Any]:
    """A reference to ``request`` that does not keep it alive, where that matters.

    A socket is referenced weakly (``on_release`` runs when it is collected); a
    datagram request is a ``(data, server socket)`` tuple, which cannot be
    referenced weakly and owns no descriptor of its own, so it is held.
    """
    try:
        return weakref.ref(request, on_release)
    except TypeError:
        return lambda: request


def _register(server: Any, result: Any, log: EventLog) -> int | None:
    """Give the request returned by ``get_request`` a connection id."""
    try:
        request = result[0]
    except (TypeError, IndexError, KeyError):
        return None
    state = server.__dict__
    if "_sockspec_conns" not in state:
        state["_sockspec_closed"] = {}
        state["_sockspec_conns"] = {}  # second: _lookup tests this one
    table = state["_sockspec_conns"]
    conn = log.new_conn()
    key = id(request)
    sid = getattr(server, "_sockspec_server_id", 0)

    def released(ref: Any) -> None:
        # The request was collected before close_request retired it: the fact
        # the checks need ("closed by the collector, close_request never ran").
        entry = table.get(key)
        if entry is not None and entry[1] is ref:
            del table[key]
            log.emit(RELEASED, "point", conn, sid, None, "closed_by", "collector")

    table[key] = (conn, _reference(request, released))
    return conn


#: The point event recorded when a request was collected without ``close_request``.
RELEASED = "request_released"


def _wrap_server_hook(
    name: str, method: Callable[..., Any], request_arg: int | None, log: EventLog, sid: int
) -> Any:
    # What the hook records is decided here, once, not on every call: this
    # wrapper runs several times per request.
    call_detail = _CALL_DETAILS.get(name)
    is_get_request = name == "get_request"
    result_detail = name == "verify_request"
    is_close = name == "close_request"
    emit = log.emit

    def hook(self: Any, *args: Any, **kwargs: Any) -> Any:
        conn = None
        if request_arg is not None and len(args) > request_arg:
            conn = _lookup(self, args[request_arg])
        if call_detail is None:
            emit(name, "call", conn, sid)
        else:
            emit(name, "call", conn, sid, None, *call_detail(args))
        try:
            result = method(self, *args, **kwargs)
        except BaseException as exc:
            emit(name, "raise", conn, sid, exc)
            if is_close and args:
                _retire(self, args[0])
            raise
        if is_close and args:
            # A fact, not an object: whether the descriptor is still open now.
            emit(name, "return", conn, sid, None, "fd_open", still_open(args[0]))
            _retire(self, args[0])
            return result
        if is_get_request:
            conn = _register(self, result, log)
            address = address_text(result[1]) if conn else None
            # An unbound Unix client's address ('') tells no clients apart: the
            # accepted socket's inode does (``unixpeer``).
            inode = request_inode(result[0]) if conn else None
            if inode is None:
                emit(name, "return", conn, sid, None, "client_address", address)
            else:
                emit(name, "return", conn, sid, None, "client_address", address, "inode", inode)
            return result
        elif result_detail:
            emit(name, "return", conn, sid, None, "result", result)
            return result
        emit(name, "return", conn, sid)
        return result

    hook.__name__ = name
    hook.__doc__ = getattr(method, "__doc__", None)
    return hook


def _wrap_point_hook(name: str, method: Callable[..., Any], log: EventLog, sid: int) -> Any:
    emit = log.emit

    def hook(self: Any, *args: Any, **kwargs: Any) -> Any:
        emit(name, "point", None, sid)
        return method(self, *args, **kwargs)

    hook.__name__ = name
    return hook


def _wrap_handler_hook(name: str, method: Callable[..., Any], log: EventLog) -> Any:
    emit = log.emit

    def hook(self: Any, *args: Any, **kwargs: Any) -> Any:
        conn, sid = self._sockspec_conn, self._sockspec_sid
        emit(name, "call", conn, sid, None, "instance", id(self))
        try:
            result = method(self, *args, **kwargs)
        except BaseException as exc:
            emit(name, "raise", conn, sid, exc)
            raise
        emit(name, "return", conn, sid)
        return result

    hook.__name__ = name
    return hook


def _with_pid(args: tuple[Any, ...]) -> tuple[Any, ...]:
    return ("pid", os.getpid())


def _with_error(args: tuple[Any, ...]) -> tuple[Any, ...]:
    address = address_text(args[1]) if len(args) > 1 else None
    return ("client_address", address, "error", _current_exception())


#: The detail each hook's ``call`` event carries (keys and values in turn), from its arguments.
_CALL_DETAILS: dict[str, Callable[[tuple[Any, ...]], tuple[Any, ...]]] = {
    "handle_error": _with_error,
    "serve_forever": _with_pid,
    "handle_request": _with_pid,
}


def _current_exception() -> str | None:
    exc = sys.exc_info()[1]
    if exc is None:
        return None
    return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))[-4000:]


def address_text(address: Any) -> Any:
    """A socket address as events carry it: ``host:port`` (``[host]:port`` for IPv6),
    a Unix path as text, anything else unchanged.

    Text, not a tuple: an event's detail must hold no container, or the
    garbage collector would keep tracking millions of events.
    """
    if isinstance(address, (tuple, list)) and len(address) >= 2:
        host, port = address[0], address[1]
        return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"
    if isinstance(address, bytes):
        return address.decode("utf-8", "replace")
    return address
