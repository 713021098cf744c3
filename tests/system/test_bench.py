"""Tests for the benchmark command (harness._bench.command and its _bench_* modules).

The figures themselves are never asserted -- timing goals are what the
benchmark *reports*; a test that depended on them would fail on a loaded
machine.  What is checked is the shape of bench.json, that every ratio is a
positive number, and the pure helpers (statistics, plot, parsing).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import xml.dom.minidom
from pathlib import Path
from typing import Any

import pytest
from helpers import ROOT
from mutants import MUTANTS

from harness._bench.broken import false_failures, goals_of, load_table, row_line, sample
from harness._bench.command import DEFAULT_SECTIONS, SECTIONS, parse_options, plot
from harness._bench.echo import Row, all_rows
from harness._bench.fuzz import _steps, find_number
from harness._bench.plot import Panel, render
from harness._bench.stats import interleaved, paired_ratio, worst
from harness._runtime.swarm import percentile


def run_bench(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], Path]:
    """``bench ARGS --report-dir tmp`` in a subprocess (it raises rlimits, forks servers)."""
    report = tmp_path / "bench"
    proc = subprocess.run(
        [sys.executable, "-m", "harness", "bench", *args, "--report-dir", str(report)],
        capture_output=True,
        text=True,
        timeout=240,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    return proc, report


def positive(value: Any) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value) and value > 0


def check_ratio(ratio: dict[str, Any], reps: int) -> None:
    assert set(ratio) >= {"median", "min", "max", "samples", "goal", "verdict", "p_below"}
    assert positive(ratio["median"]) and positive(ratio["min"]) and positive(ratio["max"])
    assert ratio["min"] <= ratio["median"] <= ratio["max"]
    assert 1 <= len(ratio["samples"]) <= reps
    assert all(positive(s) for s in ratio["samples"])
    assert ratio["verdict"] in ("ok", "noise", "below")


def check_echo_section(section: dict[str, Any], sides: tuple[str, str], reps: int) -> None:
    assert section["reps"] == reps and section["rows"]
    for row in section["rows"]:
        assert {"row", "transport", "kind", "mode", "concurrency"} <= set(row)
        if "unsupported" in row:
            continue
        for side in sides:
            assert positive(row[side]["throughput"]) and positive(row[side]["p50"])
            assert len(row[side]["reps"]) == reps
        for key, ratio in row["ratios"].items():
            if key == "cpu_per_request" and ratio["verdict"] == "n/a":
                # Every window's server CPU read 0: under a loaded machine (parallel tox
                # envs) a short --quick window can get less than one 10 ms clock tick.
                # The bench then says n/a rather than invent a ratio.
                assert ratio["samples"] == [] and ratio["median"] is None
                continue
            check_ratio(ratio, reps)
        assert row["verdict"] in ("ok", "noise", "below")


def check_goals(goals: list[dict[str, Any]]) -> None:
    for goal in goals:
        assert set(goal) == {"section", "name", "value", "op", "limit", "unit", "met", "note"}
        assert goal["op"] in ("<=", ">=") and goal["met"] in (True, False, None)


@pytest.mark.slow
def test_quick_echo_and_load_sections_write_json_and_svg(tmp_path: Path) -> None:
    # The shape is what is checked: two repetitions of 0.05 s windows and 100 load
    # clients show it at half the CPU of --quick's own (tox runs four suites at once).
    proc, report = run_bench(
        tmp_path,
        "--quick",
        "--only",
        "reference-vs-stdlib,instrumentation,load",
        *("--reps", "2", "--duration", "0.05", "--clients", "100"),
    )
    assert proc.returncode == 0, proc.stderr
    doc = json.loads((report / "bench.json").read_text())
    assert doc["schema"] == "sockspec-bench/1"
    assert list(doc["sections"]) == ["reference-vs-stdlib", "instrumentation", "load"]
    reps = doc["options"]["reps"]
    check_echo_section(doc["sections"]["reference-vs-stdlib"], ("stdlib", "reference"), reps)
    check_echo_section(doc["sections"]["instrumentation"], ("plain", "instrumented"), reps)
    for run in doc["sections"]["load"]["runs"]:
        assert run["clients"] == doc["options"]["clients"]
        assert run["ok"] + run["errors"] == run["clients"]
        assert positive(run["driver_cpu_per_request"]) and positive(run["connect_p50"])
        assert run["roundtrip_p50"] is None or positive(run["roundtrip_p50"])
    check_goals(doc["goals"])
    assert {g["section"] for g in doc["goals"]} == set(doc["sections"])
    xml.dom.minidom.parse(str(report / "bench.svg"))
    assert "== goals ==" in proc.stdout


@pytest.mark.slow
def test_quick_suite_and_fuzz_sections(tmp_path: Path) -> None:
    proc, report = run_bench(tmp_path, "--quick", "--only", "suite,fuzz")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads((report / "bench.json").read_text())
    suite = doc["sections"]["suite"]
    for jobs in ("jobs1", "jobs2"):
        assert positive(suite["speed"][jobs]["wall"]) and suite["speed"][jobs]["cases"] > 0
    for name in ("empty", "server", "serving"):
        assert positive(suite["overhead"][name]["median_ms"])
        assert suite["overhead"][name]["verdicts"] == ["pass"]
    assert doc["sections"]["fuzz"]["status"] in ("ok", "pending")
    check_goals(doc["goals"])


def test_unknown_section_is_a_usage_error(tmp_path: Path) -> None:
    proc, report = run_bench(tmp_path, "--only", "lod")
    assert proc.returncode == 2
    assert "unknown section 'lod'" in proc.stderr
    assert not report.exists()


def test_options_default_and_quick() -> None:
    full = parse_options([])
    assert full.only == DEFAULT_SECTIONS and full.reps == 9 and full.clients == 10_000
    assert full.report_dir.name.startswith("bench-")
    quick = parse_options(["--quick", "--only", "load,suite", "--reps", "2"])
    assert quick.only == ("load", "suite") and quick.reps == 2 and quick.clients == 200
    with pytest.raises(ValueError, match="must be positive"):
        parse_options(["--reps", "0"])


def test_rows_cover_every_transport_kind_and_mode() -> None:
    rows = all_rows()
    assert Row("tcp", "sync", "persistent") in rows
    assert Row("unix_stream", "forking", "per-request") in rows
    assert Row("udp", "threading", "datagram") in rows
    assert len(rows) == 3 * 3 * 2 + 3 * 3  # stream transports in two modes, datagram in one
    assert Row("tcp", "sync", "persistent").concurrency == 1


def test_percentile_is_nearest_rank() -> None:
    assert percentile([], 50) is None
    assert percentile([3.0, 1.0, 2.0], 50) == 2.0
    assert percentile([float(i) for i in range(1, 101)], 99) == 99.0


def test_interleaving_alternates_the_order() -> None:
    assert list(interleaved(["a", "b"], 3)) == [
        (0, "a"),
        (0, "b"),
        (1, "b"),
        (1, "a"),
        (2, "a"),
        (2, "b"),
    ]


def test_paired_ratio_verdicts_follow_a_sign_test() -> None:
    assert paired_ratio([1.1] * 5, [1.0] * 5).verdict == "ok"
    consistent = paired_ratio([0.95] * 9, [1.0] * 9)
    assert consistent.verdict == "below" and consistent.p_below == 2**-9
    mixed = paired_ratio([0.9] * 5 + [1.2] * 4, [1.0] * 9)
    assert mixed.verdict == "noise" and mixed.median == pytest.approx(0.9)
    assert paired_ratio([None, 2.0], [1.0, None]).verdict == "n/a"
    assert worst(["ok", "noise", "n/a"]) == "noise" and worst(["n/a"]) == "n/a"


def test_plot_renders_panels_as_valid_svg() -> None:
    ratio = paired_ratio([1.2, 0.9, 1.1], [1.0, 1.0, 1.0]).to_json()
    svg = render([Panel("t & <x>", ("throughput",), (("tcp/sync/persistent", (ratio,)),))], "T")
    dom = xml.dom.minidom.parseString(svg)
    assert dom.documentElement.tagName == "svg"
    assert "tcp/sync/persistent" in svg and "&amp; &lt;x&gt;" in svg


def test_plot_of_a_document_without_sections() -> None:
    doc = {"started": "now", "sections": {}, "goals": []}
    xml.dom.minidom.parseString(plot(doc))


def test_fuzz_steps_come_from_the_printed_summary_else_evidence() -> None:
    output = "fuzz: 12 examples, 340 steps in 2.00s (170 steps/s)\n"
    assert _steps({"output": output}, budget=3.0) == (340.0, 2.0)
    assert _steps({"stats": {"steps": 50}}, budget=3.0) == (50.0, 3.0)
    assert _steps({"events": 10}, budget=3.0)[0] is None
    assert find_number([{"a": True}, {"steps": 7}], ("steps",)) == 7.0


def test_broken_section_is_named_only_and_takes_a_subset() -> None:
    assert "broken" in SECTIONS and "broken" not in DEFAULT_SECTIONS
    options = parse_options(["--only", "broken", "--broken", "a, b"])
    assert options.only == ("broken",) and options.broken == ("a", "b")


def test_broken_table_is_the_projects_mutants() -> None:
    assert {m.name for m in load_table()} == {m.name for m in MUTANTS}


def _row(
    name: str, correct: bool, walls: tuple[float, float], unchanged: bool = True
) -> dict[str, Any]:
    row: dict[str, Any] = {
        "impl": name,
        "correct": correct,
        "unchanged": None if correct else unchanged,
    }
    for jobs, wall in zip((1, 2), walls, strict=True):
        row[f"jobs{jobs}"] = {"wall": wall}
        row[f"ratio{jobs}"] = round(wall / (10.0 if jobs == 1 else 6.0), 2)
    row["false_failures"] = 0
    row["changed"] = [] if unchanged else ["x: hang -> pass"]
    row["flipped"] = [] if unchanged else ["x"]
    row["lost"] = []
    row["no_phases"] = {"intervened": 30, "judged": 16, "changed": row["changed"], "lost": []}
    return row


def test_broken_goals_mark_ratios_changes_and_false_failures() -> None:
    rows = [
        _row("stdlib", True, (10.0, 6.0)),
        _row("fast", False, (15.0, 9.0)),
        _row("slow", False, (25.0, 20.0), unchanged=False),
    ]
    goals = {g["name"]: g for g in goals_of(rows, quick=False)}
    over = goals["broken implementations over 2x the clean run"]
    assert over["value"] == 1 and over["met"] is False and over["note"] == "slow"
    assert goals["worst ratio to the clean run"]["value"] == 3.33
    assert goals["caught/passed changed by phase deadlines (re-judged cases)"]["note"] == "slow"
    assert goals["false failures on stdlib and reference"]["met"] is True
    assert goals["verdicts lost (caught without phase deadlines, passed with them)"]["met"]
    assert "unchanged (16 of 30 cases re-judged" in row_line(rows[1])
    assert "CHANGED" in row_line(rows[2])
    # A dead serve thread's hang that became fail is a change between failing verdicts.
    kind = {**rows[2], "changed": ["x: hang -> fail"], "flipped": []}
    assert "caught and passed alike, 1 changed between failing verdicts" in row_line(kind)
    goals = {g["name"]: g for g in goals_of([rows[0], kind], quick=False)}
    caught = goals["caught/passed changed by phase deadlines (re-judged cases)"]
    assert caught["met"] is True and "between failing verdicts only: slow" in caught["note"]


def test_the_baseline_sample_covers_every_mechanism_and_scenario_first() -> None:
    intervened = {f"a.b[x={i}]": "hang_phase" for i in range(30)}
    intervened |= {"c.d[y=1]": "hang_phase", "a.b[z=1]": "client_phase_deadline"}
    picked = sample(intervened, limit=4)
    assert len(picked) == 4 and len(set(picked)) == 4
    # one per (mechanism, scenario) group before any group gives a second
    assert {"c.d[y=1]", "a.b[z=1]"} <= set(picked)
    assert sample({}, limit=4) == []


def test_a_correct_implementation_fails_falsely_in_any_of_its_runs() -> None:
    """Each run counts: a case failing only in the serial run is a false failure too."""
    runs = {
        1: {"verdicts": {"a": "fail", "b": "pass", "u": "unsupported"}},
        2: {"verdicts": {"a": "pass", "b": "pass", "c": "hang"}},
    }
    assert false_failures(runs) == ["a (--jobs 1)", "c (--jobs 2)"]
    assert false_failures({1: {"verdicts": {"a": "pass"}}, 2: {"verdicts": {"a": "xfail"}}}) == []
