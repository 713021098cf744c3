"""Instrumentation: record every lifecycle hook by subclassing the implementation.

The implementation's module is never edited.  ``instrument_server`` and
``instrument_handler`` build subclasses whose hooks emit an event on entry and
on return or raise, then defer to the implementation through the MRO.

Connection ids are given out when ``get_request`` returns and are found again
from the request object (the same object travels through every later hook and
into the handler), so forked children, which inherit the mapping, tag their
events with the right id too.
"""

from __future__ import annotations

import itertools
import os
import sys
import traceback
from collections.abc import Callable
from typing import Any

from ._eventlog import EventLog

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
    namespace: dict[str, Any] = {
        "_sockspec_log": log,
        "_sockspec_server_id": next(_server_ids),
    }
    for name, request_arg in SERVER_HOOKS.items():
        method = getattr(base, name, None)
        if callable(method):
            namespace[name] = _wrap_server_hook(name, method, request_arg)
    for name in POINT_HOOKS:
        method = getattr(base, name, None)
        if callable(method):
            namespace[name] = _wrap_point_hook(name, method)
    namespace["_sockspec_conn_of"] = _conn_of
    return type(f"Instrumented{base.__name__}", (base,), namespace)


def instrument_handler(base: Any, log: EventLog) -> type:
    """A subclass of handler class ``base`` that records construction and its hooks."""

    def __init__(self: Any, request: Any, client_address: Any, server: Any) -> None:
        conn = _lookup(server, request)
        self._sockspec_conn = conn
        log.emit(
            "handler_init",
            "point",
            conn,
            server=getattr(server, "_sockspec_server_id", 0),
            detail={"instance": id(self), "client_address": _addr(client_address)},
        )
        base.__init__(self, request, client_address, server)

    namespace: dict[str, Any] = {"__init__": __init__}
    for name in HANDLER_HOOKS:
        method = getattr(base, name, None)
        if callable(method):
            namespace[name] = _wrap_handler_hook(name, method, log)
    return type(f"Instrumented{base.__name__}", (base,), namespace)


def _conn_of(self: Any, request: Any) -> int | None:
    return _lookup(self, request)


def _lookup(server: Any, request: Any) -> int | None:
    table = server.__dict__.get("_sockspec_conns")
    if table is None:
        return None
    entry = table.get(id(request))
    return None if entry is None else entry[0]


def _register(server: Any, result: Any) -> int | None:
    """Give the request returned by ``get_request`` a connection id."""
    try:
        request = result[0]
    except (TypeError, IndexError, KeyError):
        return None
    table = server.__dict__.setdefault("_sockspec_conns", {})
    conn = server._sockspec_log.new_conn()
    # Holding the request keeps its id() unique for the life of the server.
    table[id(request)] = (conn, request)
    return conn


def _wrap_server_hook(name: str, method: Callable[..., Any], request_arg: int | None) -> Any:
    def hook(self: Any, *args: Any, **kwargs: Any) -> Any:
        log: EventLog = self._sockspec_log
        sid = self._sockspec_server_id
        conn = None
        if request_arg is not None and len(args) > request_arg:
            conn = _lookup(self, args[request_arg])
        detail = _call_detail(name, args)
        if name == "handle_error":
            detail["error"] = _current_exception()
        log.emit(name, "call", conn, server=sid, detail=detail)
        try:
            result = method(self, *args, **kwargs)
        except BaseException as exc:
            log.emit(name, "raise", conn, server=sid, exc=exc)
            raise
        if name == "get_request":
            conn = _register(self, result)
            detail = {"client_address": _addr(result[1]) if conn else None}
        else:
            detail = {"result": result} if name == "verify_request" else {}
        log.emit(name, "return", conn, server=sid, detail=detail)
        return result

    hook.__name__ = name
    hook.__doc__ = getattr(method, "__doc__", None)
    return hook


def _wrap_point_hook(name: str, method: Callable[..., Any]) -> Any:
    def hook(self: Any, *args: Any, **kwargs: Any) -> Any:
        self._sockspec_log.emit(name, "point", None, server=self._sockspec_server_id)
        return method(self, *args, **kwargs)

    hook.__name__ = name
    return hook


def _wrap_handler_hook(name: str, method: Callable[..., Any], log: EventLog) -> Any:
    def hook(self: Any, *args: Any, **kwargs: Any) -> Any:
        conn = getattr(self, "_sockspec_conn", None)
        sid = getattr(getattr(self, "server", None), "_sockspec_server_id", 0)
        log.emit(name, "call", conn, server=sid, detail={"instance": id(self)})
        try:
            result = method(self, *args, **kwargs)
        except BaseException as exc:
            log.emit(name, "raise", conn, server=sid, exc=exc)
            raise
        log.emit(name, "return", conn, server=sid)
        return result

    hook.__name__ = name
    return hook


def _call_detail(name: str, args: tuple[Any, ...]) -> dict[str, Any]:
    with_address = ("verify_request", "process_request", "finish_request", "handle_error")
    if name in with_address and len(args) > 1:
        return {"client_address": _addr(args[1])}
    if name in ("serve_forever", "handle_request"):
        return {"pid": os.getpid()}
    return {}


def _current_exception() -> str | None:
    exc = sys.exc_info()[1]
    if exc is None:
        return None
    return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))[-4000:]


def _addr(address: Any) -> Any:
    """A JSON- and pickle-friendly form of a socket address."""
    if isinstance(address, tuple):
        return list(address[:2])
    if isinstance(address, bytes):
        return address.decode("utf-8", "replace")
    return address
