"""The mutation engine's own parts: mutant keys, case selection, triage, the score."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from harness._model.errors import UsageError
from harness._mutation.equivalents import load_triage
from harness._mutation.judge import Judgement
from harness._mutation.mutants import Mutant, generate
from harness._mutation.report import Row, render_summary, score
from harness._mutation.selection import BATCHES, LineCases, batches, statement_starts
from harness._mutation.targets import resolve_target

SOURCE = """\
class Server:
    timeout = None

    def handle(self, n):
        if n > 1:
            return n + 1
        return 0

    def close(self, *, wait=False):
        pass
"""

CASES = (
    "echo.basic[tcp-sync-clients=8]",
    "echo.basic[tcp-sync-clients=1]",
    "echo.basic[tcp-forking-clients=1]",
    "errors.raise[udp-threading]",
    "shutdown.stop[unix_stream-forking]",
)


def _mutant(key: str = "AddNot:0", line: int = 5) -> Mutant:
    return Mutant(key, "core/AddNot", 0, line, "if n > 1:", "if not n > 1:", SOURCE)


def test_mutants_have_stable_keys_and_name_the_changed_line() -> None:
    pytest.importorskip(
        "cosmic_ray", reason="the mutation extra is not installed (tox -e mutation)"
    )
    first = list(generate(SOURCE))
    again = list(generate("# a comment shifts every line\n" + SOURCE))
    assert first and len({m.key for m in first}) == len(first)
    assert [m.key for m in first] == [m.key for m in again]
    assert all(m.line + 1 == n.line for m, n in zip(first, again, strict=True))
    for mutant in first:  # a "*" read as a product gives no mutant that is not Python
        compile(mutant.source, mutant.key, "exec")
    negated = next(m for m in first if m.operator == "core/AddNot" and m.line == 5)
    assert negated.before == "if n > 1:" and negated.after == "if not n > 1:"


def test_lines_run_by_cases_select_those_cases_round_robin_fewest_clients_first() -> None:
    lines = LineCases({5: frozenset({"", CASES[0], CASES[1], CASES[3]})}, CASES)
    why, ids = lines.cases_for(5)
    assert why == "run by 3 case(s)"
    assert ids == (CASES[1], CASES[3], CASES[0])  # one per scenario in turn, 1 client before 8


def test_import_only_lines_are_judged_by_every_case_and_unrun_lines_by_forking_ones() -> None:
    lines = LineCases({2: frozenset({""})}, CASES)
    assert (
        lines.cases_for(2)[0].startswith("run only at import") and len(lines.cases_for(2)[1]) == 5
    )
    why, ids = lines.cases_for(99)
    assert why.startswith("not run by any traced case") and set(ids) == {CASES[2], CASES[4]}


def test_batches_grow_and_cover_every_case_once() -> None:
    ids = [f"c{n}" for n in range(200)]
    split = batches(ids)
    assert [len(b) for b in split[: len(BATCHES)]] == list(BATCHES)
    assert [i for b in split for i in b] == ids
    assert batches([]) == [] and batches(["a"]) == [["a"]]


def test_triage_file_is_validated(tmp_path: Path) -> None:
    good = tmp_path / "good.toml"
    good.write_text(
        '[[equivalent]]\nkey = "k1"\nreason = "same"\n[[out_of_scope]]\nkey = "k2"\nreason = "x"\n'
    )
    triage = load_triage(good)
    assert triage.reason("k1") == ("equivalent", "same") and triage.reason("k3") is None
    assert load_triage(tmp_path / "absent.toml").reason("k1") is None
    for bad in ('[[equivalents]]\nkey = "k"\nreason = "r"\n', '[[equivalent]]\nkey = "k"\n'):
        (tmp_path / "bad.toml").write_text(bad)
        with pytest.raises(UsageError, match=r"bad\.toml"):
            load_triage(tmp_path / "bad.toml")


def test_score_leaves_triaged_mutants_out_and_summary_lists_survivors() -> None:
    def row(key: str, status: str, triage: tuple[str, str] | None = None) -> Row:
        return Row(_mutant(key), "run by 1 case(s)", Judgement(key, status, "why", 1, 0.1), triage)

    rows = [
        row("a", "killed"),
        row("b", "killed"),
        row("c", "survived"),
        row("d", "survived", ("equivalent", "no observable difference")),
    ]
    result = score(rows)
    assert result["score"] == round(2 / 3, 4) and result["equivalent"] == 1
    text = render_summary("t", "t.py", rows)
    assert "`c`" in text.split("## Triaged")[0] and "no observable difference" in text


def test_a_package_target_is_copied_with_one_file_edited_and_loads_by_its_private_name(
    tmp_path: Path,
) -> None:
    target = resolve_target("servers")
    assert target.is_package and "_base.py" in target.files and "__init__.py" in target.files
    edited = target.source("_types.py") + "\nMUTATED = True\n"
    placement = target.materialise(tmp_path, ("_types.py", edited))
    assert placement.spec == target.import_name and placement.pythonpath == str(tmp_path)
    assert placement.files["_types.py"].read_text() == edited
    assert placement.files["_base.py"].read_text() == target.source("_base.py")
    assert (Path(__file__).resolve().parents[2] / "servers" / "_types.py").read_text() != edited
    path = placement.environ()["PYTHONPATH"].split(os.pathsep)
    assert path[0] == str(tmp_path)


def test_a_one_file_target_is_written_as_a_path_and_unknown_targets_are_refused(
    tmp_path: Path,
) -> None:
    source = tmp_path / "impl.py"
    source.write_text(SOURCE)
    target = resolve_target(str(source))
    placement = target.materialise(tmp_path / "copy", ("impl.py", "x = 1\n"))
    assert Path(placement.spec).read_text() == "x = 1\n" and placement.pythonpath is None
    with pytest.raises(UsageError, match="expected stdlib"):
        resolve_target(str(tmp_path / "absent"))


def test_package_mutants_carry_their_file_in_key_and_summary() -> None:
    mutant = Mutant("AddNot:1", "core/AddNot", 0, 5, "if n > 1:", "if not n > 1:", SOURCE, "_a.py")
    row = Row(mutant, "run by 1 case(s)", Judgement("AddNot:1", "survived", "why", 1, 0.1), None)
    other = Row(_mutant("b"), "x", Judgement("b", "killed", "how", 1, 0.1), None)
    text = render_summary("servers", "servers/", [row, other])
    assert "| `_a.py` | 1 | 0 | 1 | 0 | 0.0% |" in text and "_a.py:5" in text


def test_edits_of_postponed_annotations_are_not_mutants() -> None:
    pytest.importorskip(
        "cosmic_ray", reason="the mutation extra is not installed (tox -e mutation)"
    )
    source = "from __future__ import annotations\n\ndef f(x: int | None) -> int:\n"
    source += "    return x | 1\n"
    lines = {m.after for m in generate(source)}
    assert "return x + 1" in lines  # the body's operator is mutated
    assert not any("def f" in line for line in lines)  # the annotation's is not
    evaluated = source.replace("from __future__ import annotations\n", "")
    assert any("def f" in m.after for m in generate(evaluated))  # evaluated: behaviour


def test_a_continuation_line_is_judged_by_the_cases_that_ran_its_statement() -> None:
    source = "def bind(s):\n    if (\n        s.a\n        and s.b\n    ):\n        s.set()\n"
    starts = statement_starts(source)
    assert starts[3] == starts[4] == 2 and 6 not in starts  # the header, not the body
    # Coverage saw line 4 run only where ``s.a`` held; the mutant of line 4 changes the others.
    lines = LineCases({2: frozenset(CASES[:3]), 4: frozenset({CASES[0]})}, CASES, starts)
    why, ids = lines.cases_for(4)
    assert set(ids) == set(CASES[:3]) and why == "run by 3 case(s)"


def test_the_tracer_sees_lines_run_only_in_a_forked_childs_main_thread(tmp_path: Path) -> None:
    pytest.importorskip("coverage", reason="the mutation extra is not installed (tox -e mutation)")
    import subprocess
    import sys

    import coverage

    source = Path(resolve_target("stdlib").origin)
    copy = tmp_path / "socketserver_copy.py"
    copy.write_text(source.read_text())
    wanted = "signals.handle_request[tcp-sync-handler=raises-*"
    argv = [sys.executable, "-m", "harness._mutation.tracer", str(copy), str(tmp_path / "cov")]
    done = subprocess.run([*argv, "--select", wanted], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-500:]
    data = coverage.CoverageData(str(tmp_path / "cov"))
    data.read()
    contexts = data.contexts_by_lineno(str(copy))
    text = copy.read_text().splitlines()
    # Only the child's handle_request() (in its main thread, woken early by the signal)
    # runs the remaining-time test; the case's own thread never calls handle_request().
    line = next(n for n, t in enumerate(text, 1) if t.strip() == "if timeout < 0:")
    assert any(c.startswith("signals.handle_request") for c in contexts.get(line, ()))
    assert not list(tmp_path.glob("cov.*"))  # the per-process files were combined
