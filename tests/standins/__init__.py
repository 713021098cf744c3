"""Small stand-ins for real third-party designs (see tests/unit/test_standins.py).

Each is a socketserver module as a library might ship it: a pre-fork pool, a
library raising from a helper module of its own, a stream-only module, a
socket-activated server without ``server_bind``, a server relying on
reference counting to close its requests.  Loaded by path, as a user would.
"""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).parent


def path(name: str) -> str:
    """The stand-in module ``name`` as an ``--impl`` path."""
    return str(HERE / f"{name}.py")
