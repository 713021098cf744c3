"""Deliberately broken implementations that stall in common paths (see ``mutants``).

Each makes a naive harness wait out deadlines: a serve thread that dies or
returns, a ``shutdown()``/``server_close()``/``handle_request()`` that never
returns, handlers that never end, sockets that are never closed.  They are
the measure of fast verdicts (``python -m harness bench --only broken``) as
well as of detection.  Each ``old`` occurs exactly once in the
socketserver.py of CPython 3.10 to 3.13.
"""

from __future__ import annotations

from helpers.mutant import Mutant

MUTANTS: tuple[Mutant, ...] = (
    Mutant(
        "serve_thread_dies_on_first_error",
        "            except Exception:\n"
        "                self.handle_error(request, client_address)\n"
        "                self.shutdown_request(request)\n"
        "            except:",
        "            except Exception:\n                self.shutdown_request(request)\n"
        "                raise\n            except:",
        "errors.handler.exception[tcp-sync-hook=handle-*",
    ),
    Mutant(
        "serve_forever_returns_early",
        "                    self.service_actions()\n        finally:",
        "                    self.service_actions()\n                    return\n        finally:",
        "echo.concurrent[tcp-threading-clients=100]",
    ),
    Mutant(
        "shutdown_never_signalled",
        "            self.__shutdown_request = False\n            self.__is_shut_down.set()",
        "            self.__shutdown_request = False",
        "echo.concurrent[tcp-threading-clients=100]",
        verdict="hang",
    ),
    Mutant(
        "serve_forever_blocks_in_select",
        "ready = selector.select(poll_interval)",
        "ready = selector.select()",
        # Unix, not TCP: a stray connection to a reused port (another test's probe of
        # a server it just closed) would wake the select() and let shutdown() return.
        "echo.concurrent[unix_stream-threading-clients=100]",
        verdict="hang",
    ),
    Mutant(
        "handle_request_blocks_forever",
        "        if timeout is not None:\n            deadline = time() + timeout\n",
        "        timeout = None\n",
        "timeouts.handle_request.expires[tcp-sync-*",
    ),
    Mutant(
        "every_handler_hangs",
        "        try:\n            self.handle()\n        finally:\n            self.finish()",
        "        try:\n            threading.Event().wait()\n"
        "        finally:\n            self.finish()",
        "shutdown.restart[tcp-threading-*",
        verdict="hang",
    ),
    Mutant(
        "server_close_hangs",
        "        self.socket.close()\n\n    def fileno(self):",
        "        self.socket.close()\n        threading.Event().wait()\n\n    def fileno(self):",
        "echo.concurrent[tcp-sync-clients=100]",
        verdict="hang",
    ),
    Mutant(
        "threading_server_close_keeps_socket",
        "        super().server_close()\n        self._threads.join()",
        "        self._threads.join()",
        "shutdown.server_close[tcp-threading-how=call]",
    ),
    Mutant(
        "client_never_gets_eof",
        "            request.shutdown(socket.SHUT_WR)\n"
        "        except OSError:\n"
        "            pass #some platforms may raise ENOTCONN here\n"
        "        self.close_request(request)",
        "            self.__dict__.setdefault('_kept', []).append(request)\n"
        "        except OSError:\n"
        "            pass\n",
        "shutdown.restart[tcp-sync-*",
    ),
)
