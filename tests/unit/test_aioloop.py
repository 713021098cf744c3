"""Private event loops: from plain code, from async code, beside other green threads' loops."""

from __future__ import annotations

import asyncio
import importlib.util
import os
import subprocess
import sys
from typing import Any

import pytest
from helpers import ROOT
from helpers.host import lacks

from harness._control.agents import PATCHES
from harness._runtime.aioloop import _SharingSelector, run_private

# Two threads each run a private loop that yields five times; under monkey-patching they
# are green threads of one OS thread, so each loop must let the other start and run.
TWO_LOOPS = """
import asyncio, threading
from harness._runtime.aioloop import run_private
order, results = [], {}

async def ticks(name):
    for _ in range(5):
        order.append(name)
        await asyncio.sleep(0.01)
    return name

def run(name):
    results[name] = run_private(lambda: ticks(name))

threads = [threading.Thread(target=run, args=(name,)) for name in "ab"]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join(10)
print(sorted(results.values()), "".join(order))
"""


async def _answer() -> int:
    await asyncio.sleep(0)
    return 42


def test_run_private_from_plain_and_from_async_code() -> None:
    async def inside_a_loop() -> int:
        return run_private(_answer)

    assert run_private(_answer) == 42
    assert asyncio.run(inside_a_loop()) == 42


def test_the_selector_lifts_the_running_loop_mark_while_it_waits() -> None:
    seen: list[Any] = []
    selector = _SharingSelector()
    loop = asyncio.new_event_loop()
    inner_select = selector._inner.select

    def spy(timeout: float | None = None) -> Any:
        seen.append(asyncio._get_running_loop())
        return inner_select(timeout)

    selector._inner.select = spy  # type: ignore[method-assign]
    asyncio._set_running_loop(loop)
    try:
        assert selector.select(0) == []
        assert asyncio._get_running_loop() is loop
    finally:
        asyncio._set_running_loop(None)
        selector.close()
        loop.close()
    assert seen == [None]


@pytest.mark.parametrize("patch", sorted(PATCHES))
def test_green_threads_run_their_private_loops_side_by_side(patch: str) -> None:
    if importlib.util.find_spec(patch) is None:
        pytest.skip(lacks(patch, f"{patch} is not installed (tox -e {patch} installs it)"))
    proc = subprocess.run(
        [sys.executable, "-c", f"{PATCHES[patch]}\n{TWO_LOOPS}"],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    results, order = proc.stdout.strip().split("] ")
    assert results == "['a', 'b'"
    assert sorted(order) == list("aaaaabbbbb") and order not in ("aaaaabbbbb", "bbbbbaaaaa")
