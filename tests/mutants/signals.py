"""Deliberately broken implementations that mishandle a signal during ``select()``
(see ``mutants``): caught only when the loop runs in a process's main thread, where a
handler that raises ``InterruptedError`` wakes ``select()`` early and empty.  Each
``old`` occurs exactly once in the socketserver.py of CPython 3.10 to 3.13.
"""

from __future__ import annotations

from helpers.mutant import Mutant

MUTANTS: tuple[Mutant, ...] = (
    Mutant(
        "handle_request_times_out_at_wakeup",
        "                        if timeout < 0:",
        "                        if timeout != 0:",
        "signals.handle_request[tcp-sync-handler=raises-*",
    ),
    Mutant(
        "serve_forever_lets_eintr_out",
        "ready = selector.select(poll_interval)",
        "ready = selector._selector.poll(poll_interval * 1000)",
        "signals.serve_forever[tcp-sync-handler=raises-*",
    ),
)
