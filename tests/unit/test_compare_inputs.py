"""compare's inputs: schema version and shape checked, partial runs told, torn jsonl read."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from harness._model.errors import UsageError
from harness._report.compare import compare, load_document, render_comparison

RECORD = {"id": "a[x]", "scenario": "a", "impl": "stdlib", "verdict": "pass", "strictness": "must"}


def _write(path: Path, document: Any) -> Path:
    path.write_text(json.dumps(document))
    return path


@pytest.mark.parametrize(
    ("document", "words"),
    [
        ({"schema": "sockspec-results/2", "results": []}, "cannot read; expected"),
        ({"schema": "other/1", "results": []}, "is not a sockspec results file"),
        ({"schema": "sockspec-results/1"}, "has no list of case results"),
        ({"schema": "sockspec-results/1", "results": [{"id": 1}]}, "has no list of case"),
        ([1, 2], "is not a sockspec results file"),
    ],
)
def test_foreign_or_malformed_document_is_refused(
    tmp_path: Path, document: Any, words: str
) -> None:
    with pytest.raises(UsageError, match=words):
        load_document(_write(tmp_path / "results.json", document))


def test_empty_jsonl_is_refused(tmp_path: Path) -> None:
    (tmp_path / "results.jsonl").write_text("")
    with pytest.raises(UsageError, match="holds no case results"):
        load_document(tmp_path / "results.jsonl")


def test_torn_jsonl_gives_its_complete_lines_as_a_partial_run(tmp_path: Path) -> None:
    whole = json.dumps(RECORD)
    (tmp_path / "results.jsonl").write_text(whole + "\n" + whole.replace("a[x]", "b[x]")[:30])
    document = load_document(tmp_path)  # a report directory with only results.jsonl
    assert [r["id"] for r in document["results"]] == ["a[x]"]
    comparison = compare(document, document)
    assert comparison.partial == ("old", "new")
    assert "note: OLD is a partial run" in render_comparison(comparison)


def test_a_bad_line_inside_a_jsonl_is_refused(tmp_path: Path) -> None:
    whole = json.dumps(RECORD)
    (tmp_path / "results.jsonl").write_text(f"{whole}\nnot json\n{whole}\n")
    with pytest.raises(UsageError, match="line 2 is not JSON"):
        load_document(tmp_path / "results.jsonl")


def test_partial_results_json_is_told(tmp_path: Path) -> None:
    partial = {"schema": "sockspec-results/1", "run": {"partial": True}, "results": [RECORD]}
    whole = {**partial, "run": {"partial": False}}
    comparison = compare(whole, partial)
    assert comparison.partial == ("new",)
    text = render_comparison(comparison, "old.json", "new.json")
    assert "note: new.json is a partial run" in text and "old.json is" not in text
