"""Descriptor accounting of this process, and running out of descriptors on purpose."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from harness._runtime.clients import StreamClient
from harness._runtime.limits import lowest_free_descriptor, open_fds

try:
    import resource
except ImportError:  # pragma: no cover - non-Unix platforms have no rlimits
    resource = None  # type: ignore[assignment]

if TYPE_CHECKING:
    from harness._runtime.context import Context


def descriptor_count() -> int:
    """How many descriptors this process has open."""
    return len(open_fds())


def socket_descriptors() -> dict[int, str]:
    """This process's descriptors that refer to sockets (fd → ``socket:[inode]``)."""
    return {fd: target for fd, target in open_fds().items() if target.startswith("socket:")}


@contextlib.contextmanager
def no_free_descriptors() -> Iterator[int]:
    """Lower the soft ``RLIMIT_NOFILE`` so that this process cannot open one more descriptor.

    The limit becomes the lowest free descriptor number, so every number a new
    descriptor could take is either in use or over the limit (``EMFILE``);
    descriptors already open stay usable.  The old limit is restored on exit,
    whatever happens inside.  Yields the limit in force.
    """
    if resource is None:  # pragma: no cover
        raise OSError("this platform has no RLIMIT_NOFILE")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    probe = lowest_free_descriptor()
    resource.setrlimit(resource.RLIMIT_NOFILE, (probe, hard))
    try:
        yield probe
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def connect_starved(
    ctx: Context, wait: Callable[[], bool], timeout: float = 5.0
) -> tuple[StreamClient, bool]:
    """Connect a stream client to the last server while no descriptor is free.

    The client socket is created first; then descriptors run out, the client
    connects (which needs none) and ``wait()`` runs — typically until the
    server's ``accept()`` has failed — before the limit is restored.  Returns
    the connected client (the caller closes it) and what ``wait`` returned.
    """
    endpoint = ctx.servers[-1].endpoint
    sock = socket.socket(endpoint.family, socket.SOCK_STREAM)
    try:
        sock.settimeout(ctx.timeout(timeout))
        with no_free_descriptors():
            sock.connect(endpoint.address)
            waited = wait()
        client = StreamClient(sock, ctx.timeout(timeout))
        client.watch = ctx.watch  # its waits are phases, as a ``ctx.connect`` client's are
        return client, waited
    except BaseException:
        sock.close()
        raise
