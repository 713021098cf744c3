"""Handlers under fuzz, the bytes fuzz clients send, and what they must get back.

A fuzzed server runs one handler behaviour, drawn per example: echo (chunk by
chunk or line by line), slow echo, echo that raises in ``setup``, ``handle``
or ``finish``, and a partial reader that reads ``n`` bytes and answers with
them.  ``HandlerModel`` knows, for the bytes a client sent, the complete reply
and whether the server may end the connection with RST (closing with unread
input), so replies are judged without timing guesses: a reply is always a
prefix of the complete one, and *is* the complete one when the client saw a
clean end-of-file and the handler raised nothing.

Payloads are drawn as ``Blob(size, seed)`` and made here with a seeded
generator: Hypothesis then shrinks two integers instead of megabytes, and the
bytes are the same on every replay.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from harness._model.compat import random_bytes
from harness._runtime.handlers import Behaviour, HandlerSpec, InjectedError, echo, echo_lines

#: Handler behaviours the fuzzers draw from (``lines`` is for streams only).
HANDLERS: tuple[str, ...] = (
    "echo",
    "lines",
    "slow",
    "raise_setup",
    "raise_handle",
    "raise_finish",
    "partial",
)

#: Largest datagram each datagram transport carries (payload bytes).  UDP over
#: IPv4 and IPv6 are bounded by the 16-bit length fields; a Unix datagram by
#: the socket send buffer (212,992 bytes by default on Linux), kept well below.
DATAGRAM_LIMITS: dict[str, int] = {"udp": 65_507, "udp6": 65_527, "unix_dgram": 131_072}


@dataclass(frozen=True)
class Blob:
    """``size`` bytes made from ``seed``; lines of at most ``line`` bytes when ``line`` > 0."""

    size: int
    seed: int
    line: int = 0

    def data(self) -> bytes:
        """The bytes (random binary, or newline-terminated lines plus a partial tail)."""
        rng = random.Random(self.seed)
        raw = random_bytes(rng, self.size)
        if self.line <= 0 or not raw:
            return raw
        out = bytearray(raw.replace(b"\n", b" "))
        span, at = self.line + 1, rng.randrange(self.line + 1)
        while at < len(out):
            out[at] = 0x0A
            at += 1 + int(rng.random() * span)
        return bytes(out)

    def __str__(self) -> str:
        shape = f", lines <= {self.line}" if self.line > 0 else ""
        return f"{self.size:,} bytes (seed {self.seed}{shape})"


def chunked(data: bytes, cuts: Sequence[int]) -> list[bytes]:
    """``data`` split at the given offsets (taken modulo its length, sorted, deduplicated)."""
    if not data:
        return [b""]
    points = sorted({c % len(data) for c in cuts} - {0})
    bounds = [0, *points, len(data)]
    return [data[a:b] for a, b in zip(bounds, bounds[1:])]


def _wait(delay: float) -> Behaviour:
    def behaviour(handler: Any) -> None:
        threading.Event().wait(delay)  # a slow handler on purpose, not synchronisation

    return behaviour


def _raise(where: str) -> Behaviour:
    def behaviour(handler: Any) -> None:
        raise InjectedError(f"fuzz: injected in {where}")

    return behaviour


def _partial(n: int) -> Behaviour:
    def behaviour(handler: Any) -> None:
        handler.wfile.write(handler.rfile.read(n))

    return behaviour


@dataclass(frozen=True)
class HandlerModel:
    """One handler behaviour under fuzz and the replies it owes its clients."""

    name: str
    n: int = 0  # partial: how many bytes it reads
    delay: float = 0.0  # slow: seconds before echoing
    timeout: float = 0.1  # StreamRequestHandler.timeout: how long an idle client is kept

    def spec(self, stream: bool) -> HandlerSpec:
        """The handler to serve (stream handlers get ``timeout``, so idle clients end)."""
        attrs: dict[str, Any] = {"timeout": self.timeout} if stream else {}
        handle: Behaviour = echo
        if self.name == "lines":
            handle = echo_lines
        elif self.name == "slow":
            before = _wait(self.delay)

            def handle(handler: Any) -> None:
                before(handler)
                echo(handler)

        elif self.name == "raise_handle":
            handle = _raise("handle")
        elif self.name == "partial":
            handle = _partial(self.n)
        return HandlerSpec(
            handle=handle,
            after_setup=_raise("setup") if self.name == "raise_setup" else None,
            before_finish=_raise("finish") if self.name == "raise_finish" else None,
            attrs=attrs,
        )

    @property
    def raises(self) -> bool:
        """True when every request makes the handler raise."""
        return self.name.startswith("raise_")

    def reply(self, sent: bytes, stream: bool, max_packet: int = 0) -> bytes | None:
        """The complete reply to ``sent`` (None: a datagram gets no reply worth judging)."""
        if not stream:
            if self.raises:
                return None
            sent = sent[:max_packet]
        if self.name in ("raise_setup", "raise_handle"):
            return b""
        if self.name == "partial":
            return sent[: self.n]
        return sent

    def may_reset(self, sent: bytes) -> bool:
        """True when the server may close with unread input (so the client may see RST)."""
        if self.name in ("raise_setup", "raise_handle"):
            return bool(sent)
        return self.name == "partial" and len(sent) > self.n

    def __str__(self) -> str:
        extra = {"partial": f"(n={self.n})", "slow": f"(delay={self.delay:g})"}.get(self.name, "")
        return f"{self.name}{extra}"


def judge_reply(
    model: HandlerModel, sent: bytes, received: bytes, clean: bool, raised: bool
) -> str | None:
    """What is wrong with a stream reply, or None.

    ``clean``: the client saw end-of-file without an error; ``raised``: the
    request's ``setup`` or ``handle`` raised (e.g. the handler timed out).
    """
    want = model.reply(sent, stream=True) or b""
    if not want.startswith(received):
        return "the reply is not a prefix of the expected reply"
    if clean and not raised and received != want:
        return f"the reply stopped after {len(received):,} of {len(want):,} bytes"
    return None


def peek(data: bytes | None, size: int = 16) -> str:
    """``12 bytes b'abc…'``: a short, readable view of a payload."""
    if data is None:
        return "no reply"
    return f"{len(data):,} bytes {data[:size]!r}" + ("…" if len(data) > size else "")
