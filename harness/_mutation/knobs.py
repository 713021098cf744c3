"""The knob table: every documented piece of the socketserver API and the cases that judge it.

``docs/knobs.toml`` is the source: one row per class, method, hook or attribute and
per meaningful value (True/False, None/number, small/large, default), each naming
the case globs that fail when that knob is ignored, inverted or off by one, or
saying why none does (``gap``).  ``python -m harness coverage`` renders it into
``docs/coverage.md``; ``--check`` only verifies that the page is current and that
every row's globs match cases of the catalogue (a row with neither cases nor a gap
is an error), exiting 1 otherwise.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - 3.10
    import tomli as tomllib

from harness._execution.discovery import discover, select_cases
from harness._model.errors import UsageError

_ROOT = Path(__file__).resolve().parents[2]
#: The committed source and the page generated from it.
KNOBS_PATH = _ROOT / "docs" / "knobs.toml"
PAGE_PATH = _ROOT / "docs" / "coverage.md"
KINDS = ("module", "class", "argument", "method", "hook", "attribute", "environment")
DOCS = ("rst", "source", "issue")


@dataclass(frozen=True)
class Knob:
    """One row: a piece of the API at one value, and the cases that judge it."""

    api: str
    kind: str
    value: str
    doc: str
    cases: tuple[str, ...]
    catches: str
    gap: str


def load_knobs(path: Path = KNOBS_PATH) -> list[Knob]:
    """The rows of ``path``; ``UsageError`` naming the row when one is malformed."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise UsageError(f"cannot read the knob table {path}: {exc}") from exc
    rows = []
    for index, raw in enumerate(data.get("knob", []), 1):
        where = f"{path.name} row {index} ({raw.get('api', '?')})"
        unknown = set(raw) - {"api", "kind", "value", "doc", "cases", "catches", "gap"}
        if unknown:
            raise UsageError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
        knob = Knob(
            api=str(raw.get("api", "")),
            kind=str(raw.get("kind", "")),
            value=str(raw.get("value", "")),
            doc=str(raw.get("doc", "")),
            cases=tuple(str(c) for c in raw.get("cases", ())),
            catches=str(raw.get("catches", "")),
            gap=str(raw.get("gap", "")),
        )
        if not knob.api or not knob.value:
            raise UsageError(f"{where}: api and value are required")
        if knob.kind not in KINDS or knob.doc not in DOCS:
            raise UsageError(f"{where}: kind must be one of {KINDS}, doc one of {DOCS}")
        rows.append(knob)
    return rows


def problems(rows: Sequence[Knob]) -> list[str]:
    """What is wrong with ``rows``: a row with neither cases nor a gap, or both, or a glob
    matching no case of the catalogue (any profile).  Empty when all is well."""
    specs = discover()
    out = []
    for knob in rows:
        label = f"{knob.api} = {knob.value}"
        if not knob.cases and not knob.gap:
            out.append(f"{label}: names no case and gives no gap")
        if knob.cases and knob.gap:
            out.append(f"{label}: names cases and a gap; keep one")
        if knob.cases and not knob.catches:
            out.append(f"{label}: names cases but not what they catch")
        out.extend(
            f"{label}: {glob!r} matches no case of the catalogue"
            for glob in knob.cases
            if not select_cases(specs, (glob,), "stress")
        )
    return out


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render(rows: Sequence[Knob]) -> str:
    """``docs/coverage.md`` for ``rows``."""
    covered = sum(1 for k in rows if k.cases)
    gaps = [k for k in rows if not k.cases]
    lines = [
        "# API coverage: every knob of socketserver and the cases that judge it",
        "",
        "Generated from `docs/knobs.toml` by `python -m harness coverage`; do not edit.",
        "Each row is one class, method, hook or attribute of CPython 3.13's `socketserver`",
        "(documented in `Doc/library/socketserver.rst`, or only in the source) at one",
        "meaningful value, and the cases that fail when an implementation ignores that",
        "knob, inverts it or is off by one. Case names are `--select` globs.",
        "",
        f"**{len(rows)} rows: {covered} with a case, {len(gaps)} gaps.**",
        "",
        "| API | kind | value | doc | failing cases | catches |",
        "|---|---|---|---|---|---|",
    ]
    for knob in rows:
        cases = "<br>".join(f"`{c}`" for c in knob.cases) or "**gap**"
        what = knob.catches if knob.cases else knob.gap
        lines.append(
            f"| `{_cell(knob.api)}` | {knob.kind} | {_cell(knob.value)} | {knob.doc} "
            f"| {cases} | {_cell(what)} |"
        )
    lines += ["", "## Gaps", ""]
    lines += [f"- `{k.api}` = {k.value}: {k.gap}" for k in gaps] or ["None."]
    return "\n".join(lines) + "\n"


def coverage_main(argv: Sequence[str]) -> int:
    """``python -m harness coverage [--check]``: write (or verify) ``docs/coverage.md``."""
    parser = argparse.ArgumentParser(
        prog="sockspec coverage",
        description="Render docs/knobs.toml into docs/coverage.md (the API knob table).",
    )
    parser.add_argument(
        "--check", action="store_true", help="verify the page and the table; write nothing"
    )
    args = parser.parse_args(list(argv))
    rows = load_knobs()
    found = problems(rows)
    for problem in found:
        print(f"sockspec coverage: {problem}", file=sys.stderr)
    page = render(rows)
    covered = sum(1 for k in rows if k.cases)
    if args.check:
        stale = not PAGE_PATH.exists() or PAGE_PATH.read_text(encoding="utf-8") != page
        if stale:
            print(
                "sockspec coverage: docs/coverage.md is stale; run `python -m harness coverage`",
                file=sys.stderr,
            )
        return 1 if stale or found else 0
    PAGE_PATH.write_text(page, encoding="utf-8")
    print(f"{PAGE_PATH}: {len(rows)} rows, {covered} with a case, {len(rows) - covered} gaps")
    return 1 if found else 0
