"""Run settings: one frozen value passed down, with named profiles.

Environment variables are read here and nowhere else (``Settings.from_env``).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field, replace
from pathlib import Path

from harness._model.errors import UsageError
from harness._model.phases import KnownHang

#: Profiles, smallest first: a case runs in its own profile and every larger one.
PROFILES: tuple[str, ...] = ("smoke", "default", "full", "stress")

DEFAULT_IMPLS: tuple[str, ...] = ("stdlib", "reference")

#: ``SOCKSPEC_RAW_PACKETS=off`` makes the host probe report raw packets unavailable, so the
#: harness and its tests can be tried as on a host without raw sockets (workers inherit it).
RAW_PACKETS_ENV = "SOCKSPEC_RAW_PACKETS"


def raw_packets_switched_off() -> bool:
    """True when ``SOCKSPEC_RAW_PACKETS`` switches raw packets off (``off``, ``0``, ``no``)."""
    value = os.environ.get(RAW_PACKETS_ENV, "").strip().lower()
    return bool(value) and value in _OFF  # unset or empty leaves raw packets on


#: ``--jobs`` above this many workers per CPU is refused: oversubscribed workers
#: miss their deadlines, and those misses would be blamed on the server.
JOBS_PER_CPU = 4


def profile_rank(name: str) -> int:
    """Position of a profile in ``PROFILES``; raises UsageError for unknown names."""
    try:
        return PROFILES.index(name)
    except ValueError:
        raise UsageError(
            f"unknown profile {name!r}; expected one of {', '.join(PROFILES)}"
        ) from None


@dataclass(frozen=True)
class CaseOptions:
    """What a single case needs from the run's settings (crosses into worker processes)."""

    seed: int = 0
    deadline_scale: float = 1.0
    fuzz_budget: float | None = None  # seconds per fuzz case; None: the profile's default
    capture: bool = False  # record each case's loopback traffic into a pcap
    artifacts_dir: str | None = None  # where a case may write files (pcaps), the report dir
    # Phase deadlines (see _model.phases); off: only the case deadline and the
    # scenario's own timeouts apply, as before phase deadlines existed.
    phase_deadlines: bool = True
    # Hangs this implementation already showed in earlier cases (the controller
    # keeps them, so they survive worker restarts); empty for a first case.
    known_hangs: tuple[KnownHang, ...] = ()
    # --oracle: record each case's normalised observation (harness._model.outcome).
    observe: bool = False

    def __post_init__(self) -> None:
        # JSON from the command line gives lists; keep the record hashable and typed.
        known = tuple(KnownHang.from_json(k) for k in self.known_hangs)
        object.__setattr__(self, "known_hangs", known)

    def to_json(self) -> dict[str, object]:
        """A JSON-ready dict (for the worker's command line)."""
        data = dict(self.__dict__)
        data["known_hangs"] = [k.to_json() for k in self.known_hangs]
        return data


@dataclass(frozen=True)
class Settings:
    """Everything a run needs to know, fixed before the first case starts."""

    impls: tuple[str, ...] = DEFAULT_IMPLS
    select: tuple[str, ...] = ()
    profile: str = "default"
    seed: int = 0
    jobs: int = 1
    report_dir: Path | None = None
    scenario_dirs: tuple[Path, ...] = ()
    deadline_scale: float = 1.0
    expect_files: tuple[Path, ...] = ()
    strict: bool = False
    fuzz_budget: float | None = None
    capture: bool = False
    phase_deadlines: bool = True
    load_timeout: float = 60.0  # seconds to load implementations and discover scenarios
    oracle: str | None = None  # --oracle SPEC: every case also judged against this one
    extra: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        profile_rank(self.profile)
        if self.jobs < 1:
            raise UsageError(f"--jobs must be at least 1, got {self.jobs!r}")
        limit = JOBS_PER_CPU * (os.cpu_count() or 1)
        if self.jobs > limit:
            raise UsageError(
                f"--jobs {self.jobs} is more than {JOBS_PER_CPU} workers per CPU "
                f"({os.cpu_count() or 1} here): overloaded workers miss deadlines that "
                f"would be blamed on the server; use --jobs {limit} or fewer"
            )
        _positive("SOCKSPEC_DEADLINE_SCALE", self.deadline_scale)
        _positive("SOCKSPEC_LOAD_TIMEOUT", self.load_timeout)
        if self.fuzz_budget is not None:
            _positive("--fuzz-budget", self.fuzz_budget)
        twice = sorted({i for i in self.impls if self.impls.count(i) > 1})
        if twice:
            raise UsageError(f"--impl {twice[0]!r} is given more than once")

    def case_options(self, artifacts_dir: Path | None = None) -> CaseOptions:
        """The per-case slice of these settings."""
        return CaseOptions(
            seed=self.seed,
            deadline_scale=self.deadline_scale,
            fuzz_budget=self.fuzz_budget,
            capture=self.capture,
            artifacts_dir=None if artifacts_dir is None else str(artifacts_dir),
            phase_deadlines=self.phase_deadlines,
            observe=self.oracle is not None,
        )

    def with_(self, **changes: object) -> Settings:
        """Return a copy with some fields changed."""
        return replace(self, **changes)  # type: ignore[arg-type]

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides: object) -> Settings:
        """Build settings from ``SOCKSPEC_*`` variables, then apply explicit overrides.

        ``SOCKSPEC_DEADLINE_SCALE`` stretches every case deadline (for slow or
        loaded machines); ``SOCKSPEC_LOAD_TIMEOUT`` bounds loading implementations
        and scenarios (seconds); ``SOCKSPEC_SEED`` and ``SOCKSPEC_PROFILE`` give defaults;
        ``SOCKSPEC_PHASE_DEADLINES=0`` turns phase deadlines off.
        """
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        if "SOCKSPEC_DEADLINE_SCALE" in env:
            values["deadline_scale"] = _number(env, "SOCKSPEC_DEADLINE_SCALE")
        if "SOCKSPEC_SEED" in env:
            values["seed"] = _integer(env, "SOCKSPEC_SEED")
        if "SOCKSPEC_PROFILE" in env:
            values["profile"] = env["SOCKSPEC_PROFILE"]
        if "SOCKSPEC_LOAD_TIMEOUT" in env:
            values["load_timeout"] = _number(env, "SOCKSPEC_LOAD_TIMEOUT")
        if "SOCKSPEC_FUZZ_BUDGET" in env:
            values["fuzz_budget"] = _number(env, "SOCKSPEC_FUZZ_BUDGET")
        if "SOCKSPEC_PHASE_DEADLINES" in env:
            values["phase_deadlines"] = env["SOCKSPEC_PHASE_DEADLINES"].strip().lower() not in _OFF
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)  # type: ignore[arg-type]


_OFF = ("0", "", "no", "off", "false")


def _number(env: os._Environ[str] | dict[str, str], name: str) -> float:
    return float(_parsed(env, name, float, "a number"))


def _integer(env: os._Environ[str] | dict[str, str], name: str) -> int:
    return int(_parsed(env, name, int, "an integer"))


def _parsed(
    env: os._Environ[str] | dict[str, str], name: str, kind: type[float] | type[int], what: str
) -> float:
    raw = env[name]
    try:
        return kind(raw)
    except ValueError:
        raise UsageError(f"{name}={raw!r} is not {what}") from None


def _positive(name: str, value: float) -> None:
    """Raise UsageError unless ``value`` is a finite number above zero."""
    if not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise UsageError(f"{name} must be a finite number above 0, got {value!r}")
