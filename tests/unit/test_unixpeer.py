"""A Unix stream client's peer is the server's accepted socket (``unixpeer``)."""

from __future__ import annotations

import socket
from pathlib import Path

from harness._runtime.unixpeer import peer_inode, request_inode


def test_a_unix_clients_peer_is_the_accepted_socket_once_accepted(tmp_path: Path) -> None:
    path = str(tmp_path / "s")
    with socket.socket(socket.AF_UNIX) as listener, socket.socket(socket.AF_UNIX) as client:
        listener.bind(path)
        listener.listen()
        listener.settimeout(5)
        client.settimeout(5)
        client.connect(path)
        assert peer_inode(client) is None  # in the backlog: no request to match yet
        accepted, address = listener.accept()
        with accepted:
            assert address == ""  # what get_request() tells of any unbound client
            assert peer_inode(client) == request_inode(accepted) is not None
        with socket.socket(socket.AF_UNIX) as other:
            other.settimeout(5)
            other.connect(path)
            second, _ = listener.accept()
            with second:
                assert peer_inode(other) == request_inode(second) != request_inode(accepted)


def test_other_sockets_have_no_unix_peer() -> None:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        assert request_inode(listener) is None
    closed = socket.socket(socket.AF_UNIX)
    closed.close()
    assert peer_inode(closed) is None
