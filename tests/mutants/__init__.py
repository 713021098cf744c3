"""Deliberately broken socketserver implementations, made by mutating stdlib source.

Each mutant is one realistic bug: a textual change to the running
interpreter's own ``socketserver.py``, written to a temporary ``.py`` file and
loaded with ``--impl PATH``.  ``MUTANTS`` is the project's measure of the
harness's power: every mutant must be caught by the case named in ``caught_by``.
Mutation at test time keeps CPython's text out of the repository.

The table is the union of ``MUTANTS`` here and in every module of this package
(one per behaviour family), so adding a mutant touches one family file only.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from helpers.mutant import Mutant

CORE: tuple[Mutant, ...] = (
    Mutant(
        "finish_skipped_when_handle_raises",
        "        try:\n            self.handle()\n        finally:\n            self.finish()",
        "        self.handle()\n        self.finish()",
        "lifecycle.handler.order[tcp-threading-fault=handle-*",
    ),
    Mutant(
        "handle_error_not_called",
        "            except Exception:\n"
        "                self.handle_error(request, client_address)\n"
        "                self.shutdown_request(request)\n"
        "            except:",
        "            except Exception:\n                self.shutdown_request(request)\n"
        "            except:",
        "lifecycle.handler.order[tcp-sync-fault=handle-*",
    ),
    Mutant(
        "shutdown_never_returns",
        "        self.__shutdown_request = True\n        self.__is_shut_down.wait()",
        "        self.__shutdown_request = True\n        threading.Event().wait()",
        "echo.concurrent[tcp-sync-*",
        verdict="hang",
    ),
    Mutant(
        "finish_request_exits_process",
        "        self.RequestHandlerClass(request, client_address, self)",
        "        os._exit(3)",
        "echo.concurrent[tcp-sync-*",
        verdict="crash",
    ),
    Mutant(
        # A mix-in that inherits the hooks it overrides: listed after the server class it
        # now beats BaseServer's methods, and the composed classes' MRO changes.
        "threading_mixin_is_a_server",
        "class ThreadingMixIn:",
        "class ThreadingMixIn(BaseServer):",
        "surface.plain_mixins*",
    ),
)


def _family_tables() -> tuple[Mutant, ...]:
    found: list[Mutant] = []
    for path in sorted(Path(__file__).parent.glob("[a-z]*.py")):
        found.extend(importlib.import_module(f"{__name__}.{path.stem}").MUTANTS)
    return tuple(found)


MUTANTS: tuple[Mutant, ...] = CORE + _family_tables()


def by_name(name: str) -> Mutant:
    """The mutant called ``name``."""
    return next(m for m in MUTANTS if m.name == name)
