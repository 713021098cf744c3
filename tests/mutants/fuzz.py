"""Deliberately broken implementations that only the fuzz cases find (see ``mutants.py``).

Each bug needs a particular *sequence* of server calls to show, which no
single-purpose catalogue case performs; the stateful fuzzer reaches it by
search and shrinks it to a few steps.  Each ``old`` occurs exactly once in the
socketserver.py of CPython 3.10 to 3.13.
"""

from __future__ import annotations

from helpers.mutant import Mutant

MUTANTS: tuple[Mutant, ...] = (
    # serve_forever() makes the listening socket non-blocking (so that a client
    # vanishing between select() and accept() cannot stall the loop) and never
    # restores it.  Only a handle_request() *after* a serve_forever() notices:
    # its timeout becomes min(0.0, server.timeout), so it calls handle_timeout()
    # at once instead of waiting server.timeout for a client.
    Mutant(
        "serve_forever_leaves_socket_nonblocking",
        "                selector.register(self, selectors.EVENT_READ)\n\n"
        "                while not self.__shutdown_request:",
        "                selector.register(self, selectors.EVENT_READ)\n"
        "                self.socket.setblocking(False)  # accept() must never block\n\n"
        "                while not self.__shutdown_request:",
        "fuzz.stateful",
    ),
)
