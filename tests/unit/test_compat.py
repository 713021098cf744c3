"""The stand-ins for newer standard-library features behave exactly like them."""

from __future__ import annotations

import random
import socket

import pytest

from harness._model import compat as _compat


@pytest.mark.parametrize("size", [0, 1, 7, 8, 1000])
def test_random_bytes_are_randbytes(size: int) -> None:
    assert _compat.random_bytes(random.Random(size), size) == random.Random(size).randbytes(size)


def test_socket_timeout_is_caught() -> None:
    a, b = socket.socketpair()
    with a, b:
        a.settimeout(0.01)
        with pytest.raises(_compat.SOCKET_TIMEOUT):
            a.recv(1)


def test_entry_points_of_a_group() -> None:
    found = _compat.entry_points("pytest11")
    assert "sockspec" in {ep.name for ep in found}
    assert _compat.entry_points("sockspec.no_such_group") == []
