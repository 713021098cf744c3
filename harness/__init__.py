"""sockspec: a conformance harness for socketserver-style servers.

The public API for writing scenarios and checking implementations.  Importing
this package has no side effects and imports nothing else: each public name is
loaded on first use (PEP 562), so a worker on an old interpreter never loads a
controller-only module.

General layout
--------------
Public modules sit in front of private folders (as hypothesis' ``strategies``
in front of ``strategies/_internal``): ``harness`` (this file), ``checks``,
``support``, ``fuzz``, ``packets`` and ``pytest_plugin``.  Inside ``harness/``
the private folders are layers; each imports only from the layers listed
below it, never from a layer above (the ``lint`` tox env enforces this with
import-linter, see ``[tool.importlinter]`` in ``pyproject.toml``).  Modules
inside a private folder need no leading underscore.

====================  ==========================================================  ======
layer                 what lives there                                            Python
====================  ==========================================================  ======
``_cli``              command line, progress output, scenario skeletons           3.10+
``pytest_plugin``     the pytest plugin (the only module that imports pytest)     3.10+
``_bench``,           benchmarks (``python -m harness bench``); mutation testing  3.10+
``_mutation``         (``python -m harness mutate``)
``_control``          controller: supervisor, runner, probe driver, agents,       3.10+
                      expectations, history
``_report``           report view model, problems (triage), writers (HTML,        3.10+
                      Markdown, JUnit, SVG), results files, compare
``_execution``        worker and probe: discovery, executor, blame, evidence,     3.7+
                      post-check binding, worker loop
``fuzz``/``_fuzz``,   optional engines: Hypothesis fuzzing; scapy capture and     3.7+
``packets``/``_wire`` crafted packets (independent of each other)
``support``/          fault injection, descriptors, timed calls, children         3.7+
``_support``
``checks``/``_checks`` checks only: findings about a case's events and clients   3.7+
``_runtime``          context, instrumented servers, event log, clients, swarms   3.7+
``_model``            records, errors, settings, variants, lifecycle model,       3.7+
                      scenario declaration; no I/O
====================  ==========================================================  ======

The 3.7+ layers are what a worker imports, possibly under an old interpreter
(``harness._control.agents.WORKER_FLOOR``); ruff checks each folder against its
own floor (``[tool.ruff.per-file-target-version]``).  Nothing imports ``_cli``
or ``pytest_plugin``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from harness import checks
    from harness._model.errors import (
        Abort,
        Hang,
        LoadError,
        ScenarioDefinitionError,
        ScenarioImportError,
        SockspecError,
        Unsupported,
        UsageError,
    )
    from harness._model.implementation import (
        Implementation,
        probe_features,
    )
    from harness._model.records import (
        CaseResult,
        ClientResult,
        Endpoint,
        Finding,
        LifecycleEvent,
        Strictness,
        Verdict,
    )
    from harness._model.scenario import (
        ALL,
        Case,
        Param,
        ScenarioSpec,
        param,
        scenario,
    )
    from harness._model.settings import (
        PROFILES,
        Settings,
    )
    from harness._model.variants import (
        DATAGRAM_TRANSPORTS,
        KINDS,
        STREAM_TRANSPORTS,
        TRANSPORTS,
    )
    from harness._runtime.context import (
        Context,
    )
    from harness._runtime.handlers import (
        Behaviour,
        HandlerSpec,
        InjectedError,
        echo,
        echo_lines,
        gated,
        raising,
        sequence,
    )
    from harness._runtime.loading import (
        load_implementation,
    )
    from harness._runtime.serverhandle import (
        ServerHandle,
    )
    from harness._runtime.swarm import (
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

#: Public name -> the module that defines it (loaded on first access).
_LAZY: dict[str, str] = {
    "checks": "harness.checks",
    "Context": "harness._runtime.context",
    "Abort": "harness._model.errors",
    "Hang": "harness._model.errors",
    "LoadError": "harness._model.errors",
    "ScenarioDefinitionError": "harness._model.errors",
    "ScenarioImportError": "harness._model.errors",
    "SockspecError": "harness._model.errors",
    "Unsupported": "harness._model.errors",
    "UsageError": "harness._model.errors",
    "Behaviour": "harness._runtime.handlers",
    "HandlerSpec": "harness._runtime.handlers",
    "InjectedError": "harness._runtime.handlers",
    "echo": "harness._runtime.handlers",
    "echo_lines": "harness._runtime.handlers",
    "gated": "harness._runtime.handlers",
    "raising": "harness._runtime.handlers",
    "sequence": "harness._runtime.handlers",
    "Implementation": "harness._model.implementation",
    "probe_features": "harness._model.implementation",
    "load_implementation": "harness._runtime.loading",
    "CaseResult": "harness._model.records",
    "ClientResult": "harness._model.records",
    "Endpoint": "harness._model.records",
    "Finding": "harness._model.records",
    "LifecycleEvent": "harness._model.records",
    "Strictness": "harness._model.records",
    "Verdict": "harness._model.records",
    "ALL": "harness._model.scenario",
    "Case": "harness._model.scenario",
    "Param": "harness._model.scenario",
    "ScenarioSpec": "harness._model.scenario",
    "param": "harness._model.scenario",
    "scenario": "harness._model.scenario",
    "ServerHandle": "harness._runtime.serverhandle",
    "PROFILES": "harness._model.settings",
    "Settings": "harness._model.settings",
    "Close": "harness._runtime.swarm",
    "ExpectEOF": "harness._runtime.swarm",
    "Pause": "harness._runtime.swarm",
    "Recv": "harness._runtime.swarm",
    "RecvAll": "harness._runtime.swarm",
    "RecvDatagram": "harness._runtime.swarm",
    "RecvLine": "harness._runtime.swarm",
    "Reset": "harness._runtime.swarm",
    "Script": "harness._runtime.swarm",
    "Send": "harness._runtime.swarm",
    "ShutdownWrite": "harness._runtime.swarm",
    "echo_script": "harness._runtime.swarm",
    "DATAGRAM_TRANSPORTS": "harness._model.variants",
    "KINDS": "harness._model.variants",
    "STREAM_TRANSPORTS": "harness._model.variants",
    "TRANSPORTS": "harness._model.variants",
}


def __getattr__(name: str) -> Any:
    """Load a public name on first access (PEP 562)."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'harness' has no attribute {name!r}")
    value = (
        importlib.import_module(module)
        if name == "checks"
        else getattr(importlib.import_module(module), name)
    )
    globals()[name] = value  # later lookups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


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
