"""Whose fault an exception is: the implementation's (``fail``) or the scenario's (``error``).

An exception out of a scenario is the implementation's when its traceback
passes through the implementation's code: its module, the modules of its
classes' bases (their MRO) or modules it imported (a helper module of the
library).  A hang inside a green library without its monkey-patching gets a
hint naming ``+eventlet``/``+gevent``.
"""

from __future__ import annotations

import json
import os
import sys
import sysconfig
import traceback
import types

from harness._model.implementation import Implementation
from harness._model.records import Verdict
from harness._runtime.context import Context, impl_paths, module_paths

#: Exceptions a scenario raises when it cannot parse what the server sent.
_UNPARSABLE = (json.JSONDecodeError, UnicodeDecodeError)


def judge_exception(ctx: Context, exc: BaseException) -> tuple[Verdict, str]:
    """An exception out of the scenario: the implementation's fault, or the scenario's?

    The implementation's when its traceback passes through the implementation:
    its module, the modules of its classes' bases (their MRO) or modules it
    imported (a helper module of the library) — a ``fail`` naming the frame.
    A socket error a client saw, or a reply the scenario could not parse, is
    an observation about the server too (``fail``).  Anything else is a broken
    scenario or harness (``error``), never blamed on the server.
    """
    text = f"{type(exc).__name__}: {exc}"
    prefixes = blamed_paths(ctx.impl)
    frames = traceback.extract_tb(exc.__traceback__)
    mine = [f for f in frames if prefixes and os.path.realpath(f.filename).startswith(prefixes)]
    if mine:
        frame = mine[-1]
        where = f"{frame.name}() at {frame.filename}:{frame.lineno}"
        ctx.fail(
            "implementation.raised",
            f"the implementation raised {text} in {where}",
            observed=text,
            frame=where,
        )
        return Verdict.FAIL, f"implementation raised {text} in {frame.name}()"
    if isinstance(exc, OSError):
        ctx.fail(
            "clients.io", f"a client saw {text}", expected="the exchange completes", observed=text
        )
        return Verdict.FAIL, f"client saw {text}"
    if isinstance(exc, _UNPARSABLE):
        ctx.fail(
            "replies.unparsable",
            f"the server sent what the scenario could not parse: {text}",
            expected="a well-formed reply",
            observed=text,
        )
        return Verdict.FAIL, f"unparsable reply: {text}"
    return Verdict.ERROR, f"scenario raised {text}"


def blamed_paths(impl: Implementation) -> tuple[str, ...]:
    """Path prefixes of the code that is the implementation's (its fault when it raises).

    Its own module or package; the modules defining the bases (MRO) of the
    classes it offers; and the modules it imported, or imported names from —
    except the harness and the Python installation's own library, unless one
    of those is the implementation itself or a base of its classes (an adapter
    over ``socketserver`` owns ``socketserver.py``'s frames, not ``socket.py``'s).
    """
    own = impl_paths(impl)
    bases: set[str] = set()
    imported: set[str] = set()
    for value in vars(impl.module).values():
        if isinstance(value, type):
            for base in value.__mro__[:-1]:
                bases.update(module_paths(sys.modules.get(base.__module__)))
        if isinstance(value, types.ModuleType):
            imported.update(module_paths(value))
        elif callable(value):
            imported.update(module_paths(sys.modules.get(getattr(value, "__module__", "") or "")))
    imported = {p for p in imported if not p.startswith(_HARNESS_DIR) and not _is_stdlib(p)}
    bases = {p for p in bases if not p.startswith(_HARNESS_DIR)}
    return tuple(sorted({*own, *bases, *imported}))


def _is_stdlib(path: str) -> bool:
    """True for a path in the Python installation's own library (not an installed package)."""
    parts = path.split(os.sep)
    return (
        path.startswith(_STDLIB_DIRS)
        and "site-packages" not in parts
        and ("dist-packages" not in parts)
    )


_HARNESS_DIR = os.path.dirname(os.path.dirname(os.path.realpath(__file__))) + os.sep
_STDLIB_DIRS = tuple(
    {
        os.path.realpath(sysconfig.get_paths()[key]) + os.sep
        for key in ("stdlib", "platstdlib")
        if key in sysconfig.get_paths()
    }
)


def green_hint(stacks: str, spec: str = "SPEC") -> str:
    """A hint when a hang sits in a green library's primitives without its monkey-patching.

    eventlet and gevent cannot wake a waiter in another OS thread: a server of
    ``eventlet.green.SocketServer`` driven from the harness's plain threads
    hangs in ``shutdown()`` unless the worker is patched (``+eventlet``).
    """
    for library, probe in _GREEN_PROBES.items():
        if f"{os.sep}{library}{os.sep}" in stacks and not probe():
            return (
                f" (hint: it waits inside {library} from a plain OS thread; "
                f"run it as --impl {spec}+{library} to monkey-patch first)"
            )
    return ""


def _eventlet_patched() -> bool:
    patcher = sys.modules.get("eventlet.patcher")
    return bool(patcher is not None and patcher.is_monkey_patched("thread"))


def _gevent_patched() -> bool:
    monkey = sys.modules.get("gevent.monkey")
    return bool(monkey is not None and monkey.is_module_patched("threading"))


_GREEN_PROBES = {"eventlet": _eventlet_patched, "gevent": _gevent_patched}
