"""Expectation files: cases known to fail for an implementation, with a reason each.

TOML, one table per expectation::

    [[expect]]
    impl = "*/3.6*/socketserver.py"   # implementation spec glob
    case = "concurrency.threading.server_close_waits*"  # case or scenario id glob
    reason = "bpo-31233: server_close() did not wait for threads before 3.7"
    verdicts = ["fail"]               # optional; default fail, hang, crash
    checks = ["hooks.noop"]           # optional; check id globs this failure shows as

A matching ``fail``/``hang``/``crash`` becomes ``xfail``; a matching ``pass``
becomes ``xpass`` (reported; it fails the run with ``--strict``) — unless
``verdicts`` lists ``pass`` too, for a historical bug that shows only on some
runs (a race), where a pass stays a pass.

``checks`` scopes an entry to the findings its bug produces, so that a new
failure of the same case is not hidden: a failing case is ``xfail`` through
such entries only when every one of its findings is named by some matching
entry's ``checks`` (its reason then joins theirs); otherwise it stays a failure.
A passing case stays a pass under such entries: they say what a bug shows as,
not which cases must fail (``case = "*"`` also matches cases that cannot meet it).
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from fnmatch import fnmatchcase
from functools import cached_property
from pathlib import Path
from typing import Any

from harness._execution.discovery import glob_regex
from harness._model.errors import UsageError
from harness._model.records import CaseResult, Verdict

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

_BAD = ("fail", "hang", "crash")
_ALLOWED = (*_BAD, "pass")


@dataclass(frozen=True)
class Expectation:
    """One known failure."""

    impl: str
    case: str
    reason: str
    verdicts: tuple[str, ...] = _BAD
    source: str = ""
    #: Check id globs of the findings this bug produces; empty: any finding.
    checks: tuple[str, ...] = ()

    @cached_property
    def _patterns(self) -> tuple[re.Pattern[str], re.Pattern[str]]:
        return re.compile(glob_regex(self.impl) + "$"), re.compile(glob_regex(self.case) + "$")

    def matches(self, result: CaseResult) -> bool:
        """True when this expectation is about ``result``."""
        impl, case = self._patterns
        return bool(impl.match(result.impl)) and bool(
            case.match(result.id) or case.match(result.scenario)
        )

    def explains(self, check: str) -> bool:
        """True when a finding of ``check`` is one this entry's bug produces."""
        return any(fnmatchcase(check, pattern) for pattern in self.checks)


#: The keys of an ``[[expect]]`` entry and the type each must have.
_KEYS: dict[str, type] = {
    "impl": str,
    "case": str,
    "reason": str,
    "verdicts": list,
    "checks": list,
}


def load_expectations(paths: Iterable[Path]) -> list[Expectation]:
    """Read expectation files; raises UsageError naming the file, entry and key at fault."""
    out: list[Expectation] = []
    for path in paths:
        where = f"expectation file {str(path)!r}"
        out.extend(_entries(where, _document(path, where), str(path)))
    return out


def _document(path: Path, where: str) -> dict[str, Any]:
    try:
        text = Path(path).read_bytes().decode("utf-8")
        document: dict[str, Any] = tomllib.loads(text)
    except OSError as exc:
        raise UsageError(f"{where} cannot be read: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise UsageError(f"{where} is not UTF-8 text (byte {exc.start})") from None
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{where} is not valid TOML: {exc}") from None
    unknown = [k for k in document if k != "expect"]
    if unknown:
        raise UsageError(f"{where}: unknown table or key {unknown[0]!r}; expected [[expect]]")
    entries = document.get("expect", [])
    if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
        raise UsageError(f"{where}: 'expect' must be an array of tables ([[expect]])")
    return document


def _entries(where: str, document: dict[str, Any], source: str) -> list[Expectation]:
    out = []
    for n, entry in enumerate(document.get("expect", []), 1):
        at = f"{where}, entry {n}"
        unknown = [k for k in entry if k not in _KEYS]
        if unknown:
            raise UsageError(f"{at}: unknown key {unknown[0]!r}; expected {', '.join(_KEYS)}")
        for key, kind in _KEYS.items():
            if key in entry and not isinstance(entry[key], kind):
                raise UsageError(
                    f"{at}: {key} = {entry[key]!r} is not a {'list' if kind is list else 'string'}"
                )
        missing = [k for k in ("impl", "case", "reason") if not entry.get(k)]
        if missing:
            raise UsageError(f"{at}: missing {', '.join(missing)}")
        verdicts = tuple(entry.get("verdicts", _BAD))
        unknown = [v for v in verdicts if v not in _ALLOWED]
        if unknown or not verdicts:
            raise UsageError(
                f"{at}: verdicts {list(verdicts)!r}; expected some of {', '.join(_ALLOWED)}"
            )
        checks = tuple(entry.get("checks", ()))
        if "checks" in entry and (not checks or not all(isinstance(c, str) and c for c in checks)):
            raise UsageError(f"{at}: checks {list(checks)!r}; expected check id globs")
        out.append(
            Expectation(entry["impl"], entry["case"], entry["reason"], verdicts, source, checks)
        )
    return out


def apply_expectations(
    results: Sequence[CaseResult], expectations: Sequence[Expectation]
) -> list[CaseResult]:
    """Turn expected failures into ``xfail`` and unexpected passes into ``xpass``."""
    return [_apply(result, [e for e in expectations if e.matches(result)]) for result in results]


def _apply(result: CaseResult, matching: list[Expectation]) -> CaseResult:
    """The first matching entry decides, as it always did; a check-scoped first
    entry brings in every check-scoped entry that matches the case."""
    if not matching:
        return result
    first, verdict = matching[0], result.verdict.value
    if result.verdict is Verdict.PASS:
        if "pass" in first.verdicts or first.checks:
            # A race that did not show this time; or an entry that names the findings a bug
            # shows as, not the cases it must fail (a case that cannot meet it passes).
            return result
        reason = f"passed although expected to fail: {first.reason}"
        return replace(result, verdict=Verdict.XPASS, reason=reason)
    if not first.checks:
        used = [first] if verdict in first.verdicts else []
    else:
        used = _explaining(result, matching)
    if not used:
        return result  # a verdict or finding no entry names: a new failure, shown as such
    reason = " | ".join(dict.fromkeys(e.reason for e in used))
    evidence = {**result.evidence, "expected": verdict}
    return replace(result, verdict=Verdict.XFAIL, reason=reason, evidence=evidence)


def _explaining(result: CaseResult, matching: list[Expectation]) -> list[Expectation]:
    """The check-scoped entries that together name every finding; [] if some finding is not."""
    scoped = [e for e in matching if e.checks and result.verdict.value in e.verdicts]
    checks = {f.check for f in result.findings}
    if not scoped or not checks:
        return []
    if not all(any(e.explains(check) for e in scoped) for check in checks):
        return []
    return [e for e in scoped if any(e.explains(check) for check in checks)]
