"""Which accepted socket a Unix stream client is connected to.

A TCP client is told apart by its local address, which ``get_request()`` returns
as the client's.  An unbound Unix client's address is ``''``, the same for every
client, so the harness could not tell which request was a given client's (and so
whether the server had already ended it, ``clientwait``).  Its socket's *peer*
identifies it instead: Linux's socket diagnostics (``sock_diag(7)``,
``UNIX_DIAG_PEER``) give the inode of the socket at the other end, which is the
server's accepted socket once ``accept()`` returned (0 before: an embryo has no
inode).  The instrumented ``get_request()`` records that socket's inode
(``request_inode``), and the two are matched.

Where netlink is missing (not Linux, or the diagnostics are not allowed) the peer
is unknown and nothing is matched: waits are then judged as before.

Python 3.7 compatible (workers may run old interpreters).
"""

from __future__ import annotations

import os
import socket
import struct
from typing import Any

_NETLINK_SOCK_DIAG = 4
_SOCK_DIAG_BY_FAMILY = 20
_NLM_F_REQUEST = 1
_UDIAG_SHOW_PEER = 4
_UNIX_DIAG_PEER = 2
_NO_COOKIE = 0xFFFFFFFF
_ALL_STATES = 0xFFFFFFFF
_HEADER = struct.Struct("=IHHII")  # struct nlmsghdr
_REQUEST = struct.Struct("=BBHIII2I")  # struct unix_diag_req
_MESSAGE = struct.Struct("=BBBBI2I")  # struct unix_diag_msg
_ATTR = struct.Struct("=HH")  # struct rtattr
#: Seconds to wait for the kernel's answer (it comes at once, or not at all).
_ANSWER_WAIT = 0.5


def request_inode(request: Any) -> int | None:
    """The inode of an accepted Unix socket (None for any other socket)."""
    try:
        if getattr(request, "family", None) != socket.AF_UNIX:
            return None
        return os.fstat(request.fileno()).st_ino
    except (OSError, ValueError, TypeError, AttributeError):
        return None


def peer_inode(sock: socket.socket) -> int | None:
    """The inode of the socket ``sock`` is connected to: the server's accepted socket
    once the server accepted it; None when that is not known (not accepted yet, ``sock``
    closed, no socket diagnostics here)."""
    family = getattr(socket, "AF_NETLINK", None)
    try:
        own = os.fstat(sock.fileno()).st_ino
        if family is None:
            return None
        with socket.socket(family, socket.SOCK_RAW, _NETLINK_SOCK_DIAG) as diag:
            diag.settimeout(_ANSWER_WAIT)
            body = _REQUEST.pack(
                socket.AF_UNIX, 0, 0, _ALL_STATES, own, _UDIAG_SHOW_PEER, _NO_COOKIE, _NO_COOKIE
            )
            diag.sendto(
                _HEADER.pack(_HEADER.size + len(body), _SOCK_DIAG_BY_FAMILY, _NLM_F_REQUEST, 1, 0)
                + body,
                (0, 0),
            )
            answer = diag.recv(65536)
    except (OSError, ValueError):
        return None
    return _peer_of(answer)


def _peer_of(answer: bytes) -> int | None:
    """The ``UNIX_DIAG_PEER`` attribute of a diagnostics answer (None: an error, or no peer)."""
    if len(answer) < _HEADER.size + _MESSAGE.size:
        return None
    length, kind = _HEADER.unpack_from(answer)[:2]
    if kind != _SOCK_DIAG_BY_FAMILY:
        return None  # NLMSG_ERROR: no such socket, or not allowed
    offset = _HEADER.size + _MESSAGE.size
    while offset + _ATTR.size <= min(length, len(answer)):
        size, attr = _ATTR.unpack_from(answer, offset)
        if size < _ATTR.size:
            return None
        if attr == _UNIX_DIAG_PEER and size >= _ATTR.size + 4:
            peer = struct.unpack_from("=I", answer, offset + _ATTR.size)[0]
            return int(peer) or None  # 0: the server has not accepted it yet
        offset += (size + 3) & ~3
    return None
