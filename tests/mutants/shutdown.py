"""Deliberately broken timeouts, shutdown, close and bind logic (see ``mutants.py``).

Each ``old`` occurs exactly once in the socketserver.py of CPython 3.10 to 3.13.
"""

from __future__ import annotations

from helpers.mutant import Mutant

MUTANTS: tuple[Mutant, ...] = (
    # --- timeouts -----------------------------------------------------------
    Mutant(
        "handle_request_ignores_server_timeout",
        "            timeout = self.timeout\n        elif",
        "            pass\n        elif",
        "timeouts.handle_request.expires[tcp-sync-*",
    ),
    Mutant(
        "handle_timeout_not_called",
        "return self.handle_timeout()",
        "return",
        "timeouts.handle_request.expires[udp-sync-*",
    ),
    Mutant(
        "larger_timeout_wins",
        "timeout = min(timeout, self.timeout)",
        "timeout = max(timeout, self.timeout)",
        "timeouts.handle_request.smaller_wins[tcp-sync-smaller=server-*",
    ),
    Mutant(
        "serve_forever_calls_handle_timeout",
        "                    if ready:\n                        self._handle_request_noblock()\n",
        "                    if ready:\n                        self._handle_request_noblock()\n"
        "                    else:\n                        self.handle_timeout()\n",
        "timeouts.serve_forever.ignores_timeout[tcp-sync-*",
    ),
    Mutant(
        "service_actions_not_called",
        "\n                    self.service_actions()",
        "",
        "timeouts.serve_forever.service_actions[tcp-sync-*",
    ),
    Mutant(
        "serve_forever_busy_polls",
        "ready = selector.select(poll_interval)",
        "ready = selector.select(0)",
        "timeouts.serve_forever.service_actions[tcp-sync-*",
    ),
    Mutant(
        "handler_timeout_ignored",
        "self.connection.settimeout(self.timeout)",
        "pass",
        "timeouts.handler.idle_client[tcp-sync-*",
    ),
    # --- shutdown -----------------------------------------------------------
    Mutant(
        "shutdown_does_not_wait",
        "        self.__shutdown_request = True\n        self.__is_shut_down.wait()",
        "        self.__shutdown_request = True",
        "shutdown.stops_loop[tcp-sync-loop=held-*",
    ),
    Mutant(
        "shutdown_flag_never_reset",
        "        finally:\n            self.__shutdown_request = False\n",
        "        finally:\n",
        "shutdown.restart[tcp-sync-*",
    ),
    Mutant(
        "serve_forever_error_keeps_shutdown_waiting",
        "        finally:\n            self.__shutdown_request = False\n"
        "            self.__is_shut_down.set()",
        "        except BaseException:\n            raise\n        else:\n"
        "            self.__shutdown_request = False\n            self.__is_shut_down.set()",
        "shutdown.after_serve_error[tcp-sync]",
        verdict="hang",
    ),
    # --- close and bind -----------------------------------------------------
    Mutant(
        "server_close_keeps_socket",
        "self.socket.close()",
        "pass",
        "shutdown.server_close[tcp-sync-how=call]",
    ),
    Mutant(
        "exit_skips_server_close",
        "    def __exit__(self, *args):\n        self.server_close()",
        "    def __exit__(self, *args):\n        pass",
        "shutdown.server_close[unix_stream-sync-how=with]",
    ),
    Mutant(
        "failed_bind_leaks_socket",
        "            except:\n                self.server_close()\n                raise",
        "            except:\n                raise",
        "shutdown.bind.address_in_use[tcp-sync]",
    ),
    Mutant(
        "bind_and_activate_ignored",
        "        if bind_and_activate:",
        "        if True:",
        "shutdown.bind.deferred[udp-sync]",
    ),
    Mutant(
        "server_address_not_updated",
        "self.server_address = self.socket.getsockname()",
        "pass",
        "shutdown.bind.deferred[tcp-sync]",
    ),
    Mutant(
        "allow_reuse_address_ignored",
        "self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)",
        "pass",
        "shutdown.reuse_address[tcp-sync-*",
    ),
    Mutant(
        "listen_backlog_ignored",
        "self.socket.listen(self.request_queue_size)",
        "self.socket.listen(1)",
        "shutdown.listen_backlog[tcp-sync-*",
    ),
)
