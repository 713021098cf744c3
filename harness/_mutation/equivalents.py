"""Mutants proven equivalent, or accepted as out of scope: ``mutation/equivalent.toml``.

Each entry names a mutant by its stable key (see ``mutants.Mutant.key``) and
says in one line why: an equivalent mutant has no observable difference; an
out-of-scope one changes something the socketserver contract leaves open.
The file's ``before``/``after`` fields repeat the edit for the reader::

    [[equivalent]]
    key = "NumberReplacer:0123456789"
    before = "..."
    after = "..."
    reason = "..."

    [[out_of_scope]]
    key = "..."
    reason = "..."
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - 3.10
    import tomli as tomllib

from harness._model.errors import UsageError

#: The committed file.
DEFAULT_PATH = Path(__file__).resolve().parents[2] / "mutation" / "equivalent.toml"


@dataclass(frozen=True)
class Triage:
    """Keys known not to count against the score, with their reasons."""

    equivalent: dict[str, str]
    out_of_scope: dict[str, str]

    def reason(self, key: str) -> tuple[str, str] | None:
        """("equivalent" | "out_of_scope", reason) for ``key``, or None."""
        if key in self.equivalent:
            return "equivalent", self.equivalent[key]
        if key in self.out_of_scope:
            return "out_of_scope", self.out_of_scope[key]
        return None


def load_triage(path: Path = DEFAULT_PATH) -> Triage:
    """Read the triage file (an absent file triages nothing); ``UsageError`` when malformed."""
    if not path.exists():
        return Triage({}, {})
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise UsageError(f"{path}: {exc}") from None
    unknown = set(document) - {"equivalent", "out_of_scope"}
    if unknown:
        raise UsageError(
            f"{path}: unknown table(s) {sorted(unknown)}; expected equivalent, out_of_scope"
        )
    tables = {}
    for table in ("equivalent", "out_of_scope"):
        entries = {}
        for n, entry in enumerate(document.get(table, []), 1):
            key, reason = entry.get("key"), entry.get("reason")
            if not isinstance(key, str) or not isinstance(reason, str) or not reason.strip():
                raise UsageError(f"{path}: [[{table}]] #{n} needs a string key and a reason")
            entries[key] = reason.strip()
        tables[table] = entries
    return Triage(tables["equivalent"], tables["out_of_scope"])
