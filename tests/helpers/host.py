"""Host features some tests need, and skip reasons that name them.

Every test that needs something of the host beyond the pip dependencies (raw
packets, nftables, chromium, gevent/eventlet, an interpreter) skips with
``lacks(feature, detail)``; ``conftest.py`` counts these at the end of the run,
so a green run also says what it could not try.
"""

from __future__ import annotations

import re

#: How every host-feature skip reason starts: ``host lacks <feature>: <detail>``.
PREFIX = "host lacks "
_REASON = re.compile(r"host lacks ([^:]+):")

#: Words of an ``unsupported`` reason -> the host feature it names (first match wins).
_FEATURES = (
    ("nftables", "nftables"),
    ("raw packets are switched off", "raw packets"),
    ("raw socket", "raw packets"),
    ("libpcap", "libpcap"),
    ("AF_UNIX", "AF_UNIX"),
    ("IPv6", "IPv6"),
    ("fork", "fork"),
)


def lacks(feature: str, detail: str) -> str:
    """The skip reason for a test that needs ``feature``."""
    return f"{PREFIX}{feature}: {detail}"


def feature_of_reason(reason: str) -> str:
    """The host feature an ``unsupported`` verdict's reason names (``host support`` if none)."""
    return next((name for word, name in _FEATURES if word in reason), "host support")


def feature_of_skip(message: str) -> str | None:
    """The feature named by a skip message made with ``lacks``, or None."""
    found = _REASON.search(message)
    return found.group(1) if found else None
