"""The knob table (docs/knobs.toml) and its page (docs/coverage.md) stay true and current."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness._model.errors import UsageError
from harness._mutation.knobs import PAGE_PATH, Knob, load_knobs, problems, render


def test_page_is_current() -> None:
    """docs/coverage.md is what `python -m harness coverage` makes of docs/knobs.toml."""
    expected = render(load_knobs())
    assert PAGE_PATH.read_text(encoding="utf-8") == expected, (
        "docs/coverage.md is stale: run `python -m harness coverage`"
    )


def test_every_row_names_matching_cases_or_a_gap() -> None:
    """No row without a case (unless it says why), and every glob matches the catalogue."""
    assert problems(load_knobs()) == []


def test_table_is_complete_enough() -> None:
    """Every row class of the API is there, and gaps stay the exception."""
    rows = load_knobs()
    apis = {k.api for k in rows}
    for name in (
        "BaseServer.request_queue_size",
        "BaseServer.allow_reuse_address",
        "UDPServer.max_packet_size",
        "ForkingMixIn.max_children",
        "socketserver.__all__",
    ):
        assert name in apis
    assert sum(1 for k in rows if not k.cases) <= len(rows) // 10


def _knob(**kw: object) -> Knob:
    base = dict(api="X.y", kind="attribute", value="1", doc="rst", cases=(), catches="", gap="")
    base.update(kw)
    return Knob(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("row", "words"),
    [
        (_knob(), "names no case and gives no gap"),
        (_knob(cases=("nope.never*",), catches="x"), "matches no case"),
        (_knob(cases=("surface.all_names*",), catches="x", gap="y"), "keep one"),
        (_knob(cases=("surface.all_names*",)), "not what they catch"),
    ],
)
def test_bad_rows_are_reported(row: Knob, words: str) -> None:
    found = problems([row])
    assert len(found) == 1 and words in found[0]


def test_malformed_table_is_a_one_line_error(tmp_path: Path) -> None:
    bad = tmp_path / "knobs.toml"
    bad.write_text('[[knob]]\napi = "X"\nvalue = "1"\nkind = "thing"\ndoc = "rst"\n')
    with pytest.raises(UsageError, match="kind must be one of"):
        load_knobs(bad)
