"""Deliberately broken ThreadingMixIn / ForkingMixIn / sync concurrency (see ``mutants.py``).

Each ``old`` occurs exactly once in the socketserver.py of CPython 3.10 to 3.13.
"""

from __future__ import annotations

from helpers.mutant import Mutant

MUTANTS: tuple[Mutant, ...] = (
    # --- synchronous servers -------------------------------------------------
    Mutant(
        "sync_process_request_in_thread",
        "        self.finish_request(request, client_address)\n"
        "        self.shutdown_request(request)\n\n    def server_close",
        "        threading.Thread(target=lambda: (self.finish_request(request, client_address),"
        " self.shutdown_request(request))).start()\n\n    def server_close",
        "concurrency.sync.one_at_a_time[tcp-sync-*",
    ),
    # --- ThreadingMixIn --------------------------------------------------------
    Mutant(
        "threading_daemon_threads_ignored",
        "        t.daemon = self.daemon_threads\n",
        "",
        "concurrency.threading.daemon[tcp-threading-daemon_threads=False]",
    ),
    Mutant(
        "threading_handler_in_serving_thread",
        "        t = threading.Thread(target = self.process_request_thread,\n"
        "                             args = (request, client_address))\n"
        "        t.daemon = self.daemon_threads\n"
        "        self._threads.append(t)\n"
        "        t.start()",
        "        self.process_request_thread(request, client_address)",
        "concurrency.threading.overlap[tcp-threading-*",
    ),
    Mutant(
        "threading_close_does_not_join",
        "        super().server_close()\n        self._threads.join()",
        "        super().server_close()",
        "concurrency.close.waits[tcp-threading-*",
    ),
    Mutant(
        "threading_finished_threads_kept",
        "        self[:] = (thread for thread in self if thread.is_alive())",
        "        pass",
        "concurrency.threading.no_retention[tcp-threading-requests=200-*",
    ),
    Mutant(
        "threading_block_on_close_ignored",
        "        if self.block_on_close:\n            vars(self).setdefault",
        "        if True:\n            vars(self).setdefault",
        "concurrency.threading.close_no_block[tcp-threading-*",
    ),
    # --- ForkingMixIn ----------------------------------------------------------
    Mutant(
        "forking_service_actions_no_reap",
        'serve_forever loop.\n            """\n            self.collect_children()',
        'serve_forever loop.\n            """\n            pass',
        "concurrency.forking.reaped_while_serving[tcp-forking-*",
    ),
    Mutant(
        "forking_handle_timeout_no_reap",
        'do not override.\n            """\n            self.collect_children()',
        'do not override.\n            """\n            pass',
        "concurrency.forking.reaped_on_timeout[tcp-forking]",
    ),
    Mutant(
        "forking_max_children_ignored",
        "while len(self.active_children) >= self.max_children:",
        "while False:",
        "concurrency.forking.max_children[tcp-forking-*",
    ),
    Mutant(
        "forking_close_does_not_wait",
        "self.collect_children(blocking=self.block_on_close)",
        "self.collect_children()",
        "concurrency.close.waits[tcp-forking-*",
    ),
    # The child falls back into serve_forever() and serves on: server_close()
    # waits for children that never exit (``hang``), and the post-checks still
    # report get_request() outside the serving thread, the loop running on after
    # shutdown() and the children left running.
    Mutant(
        "forking_child_returns_to_loop",
        "                    finally:\n                        os._exit(status)",
        "                    finally:\n                        pass",
        "concurrency.accept_in_server[tcp-forking-*",
        verdict="hang",
    ),
    Mutant(
        "forking_parent_shuts_down_request",
        "self.active_children.add(pid)\n                self.close_request(request)",
        "self.active_children.add(pid)\n                self.shutdown_request(request)",
        "concurrency.accept_in_server[tcp-forking-*",
    ),
    Mutant(
        # Stops at the first stale pid: the other stale ones still count against max_children.
        "stale_children_forgotten_one_at_a_time",
        "                    # someone else reaped it\n"
        "                    self.active_children.discard(pid)\n",
        "                    # someone else reaped it\n"
        "                    self.active_children.discard(pid)\n"
        "                    break\n",
        "concurrency.forking.reaped_elsewhere[tcp-forking-*",
    ),
)
