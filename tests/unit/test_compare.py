"""compare(OLD, NEW): fixed, regressed, new, gone, changed, and the CI exit status."""

from __future__ import annotations

import dataclasses
import gzip
import json
from pathlib import Path
from typing import Any

import pytest

from harness._model.errors import UsageError
from harness._report.compare import Change, compare, load_document, render_comparison

GOOD = ("pass", "xfail", "unsupported")
BAD = ("fail", "hang", "crash", "error", "xpass")


def doc(*cells: tuple[str, str, str]) -> dict[str, Any]:
    """A results document of (impl, case id, verdict) cells."""
    results = [
        {
            "id": case,
            "scenario": case.split("[")[0],
            "impl": impl,
            "verdict": verdict,
            "strictness": "must",
            "duration": 0.1,
        }
        for impl, case, verdict in cells
    ]
    return {"schema": "sockspec-results/1", "run": {}, "results": results}


@pytest.mark.parametrize("before", GOOD)
@pytest.mark.parametrize("after", BAD)
def test_good_to_bad_is_a_regression_and_exits_1(before: str, after: str) -> None:
    result = compare(doc(("stdlib", "a[x]", before)), doc(("stdlib", "a[x]", after)))
    assert result.regressed == (Change("stdlib", "a[x]", before, after, "must"),)
    assert result.exit_status == 1
    assert not (result.fixed or result.new or result.gone or result.changed)


@pytest.mark.parametrize("before", BAD)
@pytest.mark.parametrize("after", GOOD)
def test_bad_to_good_is_fixed_and_exits_0(before: str, after: str) -> None:
    result = compare(doc(("stdlib", "a[x]", before)), doc(("stdlib", "a[x]", after)))
    assert result.fixed == (Change("stdlib", "a[x]", before, after, "must"),)
    assert result.exit_status == 0 and not result.regressed


@pytest.mark.parametrize(("before", "after"), [("fail", "hang"), ("pass", "unsupported")])
def test_moves_within_good_or_bad_are_changes_not_regressions(before: str, after: str) -> None:
    result = compare(doc(("r", "a[x]", before)), doc(("r", "a[x]", after)))
    assert [c.new for c in result.changed] == [after] and result.exit_status == 0


def test_new_and_gone_cases_do_not_fail_the_gate() -> None:
    old = doc(("stdlib", "a[x]", "pass"), ("stdlib", "old[x]", "pass"))
    new = doc(("stdlib", "a[x]", "pass"), ("stdlib", "b[x]", "fail"), ("ref", "a[x]", "pass"))
    result = compare(old, new)
    assert [(c.impl, c.case, c.new) for c in result.new] == [
        ("stdlib", "b[x]", "fail"),
        ("ref", "a[x]", "pass"),
    ]
    assert [(c.case, c.old, c.new) for c in result.gone] == [("old[x]", "pass", None)]
    assert result.unchanged == 1 and result.exit_status == 0


def test_identical_runs_have_nothing_to_say() -> None:
    same = doc(("stdlib", "a[x]", "fail"), ("stdlib", "b[x]", "pass"))
    result = compare(same, same)
    assert result.unchanged == 2 and result.exit_status == 0
    assert render_comparison(result).splitlines()[-1].startswith("0 regressed, 0 fixed")


def test_odd_records_are_ignored() -> None:
    odd: dict[str, Any] = {"schema": "sockspec-results/1", "results": [None, 3, {"verdict": []}]}
    result = compare(odd, doc(("stdlib", "a[x]", "pass")))
    assert len(result.new) == 1 and compare({}, {}).exit_status == 0


def test_render_lists_each_section_and_a_tally() -> None:
    old = doc(("s", "reg[x]", "pass"), ("s", "fix[x]", "hang"), ("s", "gone[x]", "pass"))
    new = doc(("s", "reg[x]", "crash"), ("s", "fix[x]", "pass"), ("s", "new[x]", "fail"))
    text = render_comparison(compare(old, new), "old/", "new/")
    assert text.startswith("sockspec compare: old/ → new/\n")
    for line in ("regressed (1):", "fixed (1):", "new (1, 1 failing):", "gone (1):"):
        assert line in text
    assert "pass → crash" in text and "reg[x]" in text
    assert text.endswith(
        "1 regressed, 1 fixed, 1 new, 1 gone, 0 changed, 0 unchanged — exit status 1\n"
    )


def test_long_lists_of_new_cases_are_cut() -> None:
    new = doc(*[("s", f"c[{n}]", "pass") for n in range(80)])
    assert "… and 30 more" in render_comparison(compare(doc(), new))


def test_comparison_is_frozen() -> None:
    result = compare(doc(), doc())
    with pytest.raises(dataclasses.FrozenInstanceError):
        result.unchanged = 3  # type: ignore[misc]


def test_load_document_reads_files_dirs_and_jsonl(tmp_path: Path) -> None:
    document = doc(("s", "a[x]", "pass"))
    (tmp_path / "results.json").write_text(json.dumps(document))
    assert load_document(tmp_path) == load_document(tmp_path / "results.json") == document
    killed = tmp_path / "killed"
    killed.mkdir()
    (killed / "results.jsonl").write_text(json.dumps(document["results"][0]) + "\n")
    assert load_document(killed)["results"] == document["results"]
    sealed = tmp_path / "sealed"
    sealed.mkdir()
    with gzip.open(sealed / "results.jsonl.gz", "wt") as stream:
        stream.write(json.dumps(document["results"][0]) + "\n")
    assert load_document(sealed)["results"] == document["results"]


@pytest.mark.parametrize(
    ("content", "message"),
    [(None, "no results at"), ("{oops", "cannot read results"), ('{"a": 1}', "not a sockspec")],
)
def test_load_document_errors_name_the_path(
    tmp_path: Path, content: str | None, message: str
) -> None:
    path = tmp_path / "results.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(UsageError, match=message) as info:
        load_document(path)
    assert str(path) in str(info.value)
