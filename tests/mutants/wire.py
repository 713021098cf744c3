"""Bugs that only the wire shows: how the server ends its connections."""

from __future__ import annotations

from helpers.mutant import Mutant

MUTANTS: tuple[Mutant, ...] = (
    Mutant(
        "shutdown_wr_error_not_ignored",
        "            request.shutdown(socket.SHUT_WR)\n        except OSError:\n            pass",
        "            request.shutdown(socket.SHUT_WR)\n        finally:\n            pass",
        "packets.tcp.injected_rst[tcp-threading-*",
    ),
    Mutant(
        "close_with_linger_zero_sends_rst",
        "            request.shutdown(socket.SHUT_WR)\n        except OSError:",
        "            request.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,"
        " b'\\1\\0\\0\\0\\0\\0\\0\\0')\n"
        "        except OSError:",
        "wire.close.fin[tcp-sync-*",
    ),
)
