"""Expectation files: cases known to fail for an implementation, with a reason each.

TOML, one table per expectation::

    [[expect]]
    impl = "*/3.6*/socketserver.py"   # implementation spec glob
    case = "concurrency.threading.server_close_waits*"  # case or scenario id glob
    reason = "bpo-31233: server_close() did not wait for threads before 3.7"
    verdicts = ["fail"]               # optional; default fail, hang, crash

A matching ``fail``/``hang``/``crash`` becomes ``xfail``; a matching ``pass``
becomes ``xpass`` (reported; it fails the run with ``--strict``) — unless
``verdicts`` lists ``pass`` too, for a historical bug that shows only on some
runs (a race), where a pass stays a pass.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
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

    @cached_property
    def _patterns(self) -> tuple[re.Pattern[str], re.Pattern[str]]:
        return re.compile(glob_regex(self.impl) + "$"), re.compile(glob_regex(self.case) + "$")

    def matches(self, result: CaseResult) -> bool:
        """True when this expectation is about ``result``."""
        impl, case = self._patterns
        return bool(impl.match(result.impl)) and bool(
            case.match(result.id) or case.match(result.scenario)
        )


#: The keys of an ``[[expect]]`` entry and the type each must have.
_KEYS: dict[str, type] = {"impl": str, "case": str, "reason": str, "verdicts": list}


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
        document = tomllib.loads(text)
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
        out.append(Expectation(entry["impl"], entry["case"], entry["reason"], verdicts, source))
    return out


def apply_expectations(
    results: Sequence[CaseResult], expectations: Sequence[Expectation]
) -> list[CaseResult]:
    """Turn expected failures into ``xfail`` and unexpected passes into ``xpass``."""
    out = []
    for result in results:
        match = next((e for e in expectations if e.matches(result)), None)
        if match is None:
            out.append(result)
        elif result.verdict is Verdict.PASS and "pass" in match.verdicts:
            out.append(result)  # a race that did not show this time
        elif result.verdict.value in match.verdicts:
            evidence = {**result.evidence, "expected": result.verdict.value}
            out.append(
                replace(result, verdict=Verdict.XFAIL, reason=match.reason, evidence=evidence)
            )
        elif result.verdict is Verdict.PASS:
            reason = f"passed although expected to fail: {match.reason}"
            out.append(replace(result, verdict=Verdict.XPASS, reason=reason))
        else:
            out.append(result)
    return out
