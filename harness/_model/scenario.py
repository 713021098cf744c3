"""The scenario decorator and the cases a scenario expands into.

``@scenario(...)`` attaches a ``ScenarioSpec`` to the function (the Hypothesis
way: a marker on the function, no global registry); discovery finds marked
functions.  A *case* is one scenario with one transport, one kind and one
combination of parameters; its id is stable and readable, e.g.
``echo.concurrent[tcp-threading-clients=100]``.
"""

from __future__ import annotations

import inspect
import itertools
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from harness._model.errors import ScenarioDefinitionError
from harness._model.records import CaseResult, Finding, Strictness, Verdict
from harness._model.settings import PROFILES, profile_rank
from harness._model.variants import KINDS, TRANSPORTS

#: The post-checks a scenario may name in ``checks=(...)``: the model names them,
#: the executor binds each to its function (``harness._execution.postchecks``).
POST_CHECK_NAMES: tuple[str, ...] = ("lifecycle", "concurrency", "resources")

MARKER = "__sockspec_scenario__"
ALL = "all"

_ID = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)+$")

F = TypeVar("F", bound="Callable[..., Any]")  # a string: Python < 3.9 workers import this


@dataclass(frozen=True)
class ScenarioSpec:
    """What a scenario declares about itself."""

    id: str
    title: str
    invariant: str
    func: Callable[..., Any]
    transports: tuple[str, ...]
    kinds: tuple[str, ...]
    params: Mapping[str, tuple[Any, ...]]
    profile: str
    requires: tuple[str, ...]
    strictness: Strictness
    checks: tuple[str, ...]
    deadline: float
    module: str = ""

    def cases(self) -> list[Case]:
        """Every case of this scenario: transports x kinds x parameter combinations."""
        names = list(self.params)
        combos = list(itertools.product(*(self.params[n] for n in names))) or [()]
        out = []
        for transport in self.transports:
            for kind in self.kinds:
                for combo in combos:
                    values = {
                        n: combo[i].value if isinstance(combo[i], Param) else combo[i]
                        for i, n in enumerate(names)
                    }
                    profiles = [self.profile, *(v.profile for v in combo if isinstance(v, Param))]
                    profile = max(profiles, key=profile_rank)
                    out.append(Case(self, transport, kind, values, profile))
        return out


@dataclass(frozen=True)
class Case:
    """One runnable combination of a scenario, a variant and parameter values."""

    spec: ScenarioSpec
    transport: str
    kind: str
    params: dict[str, Any] = field(default_factory=dict)
    profile: str = "default"  # the spec's profile, raised by any ``param(..., profile=)``

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
        """The ``CaseResult`` of this case against ``impl``."""
        return case_result(self, impl, verdict, duration, findings, evidence, reason, seed)

    @property
    def id(self) -> str:
        """Stable case id: ``<scenario>[<transport>-<kind>(-<name>=<value>)*]``."""
        parts = [self.transport, self.kind, *(f"{k}={_fmt(v)}" for k, v in self.params.items())]
        return f"{self.spec.id}[{'-'.join(parts)}]"


@dataclass(frozen=True)
class Param:
    """A parameter value that only runs in a larger profile (see ``param``)."""

    value: Any
    profile: str


def param(value: Any, *, profile: str) -> Param:
    """Mark a parameter value as belonging to ``profile`` (e.g. a 1,000-client variant
    of a scenario that runs with 100 clients in ``smoke``)."""
    profile_rank(profile)
    return Param(value, profile)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def scenario(
    id: str,
    *,
    title: str,
    invariant: str | None = None,
    transports: str | Iterable[str] = ALL,
    kinds: str | Iterable[str] = ALL,
    params: Mapping[str, Sequence[Any]] | None = None,
    profile: str = "default",
    requires: Iterable[str] = (),
    strictness: str = "must",
    checks: Iterable[str] = ("lifecycle", "resources"),
    deadline: float = 20.0,
) -> Callable[[F], F]:
    """Mark a function as a scenario.

    ``transports``/``kinds`` take names from ``TRANSPORTS``/``KINDS`` (or
    ``"all"``); ``params`` maps each parameter of the function (after ``ctx``)
    to the values it takes; ``requires`` names implementation features (see
    ``harness.probe_features``) whose absence makes the case ``unsupported``;
    ``checks`` are the post-checks run after the scenario (see ``POST_CHECKS``);
    ``deadline`` is the case's time limit in seconds before it is a ``hang``.
    The invariant defaults to the function's docstring.
    """

    def mark(func: F) -> F:
        where = f"{func.__module__}.{func.__qualname__}"
        spec = ScenarioSpec(
            id=_check_id(id, where),
            title=title,
            invariant=_invariant(invariant, func, where),
            func=func,
            transports=_names(transports, TRANSPORTS, "transport", where),
            kinds=_names(kinds, KINDS, "kind", where),
            params=_params(params or {}, func, where),
            profile=_profile(profile, where),
            requires=tuple(requires),
            strictness=_strictness(strictness, where),
            checks=_checks(checks, where),
            deadline=_deadline(deadline, where),
            module=func.__module__,
        )
        setattr(func, MARKER, spec)
        return func

    return mark


def _check_id(value: str, where: str) -> str:
    if not isinstance(value, str) or not _ID.match(value):
        raise ScenarioDefinitionError(
            f"scenario {where}: id {value!r} is not a dotted lower-case id "
            "like 'lifecycle.handler.finish_after_raise'"
        )
    return value


def _invariant(value: str | None, func: Callable[..., Any], where: str) -> str:
    text = value or inspect.getdoc(func) or ""
    if not text.strip():
        raise ScenarioDefinitionError(
            f"scenario {where}: no invariant; pass invariant=... or give the function a docstring"
        )
    return " ".join(text.split())


def _names(
    value: str | Iterable[str], known: Mapping[str, Any], what: str, where: str
) -> tuple[str, ...]:
    names = tuple(known) if value == ALL else ((value,) if isinstance(value, str) else tuple(value))
    for name in names:
        if name not in known:
            raise ScenarioDefinitionError(
                f"scenario {where}: unknown {what} {name!r}; expected one of {', '.join(known)}"
            )
    if not names:
        raise ScenarioDefinitionError(f"scenario {where}: no {what}s given")
    return names


def _params(
    params: Mapping[str, Sequence[Any]], func: Callable[..., Any], where: str
) -> dict[str, tuple[Any, ...]]:
    accepted = list(inspect.signature(func).parameters)[1:]
    for name in params:
        if name not in accepted:
            raise ScenarioDefinitionError(
                f"scenario {where}: parameter {name!r} is not an argument of the function "
                f"(it takes ctx, {', '.join(accepted) or 'nothing else'})"
            )
    missing = [a for a in accepted if a not in params and _required(func, a)]
    if missing:
        raise ScenarioDefinitionError(
            f"scenario {where}: argument(s) {', '.join(missing)} have no values in params=..."
        )
    out: dict[str, tuple[Any, ...]] = {}
    for name, values in params.items():
        values = tuple(values) if isinstance(values, (list, tuple, range)) else (values,)
        if not values:
            raise ScenarioDefinitionError(f"scenario {where}: parameter {name!r} has no values")
        out[name] = values
    return out


def _required(func: Callable[..., Any], name: str) -> bool:
    return inspect.signature(func).parameters[name].default is inspect.Parameter.empty


def _profile(value: str, where: str) -> str:
    if value not in PROFILES:
        raise ScenarioDefinitionError(
            f"scenario {where}: unknown profile {value!r}; expected one of {', '.join(PROFILES)}"
        )
    profile_rank(value)
    return value


def _strictness(value: str, where: str) -> Strictness:
    try:
        return Strictness(value)
    except ValueError:
        raise ScenarioDefinitionError(
            f"scenario {where}: unknown strictness {value!r}; expected must, should or info"
        ) from None


def _checks(value: Iterable[str], where: str) -> tuple[str, ...]:
    names = tuple(value)
    for name in names:
        if name not in POST_CHECK_NAMES:
            known = ", ".join(POST_CHECK_NAMES)
            raise ScenarioDefinitionError(
                f"scenario {where}: unknown check {name!r}; expected one of {known}"
            )
    return names


def _deadline(value: float, where: str) -> float:
    if not isinstance(value, (int, float)) or value <= 0:
        raise ScenarioDefinitionError(f"scenario {where}: deadline must be positive, got {value!r}")
    return float(value)


def spec_of(obj: object) -> ScenarioSpec | None:
    """The ScenarioSpec attached to ``obj`` by ``@scenario``, if any."""
    spec = getattr(obj, MARKER, None)
    return spec if isinstance(spec, ScenarioSpec) else None


if TYPE_CHECKING:  # typing.Protocol is 3.8+, and workers run on 3.7
    from typing import Protocol

    class _SpecLike(Protocol):
        @property
        def id(self) -> str: ...
        @property
        def strictness(self) -> Strictness: ...
        @property
        def title(self) -> str: ...
        @property
        def invariant(self) -> str: ...

    class _CaseLike(Protocol):
        """What ``case_result`` reads of a case: ``Case``, or the controller's ``CaseRef``."""

        @property
        def id(self) -> str: ...
        @property
        def transport(self) -> str: ...
        @property
        def kind(self) -> str: ...
        @property
        def params(self) -> dict[str, Any]: ...
        @property
        def spec(self) -> _SpecLike: ...


def case_result(
    case: _CaseLike,
    impl: str,
    verdict: Verdict,
    duration: float,
    findings: Sequence[Finding] = (),
    evidence: dict[str, Any] | None = None,
    reason: str = "",
    seed: int = 0,
) -> CaseResult:
    """The ``CaseResult`` of ``case`` against ``impl`` (one place for ``Case`` and ``CaseRef``)."""
    spec = case.spec
    return CaseResult(
        id=case.id,
        scenario=spec.id,
        impl=impl,
        verdict=verdict,
        strictness=spec.strictness,
        duration=duration,
        params={"transport": case.transport, "kind": case.kind, **case.params},
        findings=tuple(findings),
        evidence=evidence or {},
        reason=reason,
        seed=seed,
        title=spec.title,
        invariant=spec.invariant,
    )
