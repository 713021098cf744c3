"""Descriptor numbers: the lowest free one, also while closes are still in flight."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys

import pytest
from helpers import ROOT
from helpers.host import lacks

from harness._runtime.limits import lowest_free_descriptor

# gevent's os.close only schedules the close for the next turn of its loop (once a hub
# exists): the pipe's read end is still open when the probe starts.
DEFERRED_CLOSE = """
from gevent import monkey; monkey.patch_all()
import os, gevent
from harness._runtime.limits import lowest_free_descriptor
gevent.get_hub()
read, write = os.pipe()
os.close(read)
print(read, lowest_free_descriptor())
"""


def test_lowest_free_descriptor_is_the_number_the_next_open_gets() -> None:
    expected = lowest_free_descriptor()
    fd = os.open(os.devnull, os.O_RDONLY)
    try:
        assert fd == expected
    finally:
        os.close(fd)


def test_lowest_free_descriptor_waits_for_a_close_still_in_flight() -> None:
    if importlib.util.find_spec("gevent") is None:
        pytest.skip(lacks("gevent", "gevent is not installed (tox -e gevent installs it)"))
    proc = subprocess.run(
        [sys.executable, "-c", DEFERRED_CLOSE],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    closed, lowest = proc.stdout.split()
    assert lowest == closed
