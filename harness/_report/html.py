"""index.html and the case pages: static HTML (inline SVG, no scripts, no network).

Templates live in ``harness/_report/templates/`` and are rendered by jinja2
with autoescaping on; everything they show is prepared here as plain values,
so the templates only lay out.  Every page links one stylesheet,
``report.css`` at the top of the report directory (``STYLESHEET``), instead of
carrying its own copy.  index.html opens with the problems (one per root
cause, see ``harness._report.problems``), then the matrix: one row per case
(grouped by family) and one column per implementation; each cell links to
``cases/<impl-slug>/<case-slug>.html``.  A case page shows its evidence in
bounded form: the event table of ``MAX_CONN_TABLES`` connections (the others
as one-line transcripts) and the last ``MAX_OUTPUT`` characters of output.
"""

from __future__ import annotations

import difflib
import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import jinja2
from markupsafe import Markup

from harness._report.problems import Problem, problem_counts, problems_of
from harness._report.svg import timeline_svg
from harness._report.text import clean

if TYPE_CHECKING:
    from harness._report.model import CaseView, FindingGroup, ImplView, ReportView

TEMPLATES = Path(__file__).with_name("templates")
#: The stylesheet every page links, written once at the top of the report directory.
STYLESHEET = TEMPLATES / "report.css"
#: Evidence keys with a section of their own; any other key is shown as JSON.
KNOWN_EVIDENCE = frozenset(
    {
        "base_seed",
        "events",
        "timeline",
        "event_log",
        "wire",
        "output",
        "stacks",
        "traceback",
        "pcap",
        "replay",  # shown as the page's Replay section
        "t0",  # the monotonic origin of the times shown: no use to a reader
        "dropped",  # shown as the note on what the harness left out
    }
)
MAX_DUMP = 20_000
MAX_PROBLEMS = 50
MAX_PROBLEM_LINKS = 200
MAX_CONN_TABLES = 1
MAX_TABLE_ROWS = 20
MAX_CONN_LINES = 6
MAX_TRACEBACKS = 1
MAX_OUTPUT = 1_000
MAX_WIRE_ROWS = 5
MAX_STEPS = 40
_WORDS = {
    "pass": "pass",
    "fail": "fail",
    "hang": "hang",
    "crash": "crash",
    "error": "ERROR",
    "xpass": "XPASS",
    "xfail": "xfail",
    "unsupported": "n/a",
}


def _bytecode_cache() -> jinja2.BytecodeCache | None:
    """Compiled templates, kept per user in ``$XDG_CACHE_HOME/sockspec/templates``
    (keyed by template source): compiling them costs about 0.25 s of CPU per run,
    and the tests start a few hundred runs. None when that folder cannot be made.
    Not in the temp dir, where a run must leave nothing behind."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    folder = os.path.join(base, "sockspec", "templates")
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError:
        return None
    return jinja2.FileSystemBytecodeCache(folder) if os.access(folder, os.W_OK) else None


@lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        autoescape=True,
        auto_reload=False,
        bytecode_cache=_bytecode_cache(),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        finalize=visible,
    )
    env.filters["ms"] = lambda s: f"{float(s) * 1000:.3f}"
    env.globals.update(cell_text=cell_text, cell_class=cell_class)
    return env


def visible(value: Any) -> Any:
    """Control characters (NUL, ESC...) of text shown as their Unicode pictures (␀, ␛)."""
    if isinstance(value, str) and not isinstance(value, Markup):
        return clean(value)
    return value


def cell_text(case: CaseView | None) -> str:
    """The word in a matrix cell: loud failures in capitals, others quiet."""
    if case is None:
        return "not run"
    word = _WORDS.get(case.verdict, case.verdict or "?")
    if case.tone == "loud":
        return word.upper()
    if case.tone == "muted":
        return f"{word} · {case.strictness}"
    return word


def cell_class(case: CaseView | None) -> str:
    """CSS classes of a cell: ``cell v-<verdict> s-<strictness> t-<tone>``."""
    if case is None:
        return "cell t-none"
    return f"cell v-{_css(case.verdict)} s-{_css(case.strictness)} t-{case.tone}"


def render_index(view: ReportView, files: Sequence[str] = ("results.json",)) -> str:
    """The matrix page; ``files`` are the other reports written beside it, to link."""
    families = []
    for family, ids in view.families():
        rows = [_Row.of(view, case_id) for case_id in ids]
        families.append((family, rows, sum(r.problem for r in rows)))
    impls = [
        (impl, _ordered_counts(impl.counts), view.must_failures(impl.spec)) for impl in view.impls
    ]
    names = {impl.spec: impl.name for impl in view.impls}
    found = problems_of(view)
    counts = problem_counts(found, (i.spec for i in view.impls))
    problems = [_Problem.of(n, p, names) for n, p in enumerate(found[:MAX_PROBLEMS], 1)]
    return (
        _environment()
        .get_template("index.html.j2")
        .render(
            root="",
            view=view,
            run=_run_facts(view.run),
            impls=[(impl, c, loud, counts.get(impl.spec, 0)) for impl, c, loud in impls],
            families=families,
            problems=problems,
            problem_total=len(found),
            files=files,
        )
    )


def render_case(view: ReportView, case: CaseView) -> str:
    """The page of one implementation × case."""
    ev = case.evidence
    involved = {f.conn for f in case.findings if f.conn is not None}
    return (
        _environment()
        .get_template("case.html.j2")
        .render(
            case=case,
            run=_run_facts(view.run),
            root="../../",
            siblings=[(impl, view.cell(impl.spec, case.id)) for impl in view.impls],
            groups=[_Group.of(g) for g in case.groups()],
            conn_logs=_bounded_logs(_conn_logs(ev.get("event_log"), involved)),
            max_tables=MAX_CONN_TABLES,
            dropped=_dropped(ev.get("dropped")),
            svg=Markup(timeline_svg(ev.get("timeline"))),
            wire=_wire(ev.get("wire"))[:MAX_WIRE_ROWS],
            wire_total=len(ev["wire"]) if isinstance(ev.get("wire"), list) else 0,
            output=_tail(_str(ev.get("output")), MAX_OUTPUT),
            stacks=_str(ev.get("stacks")),
            traceback=_str(ev.get("traceback")),
            pcap=_pcap(ev.get("pcap")),
            other=[(k, _dump(v)) for k, v in ev.items() if k not in KNOWN_EVIDENCE],
            params=[(k, _str(v)) for k, v in case.params.items()],
        )
    )


def render_fallback(case: CaseView, why: str) -> str:
    """A plain page for a case whose full page could not be rendered (no template used)."""
    body = "\n".join(
        f"<p><b>{escape(k)}</b>: {escape(v)}</p>"
        for k, v in (
            ("case", case.id),
            ("implementation", case.impl),
            ("verdict", f"{case.verdict} ({case.strictness})"),
            ("reason", case.reason),
            ("replay", case.replay),
            ("report problem", why),
        )
    )
    return (
        f'<!doctype html><html lang="en"><meta charset="utf-8"><title>{escape(case.id)}</title>'
        f'<p><a href="../../index.html">← matrix</a></p>{body}</html>\n'
    )


@dataclass(frozen=True)
class _Row:
    """One matrix row."""

    case_id: str
    scenario: str
    variant: str
    cells: list[tuple[ImplView, CaseView | None]]
    problem: bool

    @classmethod
    def of(cls, view: ReportView, case_id: str) -> _Row:
        scenario, bracket, rest = case_id.partition("[")
        cells = list(zip(view.impls, view.row(case_id), strict=True))
        problem = any(c is not None and c.bad for _, c in cells)
        return cls(case_id, scenario, bracket + rest, cells, problem)


@dataclass(frozen=True)
class _Problem:
    """One problem of the index: its diagnosis, smallest case and the others, folded."""

    number: int
    diagnosis: str
    signature: str
    first: CaseView
    impl: str
    per_impl: list[tuple[str, int]]
    transcript: str
    links: list[tuple[str, str, str]]
    more: int
    consequences: list[tuple[str, int]]

    @classmethod
    def of(cls, number: int, problem: Problem, names: Mapping[str, str]) -> _Problem:
        rep = problem.representative
        others = problem.others
        links = [(c.id, names.get(c.impl, c.impl), c.page) for c in others[:MAX_PROBLEM_LINKS]]
        return cls(
            number=number,
            diagnosis=problem.diagnosis,
            signature=problem.signature,
            first=rep,
            impl=names.get(rep.impl, rep.impl),
            per_impl=[(names.get(s, s), len(problem.in_impl(s))) for s in problem.impls],
            transcript=problem.transcript(),
            links=links,
            more=len(others) - len(links),
            consequences=list(problem.consequences[:10]),
        )


@dataclass(frozen=True)
class _Group:
    """A distinct finding, ready to show: expected and observed as diffed tokens."""

    check: str
    message: str
    count: int
    conns: str
    expected: list[tuple[str, str]]
    observed: list[tuple[str, str]]
    transcripts: tuple[str, ...]
    extra: list[tuple[str, str]]

    @classmethod
    def of(cls, group: FindingGroup) -> _Group:
        f = group.first
        expected, observed = diff_tokens(f.expected, f.observed)
        conns = ", ".join(f"#{c}" for c in group.conns[:40])
        if len(group.conns) > 40:
            conns += f" and {len(group.conns) - 40} more"
        extra = [(k, _dump(v)) for k, v in f.evidence.items() if k != "transcript"]
        return cls(
            f.check, f.message, group.count, conns, expected, observed, group.transcripts, extra
        )


def diff_tokens(
    expected: str, observed: str
) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """Expected and observed as (token, kind) lists; kind is same, missing, extra, sep or plain.

    Arrow-separated sequences (hook orders) are compared step by step; any
    other text is shown as it is (a word diff of prose is mostly noise).
    """
    if "→" not in expected or "→" not in observed:
        return [(expected, "plain")], [(observed, "plain")]
    a = [t for t in re.split(r"\s*→\s*", expected.strip()) if t]
    b = [t for t in re.split(r"\s*→\s*", observed.strip()) if t]
    sep = " → "
    out_a: list[tuple[str, str]] = []
    out_b: list[tuple[str, str]] = []
    matcher = difflib.SequenceMatcher(a=a, b=b, autojunk=False)
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        out_a += [(t, "same" if op == "equal" else "missing") for t in a[i1:i2]]
        out_b += [(t, "same" if op == "equal" else "extra") for t in b[j1:j2]]
    return _with_seps(out_a, sep), _with_seps(out_b, sep)


def _with_seps(tokens: list[tuple[str, str]], sep: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for n, token in enumerate(tokens):
        if n:
            out.append((sep, "sep"))
        out.append(token)
    return out


@dataclass(frozen=True)
class _ConnLog:
    """The lifecycle events of one connection (or of the server, conn None)."""

    title: str
    transcript: str
    rows: list[dict[str, str]]
    involved: bool
    cut: int = 0  # rows left out of the table


def _conn_logs(raw: Any, involved: set[int]) -> list[_ConnLog]:
    events = [e for e in (raw if isinstance(raw, list) else []) if isinstance(e, Mapping)]
    if not events:
        return []
    times = [t for t in (_num(e.get("t")) for e in events) if t is not None]
    t0 = min(times) if times else 0.0
    by_conn: dict[Any, list[Mapping[str, Any]]] = {}
    for event in events:
        conn = event.get("conn")
        by_conn.setdefault(conn if isinstance(conn, int) else None, []).append(event)
    logs = []
    for conn, items in by_conn.items():
        rows = [_event_row(e, t0) for e in items]
        title = "server (no connection)" if conn is None else f"conn#{conn}"
        logs.append(_ConnLog(title, _transcript(items), rows, conn in involved))
    return sorted(logs, key=lambda log: (not log.involved, log.title != "server (no connection)"))


def _bounded_logs(logs: list[_ConnLog]) -> list[_ConnLog]:
    """The first ``MAX_CONN_TABLES`` logs with at most ``MAX_TABLE_ROWS`` rows, then up to
    ``MAX_CONN_LINES`` in all (the page shows those as transcripts), then one line saying
    how many connections are left out."""
    out = [
        replace(log, rows=log.rows[:MAX_TABLE_ROWS], cut=max(0, len(log.rows) - MAX_TABLE_ROWS))
        for log in logs[:MAX_CONN_TABLES]
    ]
    tracebacks = 0
    for log in out:  # the first few tracebacks in full; the others by their last line
        for n, row in enumerate(log.rows):
            if row["exc_full"]:
                tracebacks += 1
                if tracebacks > MAX_TRACEBACKS:
                    log.rows[n] = {**row, "exc_full": ""}
    out += logs[MAX_CONN_TABLES:MAX_CONN_LINES]
    if len(logs) > MAX_CONN_LINES:
        rest = len(logs) - MAX_CONN_LINES
        out.append(_ConnLog(f"… {rest} more connection(s)", "see results.jsonl.gz", [], False))
    return out


def _event_row(event: Mapping[str, Any], t0: float) -> dict[str, str]:
    name, phase = _str(event.get("name")), _str(event.get("phase"))
    label = {"return": f"{name} returned", "raise": f"{name} raised"}.get(phase, name)
    exc_type, exc = _str(event.get("exc_type")), _str(event.get("exc")).strip()
    last = exc.splitlines()[-1] if exc else ""
    t = _num(event.get("t"))
    return {
        "t": "" if t is None else f"{(t - t0) * 1000:.3f}",
        "pid": _str(event.get("pid")),
        "thread": _str(event.get("thread_name")),
        "label": label,
        "phase": _css(phase),
        "exc": last if exc_type and exc_type in last else " ".join(filter(None, (exc_type, last))),
        "exc_full": exc if "\n" in exc else "",
    }


def _transcript(events: Sequence[Mapping[str, Any]]) -> str:
    """``get_request → … → handle raised X → …`` from calls, points and raises.

    A return with no call in the group (``get_request`` learns its connection
    only when it returns) counts as the call.
    """
    steps: list[str] = []
    open_calls: dict[str, int] = {}
    for event in events:
        name, phase = _str(event.get("name")), event.get("phase")
        if phase in ("call", "point") or (phase == "return" and not open_calls.get(name)):
            steps.append(name)
            open_calls[name] = open_calls.get(name, 0) + (phase == "call")
        elif phase in ("return", "raise"):
            open_calls[name] = max(0, open_calls.get(name, 0) - 1)
            if phase == "raise":
                for n in range(len(steps) - 1, -1, -1):
                    if steps[n] == name:
                        steps[n] = f"{name} raised {_str(event.get('exc_type'))}"
                        break
    shown = " → ".join(steps[:MAX_STEPS])
    return shown + (f" → … ({len(steps) - MAX_STEPS} more)" if len(steps) > MAX_STEPS else "")


def _dropped(raw: Any) -> str:
    """What the worker left out of this case's evidence, in words ('' when nothing)."""
    if not isinstance(raw, Mapping):
        return ""
    parts = []
    if raw.get("events"):
        parts.append(f"{raw['events']} event(s) of {raw.get('connections', '?')} connection(s)")
    if raw.get("clients"):
        parts.append(f"{raw['clients']} client(s) of the wire log")
    findings = raw.get("findings")
    if isinstance(findings, Mapping) and findings:
        parts.append(
            f"{sum(v for v in findings.values() if isinstance(v, int))} repeated finding(s)"
        )
    return "; ".join(parts)


def _tail(text: str, limit: int) -> str:
    return (
        text
        if len(text) <= limit
        else f"… ({len(text) - limit} characters before)\n" + text[-limit:]
    )


def _wire(raw: Any) -> list[dict[str, str]]:
    rows = []
    for item in raw if isinstance(raw, list) else []:
        if not isinstance(item, Mapping):
            continue
        ops = item.get("ops")
        rows.append(
            {
                "client": _str(item.get("client")),
                "local": _address(item.get("local")),
                "ops": " ".join(_str(o) for o in ops) if isinstance(ops, list) else _str(ops),
                "sent": _preview(item.get("sent")),
                "received": _preview(item.get("received")),
                "ok": "ok" if item.get("ok") else "failed",
                "error": _str(item.get("error")),
                "when": _span(item.get("start"), item.get("end")),
            }
        )
    return rows


def _preview(raw: Any) -> str:
    """``12 B b'hello…'`` from a ``{len, head}`` preview."""
    if not isinstance(raw, Mapping):
        return _str(raw)
    size = raw.get("len")
    try:
        head = bytes.fromhex(_str(raw.get("head")))
    except ValueError:
        return f"{size} B (unreadable preview)"
    more = "…" if isinstance(size, int) and size > len(head) else ""
    return f"{size} B {repr(head)[1:]}{more}" if head else f"{size} B"


def _address(value: Any) -> str:
    if isinstance(value, list):
        return ":".join(_str(v) for v in value)
    return _str(value)


def _span(start: Any, end: Any) -> str:
    a, b = _num(start), _num(end)
    if a is None or b is None:
        return ""
    return f"{a * 1000:.1f}–{b * 1000:.1f} ms"


def _pcap(value: Any) -> tuple[str, str] | None:
    """(href, text) for a capture path relative to the report dir; text only otherwise."""
    if not isinstance(value, str) or not value:
        return None
    if value.startswith(("/", "\\")) or ":" in value:
        return ("", value)
    return ("../../" + quote(value), value)


def _run_facts(run: Mapping[str, Any]) -> list[tuple[str, str]]:
    keys = ("started", "duration", "profile", "seed", "jobs", "python", "platform", "exit_status")
    facts = [(k.replace("_", " "), _str(run[k])) for k in keys if k in run]
    shown = {"started": lambda v: v[:19].replace("T", " ") + " UTC", "duration": _seconds}
    return [(k, shown[k](v) if k in shown else v) for k, v in facts]


def _seconds(value: str) -> str:
    number = _num(value)
    return value if number is None else f"{number:.1f} s"


def _ordered_counts(counts: Mapping[str, int]) -> list[tuple[str, int, str]]:
    order = ["fail", "hang", "crash", "error", "xpass", "xfail", "pass", "unsupported"]
    ranked = sorted(counts.items(), key=lambda kv: order.index(kv[0]) if kv[0] in order else 99)
    return [(_WORDS.get(v, v), n, _css(v)) for v, n in ranked if n]


def _dump(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, indent=1, default=str)
    return text if len(text) <= MAX_DUMP else text[:MAX_DUMP] + f"\n… ({len(text)} chars)"


def _str(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, (list, tuple, dict)):
        return json.dumps(value, default=str)
    return str(value)


def _num(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _css(value: str) -> str:
    return re.sub(r"[^a-z0-9_-]", "_", value.lower())[:40] or "none"
