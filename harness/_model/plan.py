"""What the controller knows of scenarios and cases without importing them.

Scenario modules and implementations are user code: the controller never
imports them (an ``os._exit`` or a blocking import there would end or hang the
run itself).  A run's first worker (or a probe process) discovers them and sends back these plain
records, which carry everything the controller needs: ids for the worker,
strictness and deadlines for judging, required features for ``unsupported``,
and titles for the reports.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from harness._model.records import CaseResult, Finding, Strictness, Verdict
from harness._model.scenario import Case, ScenarioSpec, case_result

_PLAIN = (str, int, float, bool, type(None))


def case_seed(base_seed: int, case_id: str) -> int:
    """A per-case seed: stable across runs and independent of case order."""
    return (base_seed * 1_000_003 + zlib.crc32(case_id.encode())) & 0xFFFFFFFF


@dataclass(frozen=True)
class ScenarioRef:
    """A scenario as the controller sees it (no function, nothing importable)."""

    id: str
    title: str
    invariant: str
    strictness: Strictness
    deadline: float
    profile: str
    requires: tuple[str, ...] = ()
    transports: tuple[str, ...] = ()
    kinds: tuple[str, ...] = ()
    cases: int = 0

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {**self.__dict__, "strictness": self.strictness.value}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ScenarioRef:
        """Rebuild from ``to_json``."""
        return cls(
            id=str(data["id"]),
            title=str(data["title"]),
            invariant=str(data["invariant"]),
            strictness=Strictness(data["strictness"]),
            deadline=float(data["deadline"]),
            profile=str(data["profile"]),
            requires=tuple(data.get("requires", ())),
            transports=tuple(data.get("transports", ())),
            kinds=tuple(data.get("kinds", ())),
            cases=int(data.get("cases", 0)),
        )


@dataclass(frozen=True)
class CaseRef:
    """A case as the controller sees it; ``id`` is what the worker runs."""

    id: str
    spec: ScenarioRef
    transport: str
    kind: str
    params: dict[str, Any] = field(default_factory=dict)
    profile: str = "default"

    def record(
        self,
        impl: str,
        verdict: Verdict,
        duration: float,
        *,
        findings: Sequence[Finding] = (),
        evidence: dict[str, Any] | None = None,
        reason: str = "",
        seed: int = 0,
    ) -> CaseResult:
        """The ``CaseResult`` of this case against ``impl`` (as ``Case.record``)."""
        return case_result(self, impl, verdict, duration, findings, evidence, reason, seed)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict; the scenario is referred to by id."""
        return {
            "id": self.id,
            "scenario": self.spec.id,
            "transport": self.transport,
            "kind": self.kind,
            "params": self.params,
            "profile": self.profile,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any], specs: dict[str, ScenarioRef]) -> CaseRef:
        """Rebuild from ``to_json``, with the scenarios by id."""
        return cls(
            id=str(data["id"]),
            spec=specs[data["scenario"]],
            transport=str(data["transport"]),
            kind=str(data["kind"]),
            params=dict(data.get("params", {})),
            profile=str(data.get("profile", "default")),
        )


def scenario_ref(spec: ScenarioSpec) -> ScenarioRef:
    """The plain record of ``spec``."""
    return ScenarioRef(
        id=spec.id,
        title=spec.title,
        invariant=spec.invariant,
        strictness=spec.strictness,
        deadline=spec.deadline,
        profile=spec.profile,
        requires=tuple(spec.requires),
        transports=tuple(spec.transports),
        kinds=tuple(spec.kinds),
        cases=len(spec.cases()),
    )


def case_ref(case: Case, spec: ScenarioRef) -> CaseRef:
    """The plain record of ``case`` (parameter values other than plain scalars as text)."""
    params = {k: v if isinstance(v, _PLAIN) else str(v) for k, v in case.params.items()}
    return CaseRef(case.id, spec, case.transport, case.kind, params, case.profile)
