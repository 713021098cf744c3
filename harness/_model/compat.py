"""The few standard-library features newer than the oldest Python a worker runs.

Workers run the harness under the interpreter being tested (see ``_agents``),
so modules they import use these instead of the 3.10+ spellings.  Each one
behaves exactly like the newer feature it stands in for.
"""

from __future__ import annotations

import random
import socket

try:
    from importlib import metadata
except ImportError:  # Python 3.7: the backport, which its agent environment installs
    import importlib_metadata as metadata  # type: ignore[no-redef]

#: What a socket operation raises when its timeout passes: ``socket.timeout``
#: became an alias of ``TimeoutError`` only in 3.10 (bpo-42413).
SOCKET_TIMEOUT = (TimeoutError, socket.timeout)


def entry_points(group: str) -> list[metadata.EntryPoint]:
    """The installed entry points of ``group`` (``entry_points(group=...)`` is 3.10+)."""
    found = metadata.entry_points()
    if hasattr(found, "select"):
        return list(found.select(group=group))
    return list(found.get(group, ()))  # 3.8-3.9: a dict of group -> entry points


def random_bytes(rng: random.Random, size: int) -> bytes:
    """``rng.randbytes(size)`` (3.9+): the same bytes for the same seed on every version."""
    # randbytes is defined as exactly this; getrandbits(0) raises before 3.9.
    return rng.getrandbits(size * 8).to_bytes(size, "little") if size else b""
