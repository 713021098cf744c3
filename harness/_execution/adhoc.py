"""Ad-hoc use outside scenarios: instrumented servers for users' own tests.

``AdhocSession`` gives the pytest fixtures the same machinery a scenario's
context has (instrumentation, clients, deadlines, checks) without a
catalogue case.  It builds a throwaway scenario spec per variant.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Sequence
from typing import Any

from harness import checks
from harness._model.implementation import Implementation
from harness._model.records import ClientResult, Finding
from harness._model.scenario import Case, ScenarioSpec, scenario, spec_of
from harness._runtime.context import Context, bookkeeping
from harness._runtime.handlers import Behaviour, HandlerSpec
from harness._runtime.serverhandle import ServerHandle
from harness._runtime.swarm import Script


def _adhoc_body(ctx: Context) -> None:
    """Ad-hoc use from a test; the test itself states what must hold."""


_ADHOC: ScenarioSpec | None = spec_of(
    scenario("adhoc.session", title="ad-hoc session", checks=())(_adhoc_body)
)


class AdhocSession:
    """Servers and clients for one test; ``close()`` tears everything down."""

    def __init__(self, impl: Implementation, seed: int = 0) -> None:
        self.impl = impl
        self.seed = seed
        self.tmpdir = tempfile.mkdtemp(prefix="sockspec-adhoc-")
        self._contexts: list[Context] = []

    def context(self, transport: str = "tcp", kind: str = "threading") -> Context:
        """A scenario context for one variant (servers made from it are tracked)."""
        if _ADHOC is None:  # pragma: no cover - the decorator always attaches a spec
            raise RuntimeError("ad-hoc scenario spec missing")
        ctx = Context(self.impl, Case(_ADHOC, transport, kind, {}), self.seed, self.tmpdir)
        self._contexts.append(ctx)
        return ctx

    def server(
        self,
        transport: str = "tcp",
        kind: str = "threading",
        handler: HandlerSpec | Behaviour | None = None,
        **attrs: Any,
    ) -> ServerHandle:
        """A serving instrumented server (echo unless ``handler`` says otherwise)."""
        return self.context(transport, kind).server(handler, **attrs)

    def swarm(
        self, server: ServerHandle, scripts: Sequence[Script], timeout: float = 15.0
    ) -> list[ClientResult]:
        """Run clients against ``server``."""
        return self._owner(server).swarm(scripts, server, timeout)

    def findings(self, server: ServerHandle) -> list[Finding]:
        """Run the lifecycle checks on ``server``'s events; returns all findings so far."""
        ctx = self._owner(server)
        ctx.wait_requests_done()
        checks.lifecycle(ctx)
        checks.errors_handled(ctx)
        return list(ctx.findings)

    def _owner(self, server: ServerHandle) -> Context:
        for ctx in self._contexts:
            if server in ctx.servers:
                return ctx
        raise ValueError("server was not made by this session")

    def close(self) -> None:
        """Close clients and servers, stop event logs, remove temporary files."""
        for ctx in self._contexts:
            bookkeeping(ctx).release()
            for handle in reversed(ctx.servers):
                handle.close()
            ctx.log.close()
        self._contexts.clear()
        shutil.rmtree(self.tmpdir, ignore_errors=True)
