"""Detection power: every deliberately broken implementation is caught by its named case.

This is the project's own measure of the harness's power (see ``tests/mutants/``).
Each mutant runs through the real CLI, supervised, so hangs and crashes are
judged exactly as in a user's run.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from helpers.cli import CliRun
from helpers.host import feature_of_reason, lacks
from mutants import MUTANTS, Mutant
from mutants.fuzz import MUTANTS as FUZZ_ONLY

#: The fuzz-only mutants are judged in tests/system/test_fuzz.py, by one run of the whole
#: catalogue that also shows that no other case catches them and that the find is shrunk
#: and replays: a run of their fuzz case here would repeat part of that run.
JUDGED_HERE = tuple(m for m in MUTANTS if m not in FUZZ_ONLY)


def test_mutant_names_are_unique() -> None:
    names = [m.name for m in MUTANTS]
    assert len(names) == len(set(names))


@pytest.mark.parametrize("mutant", JUDGED_HERE, ids=lambda m: m.name)
def test_mutant_is_caught_by_its_case(
    mutant: Mutant, cli: Callable[..., CliRun], tmp_path: Path
) -> None:
    path = mutant.write(tmp_path)
    run = cli("run", "--impl", str(path), "--select", mutant.caught_by, "--profile", "full")
    results = run.results()["results"]
    if run.status == 0 and results and all(r["verdict"] == "unsupported" for r in results):
        # The catching case cannot run on this host: the mutant is untested, not caught.
        reason = results[0].get("reason", "")
        pytest.skip(lacks(feature_of_reason(reason), f"{mutant.caught_by}: {reason}"))
    assert run.status == 1, run.stderr
    verdicts = {r["id"]: r["verdict"] for r in results}
    wanted = mutant.verdict.split("|")
    caught = [case for case, verdict in verdicts.items() if verdict in wanted]
    reasons = {r["id"]: r.get("reason", "")[:300] for r in results}
    assert caught, (
        f"{mutant.name}: no case of {mutant.caught_by!r} gave {mutant.verdict}: {verdicts} "
        f"{reasons}"
    )
