"""A loaded implementation, and what it offers: required names and optional features.

Loading itself (imports, entry points, ``.py`` paths) is ``harness._runtime.loading``;
this module only describes the result, so that the model (variants) can use it.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType

#: Names without which nothing can be tested.
REQUIRED_NAMES: tuple[str, ...] = ("BaseServer", "BaseRequestHandler")

#: The base server classes, one per transport family; an implementation needs at
#: least one (a stream-only or Unix-less module is judged on what it offers).
SERVER_BASES: tuple[str, ...] = ("TCPServer", "UDPServer", "UnixStreamServer", "UnixDatagramServer")

#: Optional classes, each a feature of the same name.
OPTIONAL_CLASSES: tuple[str, ...] = (
    *SERVER_BASES,
    "StreamRequestHandler",
    "DatagramRequestHandler",
    "ThreadingMixIn",
    "ForkingMixIn",
    "ThreadingTCPServer",
    "ThreadingUDPServer",
    "ForkingTCPServer",
    "ForkingUDPServer",
    "ThreadingUnixStreamServer",
    "ThreadingUnixDatagramServer",
    "ForkingUnixStreamServer",
    "ForkingUnixDatagramServer",
)

#: Feature name -> (class name, attribute) that must exist for it.
ATTRIBUTE_FEATURES: dict[str, tuple[str, str]] = {
    "allow_reuse_port": ("TCPServer", "allow_reuse_port"),
    "block_on_close": ("ThreadingMixIn", "block_on_close"),
    "forking_block_on_close": ("ForkingMixIn", "block_on_close"),
    "service_actions": ("BaseServer", "service_actions"),
    "shutdown": ("BaseServer", "shutdown"),
    "context_manager": ("BaseServer", "__enter__"),
    "max_children": ("ForkingMixIn", "max_children"),
}


@dataclass(frozen=True)
class Implementation:
    """A loaded implementation: its spec, its module and the features it has."""

    spec: str
    module: ModuleType
    features: frozenset[str]

    @property
    def name(self) -> str:
        """The spec as the user wrote it; used as the implementation's label."""
        return self.spec

    def get(self, name: str) -> type:
        """Return the class ``name`` of the implementation (features say if it exists)."""
        value: type = getattr(self.module, name)
        return value

    def missing(self, features: tuple[str, ...] | frozenset[str]) -> list[str]:
        """Those of ``features`` this implementation lacks."""
        return [f for f in features if f not in self.features]


def probe_features(module: ModuleType) -> frozenset[str]:
    """Return the names of the optional classes and attributes ``module`` provides.

    ``server_bind``: every base server class offered binds an address itself
    (a socket-activated server, handed a listening descriptor, does not).
    """
    found = {name for name in OPTIONAL_CLASSES if isinstance(getattr(module, name, None), type)}
    for feature, (cls_name, attr) in ATTRIBUTE_FEATURES.items():
        cls = getattr(module, cls_name, None)
        if cls is not None and hasattr(cls, attr):
            found.add(feature)
    bases = [getattr(module, name) for name in SERVER_BASES if name in found]
    if bases and all(callable(getattr(cls, "server_bind", None)) for cls in bases):
        found.add("server_bind")
    return frozenset(found)


def missing_required(module: ModuleType) -> list[str]:
    """What ``module`` lacks of the minimum: the required names, and any base server class."""
    missing = [name for name in REQUIRED_NAMES if not isinstance(getattr(module, name, None), type)]
    if not any(isinstance(getattr(module, name, None), type) for name in SERVER_BASES):
        missing.append(" or ".join(SERVER_BASES))
    return missing
