"""junit.xml: one test case per implementation × case, for CI test-report consumers.

The shape is the common denominator of Jenkins, GitLab and GitHub readers:
``testsuites > testsuite (one per implementation) > testcase`` with
``classname`` = implementation and ``name`` = case id.  fail, hang, crash and
xpass become ``<failure type=verdict>``, error becomes ``<error>``,
unsupported and xfail become ``<skipped>``; an unknown verdict is an
``<error>`` so that it is seen.  Failure texts carry the distinct findings
(expected vs observed, transcript), the stack dump of a hang and the replay
command; the server output goes to ``<system-err>``.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from typing import TYPE_CHECKING, Any

from harness._report.text import clean

if TYPE_CHECKING:
    from harness._report.model import CaseView, ReportView

FAILURE = frozenset({"fail", "hang", "crash", "xpass"})
SKIPPED = frozenset({"unsupported", "xfail"})
MAX_TAIL = 4000
_INVALID = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def render_junit(view: ReportView) -> str:
    """The whole junit.xml document."""
    root = ET.Element("testsuites", name="sockspec")
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    for impl in view.impls:
        cases = [c for c in (view.cell(impl.spec, i) for i in view.case_ids) if c is not None]
        suite = _suite(view, impl.spec, cases)
        root.append(suite)
        for key in totals:
            totals[key] += int(suite.get(key, "0"))
    for key, value in totals.items():
        root.set(key, str(value))
    root.set("time", _time(view.run.get("duration")))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, "unicode") + "\n"


def _suite(view: ReportView, spec: str, cases: list[CaseView]) -> ET.Element:
    suite = ET.Element("testsuite", name=_clean(spec))
    props = ET.SubElement(suite, "properties")
    for key in ("profile", "seed", "python", "platform", "sockspec", "partial", "exit_status"):
        if key in view.run:
            ET.SubElement(props, "property", name=key, value=_clean(str(view.run[key])))
    counts = {"failures": 0, "errors": 0, "skipped": 0}
    for case in cases:
        testcase, kind = _testcase(case)
        suite.append(testcase)
        if kind:
            counts[kind] += 1
    suite.set("tests", str(len(cases)))
    for key, value in counts.items():
        suite.set(key, str(value))
    suite.set("time", f"{sum(c.duration for c in cases):.3f}")
    if view.run.get("started"):
        suite.set("timestamp", _clean(str(view.run["started"]))[:19])
    if view.run.get("hostname"):
        suite.set("hostname", _clean(str(view.run["hostname"])))
    return suite


def _testcase(case: CaseView) -> tuple[ET.Element, str]:
    """The element of one case and the counter it adds to ('' for a pass)."""
    element = ET.Element(
        "testcase", classname=_clean(case.impl), name=_clean(case.id), time=_time(case.duration)
    )
    if case.verdict == "pass":
        return element, ""
    if case.verdict in SKIPPED:
        reason = case.reason or (case.groups()[0].first.message if case.findings else "")
        message = f"{case.verdict}: {reason}" if reason else case.verdict
        ET.SubElement(element, "skipped", message=_clean(_one_line(message)))
        return element, "skipped"
    tag, kind = ("failure", "failures") if case.verdict in FAILURE else ("error", "errors")
    child = ET.SubElement(element, tag, message=_clean(_message(case)), type=_clean(case.verdict))
    child.text = _clean(_details(case))
    output = case.evidence.get("output")
    if isinstance(output, str) and output:
        ET.SubElement(element, "system-err").text = _clean(output[-MAX_TAIL:])
    return element, kind


def _message(case: CaseView) -> str:
    """One line: strictness, the first distinct finding (or the reason) and how many more."""
    groups = case.groups()
    if case.verdict not in FAILURE and case.verdict != "error":
        head = f"unknown verdict {case.verdict!r}"
    elif groups:
        f = groups[0].first
        head = f"{f.check}: {f.message}"
        if f.expected or f.observed:
            head += f" (expected {f.expected}; observed {f.observed})"
    else:
        head = case.reason or case.verdict
    extra = f" [{len(case.findings)} findings, {len(groups)} distinct]" if len(groups) > 1 else ""
    return _one_line(f"[{case.strictness}] {case.verdict}: {head}{extra}")[:1000]


def _details(case: CaseView) -> str:
    """The failure text: reason, distinct findings with transcripts, stacks, replay."""
    lines = []
    if case.reason:
        lines.append(f"reason: {case.reason}")
    for group in case.groups():
        f = group.first
        conns = ", ".join(f"#{c}" for c in group.conns[:20])
        lines.append(f"{f.check} ×{group.count}" + (f" (conn {conns})" if conns else ""))
        lines.append(f"  {f.message}")
        if f.expected or f.observed:
            lines.append(f"  expected: {f.expected}")
            lines.append(f"  observed: {f.observed}")
        lines += [f"  transcript: {t}" for t in group.transcripts[:3]]
    for key in ("stacks", "traceback"):
        value = case.evidence.get(key)
        if value:
            lines.append(f"{key}:\n{str(value)[-MAX_TAIL:]}")
    if case.replay:
        lines.append(f"replay: {case.replay}")
    return "\n".join(lines)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _time(value: Any) -> str:
    try:
        return f"{float(value):.3f}"
    except (TypeError, ValueError):
        return "0.000"


def _clean(text: str) -> str:
    """Drop the characters XML 1.0 cannot hold (NUL, most control characters)."""
    return _INVALID.sub("\ufffd", clean(text))
