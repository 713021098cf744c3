"""sockspec: a conformance harness for socketserver-style servers.

The public API for writing scenarios and checking implementations.  Everything
else lives in private ``_modules``; importing this package has no side effects.
"""

from . import checks
from ._context import Context
from ._errors import (
    Abort,
    Hang,
    LoadError,
    ScenarioDefinitionError,
    ScenarioImportError,
    SockspecError,
    Unsupported,
    UsageError,
)
from ._handlers import (
    Behaviour,
    HandlerSpec,
    InjectedError,
    echo,
    echo_lines,
    gated,
    raising,
    sequence,
)
from ._loading import Implementation, load_implementation, probe_features
from ._records import (
    CaseResult,
    ClientResult,
    Endpoint,
    Finding,
    LifecycleEvent,
    Strictness,
    Verdict,
)
from ._scenario import ALL, Case, Param, ScenarioSpec, param, scenario
from ._serverhandle import ServerHandle
from ._settings import PROFILES, Settings
from ._swarm import (
    Close,
    ExpectEOF,
    Pause,
    Recv,
    RecvAll,
    RecvDatagram,
    RecvLine,
    Reset,
    Script,
    Send,
    ShutdownWrite,
    echo_script,
)
from ._variants import DATAGRAM_TRANSPORTS, KINDS, STREAM_TRANSPORTS, TRANSPORTS

__all__ = [
    "ALL",
    "DATAGRAM_TRANSPORTS",
    "KINDS",
    "PROFILES",
    "STREAM_TRANSPORTS",
    "TRANSPORTS",
    "Abort",
    "Behaviour",
    "Case",
    "CaseResult",
    "ClientResult",
    "Close",
    "Context",
    "Endpoint",
    "ExpectEOF",
    "Finding",
    "HandlerSpec",
    "Hang",
    "Implementation",
    "InjectedError",
    "LifecycleEvent",
    "LoadError",
    "Param",
    "Pause",
    "Recv",
    "RecvAll",
    "RecvDatagram",
    "RecvLine",
    "Reset",
    "ScenarioDefinitionError",
    "ScenarioImportError",
    "ScenarioSpec",
    "Script",
    "Send",
    "ServerHandle",
    "Settings",
    "ShutdownWrite",
    "SockspecError",
    "Strictness",
    "Unsupported",
    "UsageError",
    "Verdict",
    "checks",
    "echo",
    "echo_lines",
    "echo_script",
    "gated",
    "load_implementation",
    "param",
    "probe_features",
    "raising",
    "scenario",
    "sequence",
]
