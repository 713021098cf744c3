"""Comparing two observations (``harness._model.outcome``): the findings of ``--oracle``.

Each section of an observation is a multiset of lines; a section differs when
the multisets do.  A difference becomes one ``oracle.differs`` finding per
section, whose

* ``expected``/``observed`` is the *gist*: what the oracle did that the target
  did not, and the reverse, told by hook outcomes (``verify_request
  returned [result=False]``) or client endings, without the case's own script, so that
  one bug seen in many cases is one problem of the report;
* ``evidence["side_by_side"]`` is the full diff, oracle left, target right,
  line by line (``×N`` when a line was seen N times).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

from harness._model.outcome import SECTIONS
from harness._model.records import Finding

CHECK = "oracle.differs"
#: Lines of a side-by-side diff kept per section (the rest counted).
MAX_LINES = 12
#: Widest oracle column of a side-by-side diff (longer lines are cut there).
COLUMN = 100
_WHAT = {
    "clients": "what the clients received or how their exchange ended",
    "connections": "the hooks run for a connection",
    "server": "the server's own calls (returned, raised or blocked)",
    "handle_error": "how many times handle_error() ran",
    "resources": "what was left after the case",
}


def section(observation: Mapping[str, Any], name: str) -> Counter[str]:
    """One section of an observation as a multiset (absent or odd input: empty)."""
    raw = observation.get(name)
    if not isinstance(raw, Mapping):
        return Counter()
    return Counter({str(k): int(v) for k, v in raw.items() if isinstance(v, int) and v > 0})


def differences(
    oracle: Mapping[str, Any], target: Mapping[str, Any]
) -> dict[str, tuple[Counter[str], Counter[str]]]:
    """Per differing section: (lines only the oracle showed, lines only the target showed)."""
    out = {}
    for name in SECTIONS:
        want, got = section(oracle, name), section(target, name)
        if want != got:
            out[name] = (want - got, got - want)
    return out


def findings(
    oracle_spec: str, oracle: Mapping[str, Any], target: Mapping[str, Any]
) -> list[Finding]:
    """One ``oracle.differs`` finding per section in which ``target`` differs from ``oracle``."""
    out = []
    for name, (only_oracle, only_target) in differences(oracle, target).items():
        expected, observed = gist_pair(name, only_oracle, only_target)
        if not expected and not observed:
            if name == "clients":  # same sizes and endings: the bytes differ
                expected, observed = "the oracle's bytes", "other bytes of the same sizes"
            else:  # same hook outcomes, other nesting or order: show the lines
                expected, observed = _joined(only_oracle), _joined(only_target)
        out.append(
            Finding(
                check=CHECK,
                message=f"{name}: {_WHAT[name]} differs from the oracle {oracle_spec}",
                expected=expected or "(nothing)",
                observed=observed or "(nothing)",
                evidence={
                    "section": name,
                    "lines": {
                        "oracle_only": sum(only_oracle.values()),
                        "target_only": sum(only_target.values()),
                    },
                    "side_by_side": side_by_side(oracle_spec, only_oracle, only_target),
                },
            )
        )
    return out


_TIMES = re.compile(r"^(.*?)×(\d+|\+)$")
_CALL = re.compile(r"(\w+)\(|\)([^\s()|]*)|(\w+)!(\S*)")


def hook_outcomes(line: str) -> list[str]:
    """``a(b()!X)`` → ``["b raised X", "a returned"]``: each call with how it ended
    (never an arrow: a report reads ``a → b`` as a hook order)."""
    stack: list[str] = []
    out: list[str] = []
    for match in _CALL.finditer(line.split(": ", 1)[-1]):
        name, end, point, detail = match.groups()
        if name:
            stack.append(name)
        elif point:
            out.append(f"{point}{' ' + detail if detail else ''}")
        elif stack:
            counted = _TIMES.match(end)
            end, times = (counted.group(1), counted.group(2)) if counted else (end, "1")
            out += [f"{stack.pop()} {_ended(end)}"] * (int(times) if times.isdigit() else 1)
    out += [f"{n} blocked" for n in stack]
    return out


def _ended(end: str) -> str:
    if end.startswith("!"):
        return "raised " + end[1:]
    if end.startswith("…"):
        return end[1:]
    return "returned" + (" " + end if end else "")


def gist(name: str, line: str) -> list[str]:
    """What one line says without the case's script: hook outcomes for connections and
    server calls, sizes and ending for a client (not its operations or bytes)."""
    if name in ("connections", "server"):
        return hook_outcomes(line)
    if name == "clients":
        return [line.split(": ", 1)[-1].split(" — ", 1)[0]]
    return [line]


def gist_pair(name: str, only_oracle: Counter[str], only_target: Counter[str]) -> tuple[str, str]:
    """The gists of two sides with what both share taken out (what differs, no more)."""
    a: Counter[str] = Counter()
    b: Counter[str] = Counter()
    for side, lines in ((a, only_oracle), (b, only_target)):
        for line, count in lines.items():
            for item in gist(name, line):
                side[item] += count
    return _joined(a - b), _joined(b - a)


def _joined(parts: Counter[str]) -> str:
    return "; ".join(p if n == 1 else f"{p} ×{n}" for p, n in sorted(parts.items()))


def side_by_side(oracle_spec: str, only_oracle: Counter[str], only_target: Counter[str]) -> str:
    """The differing lines in two columns: the oracle's left, the target's right."""
    left = _listed(only_oracle)
    right = _listed(only_target)
    width = min(COLUMN, max(len(t) for t in [*left, "oracle " + oracle_spec]))
    rows = [f"{_fit('oracle ' + oracle_spec, width):<{width}} | target"]
    rows.append("-" * width + "-+-" + "-" * 20)
    for n in range(max(len(left), len(right))):
        a = left[n] if n < len(left) else ""
        b = right[n] if n < len(right) else ""
        rows.append(f"{_fit(a, width):<{width}} | {b}")
    return "\n".join(rows)


def _listed(lines: Counter[str]) -> list[str]:
    shown = [f"{line} ×{n}" if n > 1 else line for line, n in sorted(lines.items())]
    if len(shown) > MAX_LINES:
        shown = [*shown[:MAX_LINES], f"… and {len(shown) - MAX_LINES} more line(s)"]
    return shown or ["(nothing)"]


def _fit(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def summary(diffs: Sequence[Finding]) -> str:
    """The sections that differ, in one line ('' when none)."""
    return ", ".join(str(f.evidence.get("section", "")) for f in diffs)
