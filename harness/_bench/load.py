"""The load driver at scale: 10,000 simultaneous connections from one swarm.

The swarm (``harness._runtime.swarm.run_swarm``) runs in this process against a
threading server of the implementation in a child process (its own
descriptor table, its own GIL, its own CPU account).  Every client
connects, then waits for the go signal before its request: the server's
``barrier`` handler holds every connection until ``clients`` handlers are
live *at the same time*, counts the connections the kernel lists as
established for the listener, and only then lets each handler send
``b"G"`` + the monotonic time of sending.  The client script is::

    Recv(GO_SIZE), Send(payload), ShutdownWrite(), RecvAll()

so a client that never got in while the others were held makes the barrier
time out (``peak`` < clients) instead of passing quietly.  Round trip is
measured per client from its go signal (the server's timestamp; both
processes read the same CLOCK_MONOTONIC) to the end of its reply.

CPU: the driver's is this process's ``getrusage`` over the swarm, the
server's is its child's psutil times over the same span; both per request.
"""

from __future__ import annotations

import resource
import tempfile
import time
from collections.abc import Sequence
from typing import Any

from harness._bench.server import GO, GO_SIZE, GO_TIME, BenchServer, BenchServerConfig
from harness._model.records import ClientResult
from harness._runtime.swarm import (
    DEFAULT_MAX_CONNECTING,
    Recv,
    RecvAll,
    Script,
    Send,
    ShutdownWrite,
    percentile,
    run_swarm,
    swarm_stats,
)

PAYLOAD = 64
#: 10,000 handler threads: their stacks are address space only, but 8 MiB each adds up.
STACK_SIZE = 256 * 1024
#: Accept queue; the kernel caps it at net.core.somaxconn.
BACKLOG = 4096


def scripts_for(clients: int) -> tuple[list[Script], list[bytes]]:
    """One script per client, each with its own numbered payload."""
    payloads = [(b"%08d:" % i).ljust(PAYLOAD, b"x") for i in range(clients)]
    scripts: list[Script] = [(Recv(GO_SIZE), Send(p), ShutdownWrite(), RecvAll()) for p in payloads]
    return scripts, payloads


def _driver_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_load(
    transport: str, clients: int, impl: str = "reference", timeout: float = 120.0
) -> dict[str, Any]:
    """Hold ``clients`` connections at once against a threading server; figures as a dict."""
    with tempfile.TemporaryDirectory(prefix="sockspec-load-") as tmp:
        config = BenchServerConfig(
            impl,
            transport,
            "threading",
            tmp,
            handler="barrier",
            clients=clients,
            barrier_timeout=timeout / 2,
            # Daemon handler threads keep ThreadingMixIn's registry empty: with
            # block_on_close each new thread first reaps the list of every live
            # one, O(n^2) over a 10,000-connection burst -- the server's cost,
            # not the driver's, and not what this measures.
            attrs={"request_queue_size": BACKLOG, "daemon_threads": True},
            poll_interval=0.05,
            stack_size=STACK_SIZE,
        )
        with BenchServer(config) as server:
            scripts, payloads = scripts_for(clients)
            server_cpu, driver_cpu, t0 = server.cpu_seconds(), _driver_cpu(), time.monotonic()
            results = run_swarm(
                server.endpoint, scripts, timeout=timeout, max_connecting=DEFAULT_MAX_CONNECTING
            )
            wall = time.monotonic() - t0
            driver_cpu = _driver_cpu() - driver_cpu
            server_cpu = server.cpu_seconds() - server_cpu
            barrier = server.stats()
    return _figures(
        transport, impl, clients, results, payloads, barrier, wall, driver_cpu, server_cpu
    )


def _figures(
    transport: str,
    impl: str,
    clients: int,
    results: Sequence[ClientResult],
    payloads: Sequence[bytes],
    barrier: dict[str, Any],
    wall: float,
    driver_cpu: float,
    server_cpu: float,
) -> dict[str, Any]:
    stats = swarm_stats(results)
    trips, wrong = [], 0
    for result, payload in zip(results, payloads, strict=True):
        if not result.ok:
            continue
        data = result.received
        if data[:1] != GO or data[GO_SIZE:] != payload:
            wrong += 1
            continue
        trips.append(result.finished - GO_TIME.unpack(data[1:GO_SIZE])[0])
    released = barrier.get("released")
    starts = [r.started for r in results]
    return {
        "transport": transport,
        "impl": impl,
        "server": "threading",
        "clients": clients,
        "ok": stats.ok,
        "errors": stats.errors,
        "error_types": dict(stats.error_types),
        "wrong_replies": wrong,
        "peak_handlers": barrier.get("peak"),
        "established_at_peak": barrier.get("established"),
        "connect_phase": None if released is None or not starts else released - min(starts),
        "connect_p50": stats.connect_p50,
        "connect_p99": stats.connect_p99,
        "connect_max": stats.connect_max,
        "roundtrip_p50": percentile(trips, 50),
        "roundtrip_p99": percentile(trips, 99),
        "roundtrip_max": percentile(trips, 100),
        "wall": wall,
        "driver_cpu": driver_cpu,
        "server_cpu": server_cpu,
        "driver_cpu_per_request": driver_cpu / clients,
        "server_cpu_per_request": server_cpu / clients,
        "driver_over_server": driver_cpu / server_cpu if server_cpu > 0 else None,
        "max_connecting": DEFAULT_MAX_CONNECTING,
    }
