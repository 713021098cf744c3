"""Realistic request-lifecycle, handler, error-handling and resource bugs (see ``mutants.py``)."""

from __future__ import annotations

from helpers.mutant import Mutant

MUTANTS: tuple[Mutant, ...] = (
    Mutant(
        "verify_request_result_ignored",
        "        if self.verify_request(request, client_address):\n            try:",
        "        self.verify_request(request, client_address)\n        if True:\n            try:",
        "lifecycle.request.rejected[tcp-sync-*",
    ),
    Mutant(
        "rejected_request_not_shut_down",
        "        else:\n            self.shutdown_request(request)\n\n    def handle_timeout",
        "        else:\n            pass\n\n    def handle_timeout",
        "lifecycle.request.rejected[tcp-threading-*",
    ),
    Mutant(
        "shutdown_request_skips_close_request",
        "            pass #some platforms may raise ENOTCONN here\n"
        "        self.close_request(request)",
        "            pass #some platforms may raise ENOTCONN here\n        request.close()",
        "lifecycle.request.order[tcp-sync-*",
    ),
    Mutant(
        "close_request_does_not_close",
        '        """Called to clean up an individual request."""\n        request.close()',
        '        """Called to clean up an individual request."""\n        pass',
        "resources.fds.flat[tcp-sync-*",
    ),
    Mutant(
        "handle_error_called_twice",
        "        self.finish_request(request, client_address)\n"
        "        self.shutdown_request(request)\n",
        "        try:\n"
        "            self.finish_request(request, client_address)\n"
        "        except Exception:\n"
        "            self.handle_error(request, client_address)\n"
        "            raise\n"
        "        self.shutdown_request(request)\n",
        "errors.handler.exception[tcp-sync-hook=handle-*",
    ),
    Mutant(
        "interrupt_swallowed",
        "            except Exception:\n"
        "                self.handle_error(request, client_address)\n"
        "                self.shutdown_request(request)\n"
        "            except:\n"
        "                self.shutdown_request(request)\n"
        "                raise",
        "            except BaseException:\n"
        "                self.handle_error(request, client_address)\n"
        "                self.shutdown_request(request)",
        "errors.handler.interrupt[tcp-sync-exc=SystemExit-driver=serve_forever]",
    ),
    Mutant(
        "interrupted_request_not_shut_down",
        "            except:\n"
        "                self.shutdown_request(request)\n"
        "                raise",
        "            except:\n                raise",
        "errors.handler.interrupt[tcp-sync-exc=KeyboardInterrupt-driver=handle_request]",
    ),
    Mutant(
        "get_request_oserror_not_caught",
        "        try:\n"
        "            request, client_address = self.get_request()\n"
        "        except OSError:\n"
        "            return\n",
        "        request, client_address = self.get_request()\n",
        "errors.get_request.emfile[tcp-threading]",
    ),
    Mutant(
        "forking_parent_keeps_request",
        "                self.active_children.add(pid)\n"
        "                self.close_request(request)\n",
        "                self.active_children.add(pid)\n",
        "resources.forking.parent_closes[tcp-forking-*",
    ),
    Mutant(
        "forking_child_skips_shutdown",
        "                    try:\n"
        "                        self.shutdown_request(request)\n"
        "                    finally:\n"
        "                        os._exit(status)",
        "                    os._exit(status)",
        "errors.handler.exception[udp-forking-hook=finish-*",
    ),
    Mutant(
        "threading_handler_error_not_handled",
        "            self.finish_request(request, client_address)\n"
        "        except Exception:\n"
        "            self.handle_error(request, client_address)\n"
        "        finally:",
        "            self.finish_request(request, client_address)\n        finally:",
        "lifecycle.handler.setup_error[tcp-threading-*",
    ),
    Mutant(
        "handler_server_set_after_setup",
        "        self.server = server\n        self.setup()",
        "        self.setup()\n        self.server = server",
        "lifecycle.handler.attributes[udp-threading-*",
    ),
    Mutant(
        "setup_failure_runs_finish",
        "        self.setup()\n        try:\n            self.handle()",
        "        try:\n            self.setup()\n            self.handle()",
        "lifecycle.handler.setup_error[unix_stream-sync-*",
    ),
)
