"""The report text sanitiser: surrogates, control characters, Markdown escaping."""

from __future__ import annotations

from harness._report.markdown import render_summary
from harness._report.model import build_view
from harness._report.text import clean, clean_data, markdown_text, one_line

HOSTILE = "a\x1b[2J\x00b\ud800c\x7f\x85 <b>|x|</b> `t`\n\tend"


def test_clean_leaves_writable_visible_text() -> None:
    text = clean(HOSTILE)
    text.encode("utf-8")  # no lone surrogate left
    assert text.startswith("a␛[2J␀b\ufffdc␡\\x85 ")
    assert "\n\tend" in text


def test_clean_data_reaches_every_string_and_key() -> None:
    data = clean_data({"k\x1b": ["v\ud800", {"n": 1, "x": None}]})
    assert data == {"k␛": ["v\ufffd", {"n": 1, "x": None}]}


def test_one_line_and_markdown_text() -> None:
    assert one_line("a\r\n  b\x1b") == "a b␛"
    assert markdown_text("<b>|x|</b> `t` *e*") == r"\<b\>\|x\|\</b\> \`t\` \*e\*"


def test_summary_escapes_an_implementation_name_in_the_matrix_header() -> None:
    record = {
        "id": "a.b[tcp-sync]",
        "scenario": "a.b",
        "impl": "<i>x|y<i>\x1b",
        "verdict": "fail",
        "strictness": "must",
        "duration": 0.1,
        "reason": "boom \ud800",
    }
    view = build_view(clean_data({"schema": "sockspec-results/1", "run": {}, "results": [record]}))
    text = render_summary(view)
    text.encode("utf-8")
    header = next(line for line in text.splitlines() if line.startswith("| scenario |"))
    assert r"\<i\>x\|y\<i\>␛" in header and "<i>" not in header
