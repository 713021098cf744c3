"""Records: the frozen values that flow through the harness.

Every record is a frozen dataclass with a noun name and a ``to_json`` method so
that results files are produced from one place and never from ad-hoc dicts.
Nothing here imports another harness module: records sit at the bottom of the
import graph.
"""

from __future__ import annotations

import enum
import shlex
import socket
from dataclasses import asdict, dataclass, field
from typing import Any


class Verdict(str, enum.Enum):
    """The outcome of one case for one implementation."""

    PASS = "pass"
    FAIL = "fail"
    HANG = "hang"
    CRASH = "crash"
    UNSUPPORTED = "unsupported"
    ERROR = "error"
    XFAIL = "xfail"  # failed, hung or crashed as an expectation file says it would
    XPASS = "xpass"  # passed although an expectation file says it fails


class Strictness(str, enum.Enum):
    """How much a failing case counts: only ``must`` failures fail a run."""

    MUST = "must"
    SHOULD = "should"
    INFO = "info"


@dataclass(frozen=True)
class Endpoint:
    """Where a server listens: enough for a client to reach it.

    ``address`` is a ``(host, port)`` tuple for inet transports (4-tuple for
    IPv6 is normalised to ``(host, port)``) and a filesystem path for Unix ones.
    """

    transport: str
    family: int
    socktype: int
    address: Any

    @property
    def is_stream(self) -> bool:
        """True for SOCK_STREAM transports."""
        return self.socktype == socket.SOCK_STREAM


@dataclass(frozen=True)
class ClientResult:
    """What one client of a swarm did and saw, with monotonic timings in seconds."""

    index: int
    ok: bool
    received: bytes = b""
    error: str | None = None
    error_type: str | None = None
    local_address: Any = None
    started: float = 0.0
    connected: float | None = None
    finished: float = 0.0
    ops_done: int = 0

    @property
    def connect_time(self) -> float | None:
        """Seconds from start to an established connection (None for datagrams)."""
        return None if self.connected is None else self.connected - self.started

    @property
    def duration(self) -> float:
        """Seconds the whole client script took."""
        return self.finished - self.started


@dataclass(frozen=True)
class LifecycleEvent:
    """One observed call of a server or handler hook.

    ``phase`` is ``call`` for a hook entered, ``return`` when it returned,
    ``raise`` when it raised (with ``exc_type``/``exc``), and ``point`` for
    events recorded once (e.g. handler construction).
    """

    seq: int
    name: str
    phase: str
    conn: int | None
    t: float
    pid: int
    thread_id: int
    thread_name: str
    daemon: bool
    server: int = 0
    exc_type: str | None = None
    exc: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        # Its fields and a copy of ``detail``, not ``asdict``: that deep copy cost
        # 0.1 ms an event, and a failing case's evidence holds up to 400 of them.
        data = dict(self.__dict__)
        data["detail"] = dict(self.detail)
        return data

    def label(self) -> str:
        """Short human label such as ``handle raised ValueError``."""
        if self.phase == "raise":
            return f"{self.name} raised {self.exc_type}"
        if self.phase in ("call", "point"):
            return self.name
        return f"{self.name} returned"


@dataclass(frozen=True)
class Finding:
    """A check that did not hold: what was expected, what was observed, and proof."""

    check: str
    message: str
    expected: str = ""
    observed: str = ""
    conn: int | None = None
    evidence: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return asdict(self)


def replay_command(result: CaseResult) -> str:
    """The one command that runs exactly this case again (as the runner recorded it)."""
    recorded = result.evidence.get("replay")
    if isinstance(recorded, str):
        return recorded
    base = result.evidence.get("base_seed", 0)
    return (
        f"python -m harness run --impl {shlex.quote(result.impl)} "
        f"--select {shlex.quote(result.id)} --seed {base} --profile stress"
    )


@dataclass(frozen=True)
class CaseResult:
    """The record of one case run against one implementation."""

    id: str
    scenario: str
    impl: str
    verdict: Verdict
    strictness: Strictness
    duration: float
    params: dict[str, Any] = field(default_factory=dict)
    findings: tuple[Finding, ...] = ()
    evidence: dict[str, Any] = field(default_factory=dict)
    reason: str = ""
    seed: int = 0
    title: str = ""
    invariant: str = ""

    @property
    def counts_as_failure(self) -> bool:
        """True when this result makes the run fail (exit status 1), ``--strict`` aside."""
        bad = self.verdict in (Verdict.FAIL, Verdict.HANG, Verdict.CRASH)
        return bad and self.strictness is Strictness.MUST

    def to_json(self) -> dict[str, Any]:
        """Return a JSON-ready dict (the per-case record of results.json)."""
        return {
            "id": self.id,
            "scenario": self.scenario,
            "impl": self.impl,
            "verdict": self.verdict.value,
            "strictness": self.strictness.value,
            "duration": round(self.duration, 6),
            "params": self.params,
            "findings": [f.to_json() for f in self.findings],
            "evidence": self.evidence,
            "reason": self.reason,
            "seed": self.seed,
            "title": self.title,
            "invariant": self.invariant,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CaseResult:
        """Rebuild a record from its ``to_json`` form."""
        return cls(
            id=data["id"],
            scenario=data["scenario"],
            impl=data["impl"],
            verdict=Verdict(data["verdict"]),
            strictness=Strictness(data["strictness"]),
            duration=float(data["duration"]),
            params=dict(data.get("params", {})),
            findings=tuple(Finding(**f) for f in data.get("findings", [])),
            evidence=dict(data.get("evidence", {})),
            reason=data.get("reason", ""),
            seed=int(data.get("seed", 0)),
            title=data.get("title", ""),
            invariant=data.get("invariant", ""),
        )
