"""Handler behaviours: what a request handler under test does.

A behaviour is a plain function of the handler instance.  ``build_handler``
turns behaviours into a subclass of the implementation's own handler class
(``StreamRequestHandler`` for streams, ``DatagramRequestHandler`` for
datagrams), so the implementation's setup/finish logic is what runs.

The stock behaviours here cover what scenarios need most; scenarios may pass
any function of their own.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from typing import TypeAlias

#: What a handler does, as a function of the handler instance (a string so that
#: workers on Python < 3.10 can import this module).
Behaviour: TypeAlias = "Callable[[Any], None]"


class InjectedError(RuntimeError):
    """The error stock behaviours raise on purpose (so checks can expect it)."""


@dataclass(frozen=True)
class HandlerSpec:
    """How to build a handler: its ``handle`` and optional extra hook bodies.

    ``after_setup`` runs after the base class's ``setup`` (which creates
    ``rfile``/``wfile``); ``before_finish`` runs before the base ``finish``
    (which flushes and closes them).  ``attrs`` become class attributes, e.g.
    ``{"timeout": 0.05, "wbufsize": 1 << 16}``.
    """

    handle: Behaviour | None = None
    after_setup: Behaviour | None = None
    before_finish: Behaviour | None = None
    base: str = "auto"
    attrs: Mapping[str, Any] = field(default_factory=dict)


def build_handler(base: Any, spec: HandlerSpec) -> type:
    """A subclass of ``base`` running the behaviours of ``spec``."""
    namespace: dict[str, Any] = dict(spec.attrs)
    handle = spec.handle or echo
    namespace["handle"] = lambda self: handle(self)
    if spec.after_setup is not None:
        after = spec.after_setup

        def setup(self: Any) -> None:
            base.setup(self)
            after(self)

        namespace["setup"] = setup
    if spec.before_finish is not None:
        before = spec.before_finish

        def finish(self: Any) -> None:
            before(self)
            base.finish(self)

        namespace["finish"] = finish
    return type(f"Sockspec{base.__name__}", (base,), namespace)


def is_datagram(handler: Any) -> bool:
    """True when ``handler.request`` is a ``(data, socket)`` pair."""
    return isinstance(handler.request, tuple)


def echo(handler: Any) -> None:
    """Send back everything received: each chunk until EOF, or the one datagram."""
    if is_datagram(handler):
        handler.wfile.write(handler.rfile.read())
        return
    while True:
        chunk = handler.request.recv(65536)
        if not chunk:
            return
        handler.request.sendall(chunk)


def echo_lines(handler: Any) -> None:
    """Stream echo through ``rfile``/``wfile``, one line at a time, until EOF."""
    for line in iter(handler.rfile.readline, b""):
        handler.wfile.write(line)


def raising(message: str = "injected by sockspec") -> Behaviour:
    """A behaviour that raises ``InjectedError``."""

    def behaviour(handler: Any) -> None:
        raise InjectedError(message)

    return behaviour


def gated(gate: threading.Event, then: Behaviour = echo, timeout: float = 10.0) -> Behaviour:
    """Wait for ``gate`` (bounded by ``timeout``), then run ``then``."""

    def behaviour(handler: Any) -> None:
        gate.wait(timeout)
        then(handler)

    return behaviour


def sequence(*behaviours: Behaviour) -> Behaviour:
    """Run several behaviours one after another."""

    def behaviour(handler: Any) -> None:
        for step in behaviours:
            step(handler)

    return behaviour
