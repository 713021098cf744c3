"""A forked child tells where it is in the implementation's code, when asked."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from harness._runtime import childstacks
from harness._runtime.childstacks import arm, children_signature
from harness._runtime.deadline import call_with_deadline


@pytest.fixture
def impl(tmp_path: Path) -> Iterator[dict[str, Callable[..., None]]]:
    """An "implementation" file whose functions wait on an event; armed while in use."""
    source = tmp_path / "impl.py"
    source.write_text(
        "def handle(event):\n    event.wait(30)\n\ndef calls_out(hook, event):\n    hook(event)\n"
    )
    namespace: dict[str, Callable[..., None]] = {}
    exec(compile(source.read_text(), str(source), "exec"), namespace)  # type: ignore[arg-type]
    saved = dict(childstacks._armed)
    arm(str(tmp_path), [str(source)])
    try:
        yield namespace
    finally:
        childstacks._armed.update(saved)


def _in_child(run: Callable[[], None]) -> int:
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            run()
        finally:
            os._exit(0)
    return pid


def _reap(pid: int) -> None:
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)


def test_a_child_stuck_in_the_implementation_gives_its_chain(
    impl: dict[str, Callable[..., None]],
) -> None:
    pid = _in_child(lambda: impl["handle"](threading.Event()))
    try:
        assert call_with_deadline(lambda: _answered(), 10.0, "the child's answer") == "handle"
    finally:
        _reap(pid)
    assert children_signature() == ""  # no live child left


def test_a_child_that_answers_late_is_asked_again(
    impl: dict[str, Callable[..., None]],
) -> None:
    """A child too slow to answer (here: the signal blocked) is left alone, but its
    late answer ends that at once: it was only slow, not unable to answer."""
    ready_r, ready_w = os.pipe()
    go_r, go_w = os.pipe()

    def slow_child() -> None:
        signal.pthread_sigmask(signal.SIG_BLOCK, [childstacks.ANSWER_SIGNAL])
        os.write(ready_w, b"r")
        os.read(go_r, 1)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, [childstacks.ANSWER_SIGNAL])
        impl["handle"](threading.Event())

    pid = _in_child(slow_child)
    try:
        assert call_with_deadline(lambda: os.read(ready_r, 1), 10.0, "the child's start") == b"r"
        assert children_signature() is None  # no answer within ANSWER_WAIT
        assert pid in childstacks._mute  # left alone for a while
        os.write(go_w, b"g")
        assert call_with_deadline(lambda: _answered(), 10.0, "the child's answer") == "handle"
    finally:
        _reap(pid)
        for end in (ready_r, ready_w, go_r, go_w):
            os.close(end)


def test_a_child_running_a_hook_cannot_be_judged(impl: dict[str, Callable[..., None]]) -> None:
    def hook(event: threading.Event) -> None:
        # Into the harness's code, as a scenario's handler runs behind a hook.
        call_with_deadline(lambda: event.wait(30), 30.0, "a hook")

    pid = _in_child(lambda: impl["calls_out"](hook, threading.Event()))
    try:
        assert call_with_deadline(lambda: _settled(), 10.0, "the child's answer") is None
    finally:
        _reap(pid)


def test_nothing_is_known_of_children_when_not_armed() -> None:
    saved = dict(childstacks._armed)
    childstacks._armed["folder"] = None
    pid = _in_child(lambda: threading.Event().wait(30))
    try:
        assert children_signature() is None
    finally:
        _reap(pid)
        childstacks._armed.update(saved)


def _answered() -> str | None:
    """The children's signature once they answered with a chain (polled: a fresh
    child answers once its interpreter has reached the implementation)."""
    while True:
        found = children_signature()
        if found:
            return found
        threading.Event().wait(0.01)


def _settled() -> str | None:
    """The children's signature once it is neither "nothing yet" nor the instant
    before the child called the hook."""
    while True:
        found = children_signature()
        if found not in ("", "calls_out"):
            return found
        threading.Event().wait(0.01)
