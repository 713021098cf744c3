"""The client-side wire log and the handler timeline: compact evidence for reports.

Both are small on purpose (previews, not payloads) so that every case can
carry them in results.json without bloating it.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Sequence
from typing import Any

from harness._model.records import ClientResult, LifecycleEvent
from harness._runtime.tempdirs import PREFIX

PREVIEW = 32
MAX_CLIENTS = 500
MAX_INTERVALS = 2000


#: What differs between two runs of one server inside a reply: numbers (ports,
#: pids, ids) and the case's temporary directory (in Unix socket paths).
_RUN_SPECIFIC = re.compile(rb"\d+|" + re.escape(PREFIX.encode()) + rb"[A-Za-z0-9_]+")


_TEXT = re.compile(rb"[\x20-\x7e\t\r\n]*")


def _preview(data: bytes) -> dict[str, Any]:
    # ``shape`` (length and CRC with run-specific parts masked) lets differential
    # judging (--oracle) compare whole replies, not only their first bytes.
    # Only text is masked: random payload bytes compare exactly.
    shape = _RUN_SPECIFIC.sub(b"#", data) if _TEXT.fullmatch(data) else data
    return {
        "len": len(data),
        "head": data[:PREVIEW].hex(),
        "shape": [len(shape), zlib.crc32(shape) & 0xFFFFFFFF],
    }


def wire_entries(
    offset: int, scripts: Sequence[Sequence[Any]], results: Sequence[ClientResult], t0: float
) -> list[dict[str, Any]]:
    """One entry per client: what it sent, what it got, how it ended, when."""
    if offset >= MAX_CLIENTS:
        return []
    out = []
    for script, result in zip(scripts, results):
        sent = b"".join(getattr(op, "data", b"") for op in script)
        out.append(
            {
                "client": offset + result.index,
                "local": _jsonable(result.local_address),
                "ops": [type(op).__name__ for op in script][:20],
                "sent": _preview(sent),
                "received": _preview(result.received),
                "ok": result.ok,
                "error": None if result.ok else f"{result.error_type}: {result.error}",
                "start": round(result.started - t0, 6),
                "end": round(result.finished - t0, 6),
            }
        )
    return out[: MAX_CLIENTS - offset]


def timeline(events: Sequence[LifecycleEvent], t0: float) -> list[dict[str, Any]]:
    """Handler intervals (``handle`` call to return/raise) per connection, thread and process."""
    starts: dict[tuple[int | None, int, int], LifecycleEvent] = {}
    out: list[dict[str, Any]] = []
    for event in events:
        if event.name != "handle":
            continue
        key = (event.conn, event.pid, event.thread_id)
        if event.phase == "call":
            starts[key] = event
        elif key in starts:
            start = starts.pop(key)
            out.append(
                {
                    "conn": event.conn,
                    "pid": event.pid,
                    "thread": event.thread_name,
                    "start": round(start.t - t0, 6),
                    "end": round(event.t - t0, 6),
                    "raised": event.exc_type,
                }
            )
    return out[:MAX_INTERVALS]


def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value
