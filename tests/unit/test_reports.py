"""Reports written from results.json: summary.md, junit.xml, index.html, case pages, progress."""

from __future__ import annotations

import io
import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from helpers.cli import CliRun
from helpers.reports import (
    EXPECTED,
    MUTANT,
    OBSERVED,
    TRANSCRIPT,
    failing_evidence,
    sample_case,
    sample_document,
    sample_results,
    write_sample,
)

from harness._cli.progress import LineProgress, LiveProgress, make_progress
from harness._model.records import Verdict
from harness._report import write as _reports
from harness._report.html import diff_tokens
from harness._report.model import build_view
from harness._report.svg import MAX_BARS, timeline_svg
from harness._report.write import write_reports


class _Links(HTMLParser):
    """Collects hrefs/srcs, matrix rows and header cells of an HTML page."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.rows: list[str] = []
        self.impl_headers: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        self.urls += [v for k, v in attrs if k in ("href", "src") and v]
        if tag == "tr" and "case" in (found.get("class") or "").split():
            self.rows.append(found.get("data-case") or "")
        if tag == "th" and found.get("class") == "impl-h":
            self.impl_headers.append(found.get("data-impl") or "")


def _parse(path: Path) -> _Links:
    parser = _Links()
    parser.feed(path.read_text())
    return parser


@pytest.fixture
def report(tmp_path: Path) -> Path:
    write_sample(tmp_path)
    return tmp_path


def test_write_reports_writes_every_report(tmp_path: Path) -> None:
    written = write_sample(tmp_path)
    assert set(written) == {"summary", "junit", "html"}
    assert all(p.is_file() for p in written.values())


def test_summary_has_problems_then_matrix(report: Path) -> None:
    text = (report / "summary.md").read_text()
    assert "| scenario | stdlib | mutant_finish_skipped | reference |" in text
    assert "| `lifecycle.order` (1) | ✅ 1 pass | ❌ 1 fail | 🛑 1 error |" in text
    assert "distinct problem(s) in `mutant_finish_skipped`, `reference`" in text
    assert "- `mutant_finish_skipped`: **3 distinct problem(s)** in 3 failing case(s)" in text
    assert f"expected: `{EXPECTED}`" in text and f"observed: `{OBSERVED}`" in text
    assert "shutdown() never returns" in text
    assert f"--impl {MUTANT} --select 'lifecycle.order[tcp-sync]' --seed 3" in text
    assert text.index("### Problems") < text.index("### Matrix")


def test_summary_folds_scenarios_without_problems(tmp_path: Path) -> None:
    doc = sample_document()
    doc["results"] += [
        sample_case(i, "quiet.one[a]", Verdict.PASS).to_json()
        for i in ("stdlib", MUTANT, "reference")
    ]
    write_sample(tmp_path, doc)
    text = (tmp_path / "summary.md").read_text()
    folded = text.split("<details>")[1]
    assert "1 scenario(s) with no problem" in folded and "`quiet.one` (1)" in folded
    assert "`lifecycle.order` (1)" not in folded


def test_junit_counts_and_messages_match_results(report: Path) -> None:
    junitparser = pytest.importorskip("junitparser", reason="junitparser is a test dependency")
    doc = json.loads((report / "results.json").read_text())
    xml = junitparser.JUnitXml.fromfile(str(report / "junit.xml"))
    records = {(r["impl"], r["id"]): r for r in doc["results"]}
    seen = {}
    for suite in xml:
        s = doc["summary"][suite.name]
        assert suite.tests == sum(s.values())
        assert suite.failures == s["fail"] + s["hang"] + s["crash"] + s["xpass"]
        assert suite.errors == s["error"]
        assert suite.skipped == s["unsupported"] + s["xfail"]
        for case in suite:
            seen[(case.classname, case.name)] = [type(r).__name__ for r in case.result]
    assert set(seen) == set(records)
    kinds = {
        "pass": [],
        "fail": ["Failure"],
        "hang": ["Failure"],
        "crash": ["Failure"],
        "xpass": ["Failure"],
        "error": ["Error"],
        "unsupported": ["Skipped"],
        "xfail": ["Skipped"],
    }
    assert {k: kinds[r["verdict"]] for k, r in records.items()} == seen
    failing = next(
        c for s in xml for c in s if (c.classname, c.name) == (MUTANT, "lifecycle.order[tcp-sync]")
    )
    failure = failing.result[0]
    assert failure.type == "fail" and EXPECTED in failure.message and OBSERVED in failure.message
    assert TRANSCRIPT in failure.text and "replay: python -m harness run" in failure.text


def test_junit_is_well_formed_despite_control_characters(report: Path) -> None:
    root = ET.parse(report / "junit.xml").getroot()
    assert root.tag == "testsuites" and root.get("tests") == "11"
    errs = [e.text or "" for e in root.iter("system-err")]
    assert any("InjectedError: boom" in e for e in errs)


def test_html_has_no_external_urls(report: Path) -> None:
    pages = [report / "index.html", *sorted((report / "cases").rglob("*.html"))]
    assert len(pages) == 1 + 11
    for page in pages:
        text = page.read_text()
        # The one stylesheet link allowed is the report's own report.css.
        text = re.sub(r'<link rel="stylesheet" href="(\.\./\.\./)?report\.css">', "", text)
        assert not re.search(r"https?:|//cdn|<script|<link|@import", text, re.I), page
        assert all("://" not in url for url in _parse(page).urls), page


def test_index_has_a_row_per_case_and_a_column_per_implementation(report: Path) -> None:
    page = _parse(report / "index.html")
    assert sorted(page.rows) == sorted(
        ["echo.basic[tcp]", "echo.basic[udp]", "lifecycle.order[tcp-sync]", "shutdown.prompt[tcp]"]
    )
    assert page.impl_headers == ["stdlib", MUTANT, "reference"]


def test_index_links_resolve_to_case_pages(report: Path) -> None:
    urls = _parse(report / "index.html").urls
    pages = {u for u in urls if u.startswith("cases/")}
    written = {p.relative_to(report).as_posix() for p in (report / "cases").rglob("*.html")}
    assert pages == written and len(pages) == 11
    assert all((report / u).is_file() for u in urls), urls


def test_cells_are_coloured_by_verdict_and_strictness(report: Path) -> None:
    html = (report / "index.html").read_text()
    assert re.search(r'class="cell v-fail s-must t-loud"[^>]*>FAIL<', html)
    assert re.search(r'class="cell v-fail s-should t-muted"[^>]*>fail · should<', html)
    assert re.search(r'class="cell v-xpass s-must t-surprise"[^>]*>XPASS<', html)
    assert 'class="cell t-none">not run<' in html


def test_case_page_shows_every_piece_of_evidence(report: Path) -> None:
    view = build_view(json.loads((report / "results.json").read_text()))
    case = view.cell(MUTANT, "lifecycle.order[tcp-sync]")
    assert case is not None
    html = (report / case.page).read_text()
    assert "2 findings, 1 distinct" in html
    assert '<span class="tok missing">finish</span>' in html
    assert "conn#1 setup → handle raised InjectedError → finish MISSING" in html
    assert "get_request → setup → handle raised InjectedError → close_request" in html
    assert html.count('<g class="bar raised">') == 1 and html.count('<g class="bar">') == 1
    assert "ConnectionResetError: reset" in html and "5 B &#39;hello&#39;" in html
    assert 'href="../../captures/case1.pcap"' in html
    assert "mystery_key" in html and "InjectedError: boom" in html
    assert "python -m harness run --impl /tmp/x/mutant_finish_skipped.py" in html
    assert "␀" in html and "\x00" not in html  # control characters are made visible


def test_hang_page_shows_the_stacks(report: Path) -> None:
    page = report / "cases/mutant_finish_skipped/shutdown.prompt-tcp.html"
    assert "Thread 0x1 (most recent call first)" in page.read_text()


def test_hostile_text_is_escaped(tmp_path: Path) -> None:
    doc = sample_document()
    doc["results"][0]["id"] = "<script>alert(1)</script>[x]"
    doc["results"][0]["impl"] = 'a"b<i>'
    write_sample(tmp_path, doc)
    for page in [tmp_path / "index.html", *(tmp_path / "cases").rglob("*.html")]:
        assert "<script>" not in page.read_text()


@pytest.mark.parametrize(
    "document",
    [
        {},
        [],
        "not a document",
        {"schema": "sockspec-results/1", "results": "nope"},
        {"schema": "sockspec-results/1", "results": [1, None, {}, {"verdict": "weird"}]},
        {
            "results": [
                {
                    "id": "a.b[c]",
                    "impl": "x",
                    "verdict": "quantum",
                    "strictness": "never",
                    "duration": "slow",
                    "findings": [None, "text", {"conn": "1"}],
                    "evidence": {
                        "timeline": [{"start": "x"}, 5],
                        "event_log": "no",
                        "wire": [None, {"sent": {"head": "zz"}}],
                        "pcap": "/abs",
                        "stacks": {"t": 1},
                        "new_thing": object.__name__,
                    },
                }
            ],
            "implementations": "all",
            "run": [],
        },
    ],
)
def test_odd_input_does_not_raise(tmp_path: Path, document: Any) -> None:
    written = write_sample(tmp_path, document)
    assert set(written) == {"summary", "junit", "html"}
    ET.parse(tmp_path / "junit.xml")
    assert all((tmp_path / u).is_file() for u in _parse(tmp_path / "index.html").urls)


def test_unreadable_results_is_one_line_and_no_report(tmp_path: Path) -> None:
    (tmp_path / "results.json").write_text("{not json")
    out = io.StringIO()
    assert write_reports(tmp_path, out) == {}
    assert out.getvalue().count("\n") == 1 and "results.json" in out.getvalue()
    assert write_reports(tmp_path / "missing", out) == {}


def test_a_failing_report_is_one_line_and_the_others_are_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(view: object) -> str:
        raise RuntimeError("boom")

    monkeypatch.setattr(_reports, "render_junit", broken)
    monkeypatch.setattr(_reports, "render_case", broken)
    (tmp_path / "results.json").write_text(json.dumps(sample_document()))
    out = io.StringIO()
    written = write_reports(tmp_path, out)
    assert set(written) == {"summary", "html"}
    lines = out.getvalue().splitlines()
    assert len(lines) == 2 and "junit.xml" in lines[0] and "RuntimeError: boom" in lines[0]
    assert all((tmp_path / u).is_file() for u in _parse(tmp_path / "index.html").urls)


def test_slugs_are_unique_and_file_safe() -> None:
    doc = sample_document()
    doc["results"][1]["id"] = "echo.basic(tcp)"  # slugs like echo.basic[tcp]
    doc["implementations"].append({"spec": "/other/dir/mutant_finish_skipped.py"})
    view = build_view(doc)
    pages = [c.page for c in view.cases]
    assert len(set(pages)) == len(pages)
    assert all(re.fullmatch(r"cases/[A-Za-z0-9._-]+/[A-Za-z0-9._-]+\.html", p) for p in pages)
    assert [i.slug for i in view.impls][-1] == "mutant_finish_skipped-2"


def test_expected_and_observed_are_diffed_hook_by_hook() -> None:
    expected, observed = diff_tokens(EXPECTED, OBSERVED)
    assert ("finish", "missing") in expected and ("close_request", "same") in observed
    assert diff_tokens("b'ab'", "b'a'") == ([("b'ab'", "plain")], [("b'a'", "plain")])


def test_timeline_has_a_lane_per_thread_and_marks_raised() -> None:
    svg = timeline_svg(failing_evidence()["timeline"])
    assert svg.count('<text x="4"') == 2 and "raised InjectedError" in svg
    assert timeline_svg([]) == "" and timeline_svg("junk") == ""


def test_real_run_reports(cli: Callable[..., CliRun], tmp_path: Path) -> None:
    from mutants import by_name

    mutant = by_name("finish_skipped_when_handle_raises").write(tmp_path)
    run = cli(
        "run",
        "--impl",
        "stdlib",
        "--impl",
        str(mutant),
        "--select",
        "lifecycle.handler.order[tcp-sync-fault=handle-*",
    )
    assert run.status == 1 and run.report_dir is not None, run.stderr
    written = write_reports(run.report_dir, io.StringIO())
    assert set(written) == {"summary", "junit", "html"}
    summary = written["summary"].read_text()
    assert "❌ 1 fail" in summary and "finish MISSING" in summary
    root = ET.parse(written["junit"]).getroot()
    assert root.get("failures") == "1" and root.get("tests") == str(len(run.verdicts()))


def _outcome(tmp_path: Path) -> Any:
    results = tuple(sample_results())
    return SimpleNamespace(results=results, report_dir=tmp_path, exit_status=2, partial=False)


def test_plain_progress_prints_problems_and_report_paths(tmp_path: Path) -> None:
    write_sample(tmp_path)
    stream = io.StringIO()
    progress = make_progress(stream)
    assert isinstance(progress, LineProgress)
    progress.start(11)
    for result in sample_results():
        progress.case_done(result)
    progress.finish(_outcome(tmp_path))
    text = stream.getvalue()
    assert text.startswith("sockspec: running 11 case(s)\n")
    problems = [line for line in text.splitlines() if re.match(r"[A-Z]+ +\S+ \S+", line)]
    assert [line.split()[0] for line in problems] == ["FAIL", "HANG", "CRASH", "FAIL", "ERROR"]
    assert f"FAIL  {MUTANT} lifecycle.order[tcp-sync]" in problems[0]
    assert f"summary.md: {tmp_path / 'summary.md'}" in text
    assert f"index.html: {tmp_path / 'index.html'}" in text


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_live_progress_draws_a_bar_on_a_terminal(tmp_path: Path) -> None:
    write_sample(tmp_path)
    stream = _Terminal()
    progress = make_progress(stream)
    assert isinstance(progress, LiveProgress)
    progress.start(11)
    for result in sample_results():
        progress.case_done(result)
    progress.finish(_outcome(tmp_path))
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", stream.getvalue())
    assert "11/11" in text and "5 failed" in text
    assert "lifecycle.order[tcp-sync]" in text and "index.html" in text


def test_timeline_of_thousands_of_requests_stays_small() -> None:
    raw = [
        {"conn": n, "pid": 1, "thread": "serve", "start": n, "end": n + 0.5} for n in range(3000)
    ]
    svg = timeline_svg(raw)
    assert svg.count("<g class=") == MAX_BARS
    assert f"{3000 - MAX_BARS} interval(s) not drawn" in svg
    assert len(svg) < 40_000
