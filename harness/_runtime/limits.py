"""Process resource limits the harness needs to raise before opening many sockets.

A swarm of N clients holds N descriptors at once, and an in-process server
holds roughly as many again, so the common default soft limit of 1024 open
files is exhausted long before the 10,000-client benchmarks. Raising the soft
limit up to the hard limit needs no privilege, so the harness does it itself
rather than asking every user to run ``ulimit -n``.
"""

from __future__ import annotations

import os
import time

try:
    import resource
except ImportError:  # pragma: no cover - non-Unix platforms have no rlimits
    resource = None  # type: ignore[assignment]


def open_files_limit() -> int:
    """Return the current soft RLIMIT_NOFILE, or a large number where unlimited/unknown."""
    if resource is None:  # pragma: no cover
        return 1 << 30
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return (1 << 30) if soft == resource.RLIM_INFINITY else int(soft)


def raise_open_files_limit(wanted: int) -> int:
    """Raise the soft RLIMIT_NOFILE toward ``min(wanted, hard)`` and return the new soft limit.

    The limit is never lowered: if the soft limit already covers ``wanted`` it is
    returned unchanged. Failure to raise (for instance macOS refusing values above
    ``kern.maxfilesperproc`` even when the hard limit reads as unlimited) is not an
    error: the caller gets the limit actually in force and decides what to do.
    """
    if resource is None:  # pragma: no cover
        return open_files_limit()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and target > soft:
        # Step down on refusal: macOS reports RLIM_INFINITY as hard but rejects
        # anything above OPEN_MAX, so a smaller value may still succeed.
        for candidate in (target, min(target, 10240)):
            try:
                resource.setrlimit(resource.RLIMIT_NOFILE, (candidate, hard))
                break
            except (ValueError, OSError):
                continue
    return open_files_limit()


def open_fds() -> dict[int, str]:
    """This process's open descriptors and what they refer to (fd → readlink target).

    Empty where ``/proc`` is missing.
    """
    out: dict[int, str] = {}
    try:
        names = os.listdir("/proc/self/fd")
    except OSError:
        return out
    for name in names:
        try:
            out[int(name)] = os.readlink(f"/proc/self/fd/{name}")
        except OSError:
            continue  # the descriptor listdir itself used, already closed
    return out


def count_open_fds() -> int | None:
    """Return how many descriptors this process has open, or None if it cannot tell.

    Used to size the limit (and by tests to prove that nothing leaked); only
    Linux (``/proc``) and macOS/BSD (``/dev/fd``) expose the list cheaply.
    """
    for fd_dir in ("/proc/self/fd", "/dev/fd"):
        try:
            # listdir itself opens one descriptor, which shows up in the listing.
            return len(os.listdir(fd_dir)) - 1
        except OSError:
            continue
    return None


def lowest_free_descriptor(timeout: float = 2.0) -> int:
    """Return the lowest descriptor number not in use, once earlier closes have happened.

    POSIX gives a new descriptor the lowest free number, so a probe opened and
    closed again names it.  gevent's ``os.close`` only schedules the close for
    the next turn of its event loop, though: a number closed a moment ago (a
    directory ``shutil.rmtree`` walked, the probe itself) is still taken and
    becomes free later.  So each probe's close is waited for, which also waits
    out every close scheduled before it, and the answer is the number two probes
    in a row agree on.  Without such a library both probes agree at once.
    """
    deadline = time.monotonic() + timeout
    previous = -1
    while True:
        probe = os.open(os.devnull, os.O_RDONLY)
        os.close(probe)
        while _is_open(probe) and time.monotonic() < deadline:
            time.sleep(0.001)  # lets a green event loop run the scheduled closes
        if probe == previous or time.monotonic() >= deadline:
            return probe
        previous = probe


def _is_open(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True
