"""One sanitiser for all report text: terminal, Markdown, HTML and XML alike.

Whatever a server prints or an exception says reaches the reports: lone
surrogates (which no UTF-8 file can hold), escape sequences (which would
drive the user's terminal), NUL and other control characters (which XML
forbids), and Markdown or HTML specials (which would format or inject).

* ``clean`` makes any text writable and harmless: lone surrogates become
  U+FFFD, control characters their Unicode pictures (ESC → ␛, NUL → ␀);
  tabs and line breaks stay.
* ``clean_data`` applies ``clean`` to every string of a JSON document.
* ``one_line`` is ``clean`` with all whitespace runs folded to one space
  (terminal lines, table cells).
* ``markdown_text`` is ``one_line`` with Markdown and HTML specials escaped.

HTML escaping itself is Jinja's autoescape; XML's is ElementTree's.
"""

from __future__ import annotations

import re
from typing import Any

_SURROGATE = re.compile("[\ud800-\udfff]")
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\x80-\x9f]")
_MARKDOWN = re.compile(r"([\\`*_\[\]<>|~&])")


def _picture(match: re.Match[str]) -> str:
    code = ord(match.group())
    if code < 0x20:
        return chr(0x2400 + code)
    if code == 0x7F:
        return "\u2421"
    return f"\\x{code:02x}"  # C1 controls have no pictures


def clean(text: str) -> str:
    """``text`` safe to write as UTF-8 and to show: no lone surrogates, no controls."""
    return _CONTROL.sub(_picture, _SURROGATE.sub("\ufffd", text))


def clean_data(value: Any) -> Any:
    """``value`` (a JSON document) with ``clean`` applied to every string, keys too."""
    if isinstance(value, str):
        return clean(value)
    if isinstance(value, dict):
        return {clean_data(k): clean_data(v) for k, v in value.items()}
    if isinstance(value, list):
        return [clean_data(v) for v in value]
    return value


def one_line(text: str) -> str:
    """``clean`` text on one line (whitespace runs folded to a space)."""
    return " ".join(clean(text).split())


def markdown_text(text: str) -> str:
    """One line of Markdown prose showing ``text`` literally (specials escaped)."""
    return _MARKDOWN.sub(r"\\\1", one_line(text))
