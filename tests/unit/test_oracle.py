"""Differential judging: observations (_model.outcome) and their diff (_control.differ)."""

from __future__ import annotations

from typing import Any

from harness._control.differ import CHECK, differences, findings, hook_outcomes
from harness._control.oracle import _differing
from harness._model.outcome import nested, observe, top_level
from harness._model.records import LifecycleEvent


def _ev(
    seq: int,
    name: str,
    phase: str,
    conn: int | None = None,
    *,
    thread: int = 1,
    pid: int = 100,
    server: int = 7,
    exc: str | None = None,
    **detail: Any,
) -> LifecycleEvent:
    return LifecycleEvent(
        seq, name, phase, conn, float(seq), pid, thread, f"t{thread}", False, server, exc,
        None, dict(detail),
    )  # fmt: skip


def _request(conn: int, start: int, thread: int, handle_raises: str | None = None) -> list[Any]:
    """A threading server's request: accepted in thread 1, handled in ``thread``."""
    handle_end = (
        _ev(start + 7, "handle", "raise", conn, thread=thread, exc=handle_raises)
        if handle_raises
        else _ev(start + 7, "handle", "return", conn, thread=thread)
    )
    return [
        _ev(start, "get_request", "call", None),
        _ev(start + 1, "get_request", "return", conn, client_address="127.0.0.1:5000"),
        _ev(start + 2, "verify_request", "call", conn),
        _ev(start + 3, "verify_request", "return", conn, result=True),
        _ev(start + 4, "finish_request", "call", conn, thread=thread),
        _ev(start + 5, "setup", "call", conn, thread=thread, instance=12345),
        _ev(start + 6, "setup", "return", conn, thread=thread),
        _ev(start + 6, "handle", "call", conn, thread=thread),
        handle_end,
        _ev(start + 8, "finish_request", "return", conn, thread=thread),
    ]


def _wire(client: int, received: bytes, ok: bool = True, error: str = "") -> dict[str, Any]:
    import zlib

    return {
        "client": client,
        "ops": ["Send", "RecvAll"],
        "sent": {"len": 4, "head": b"ping".hex(), "shape": [4, zlib.crc32(b"ping")]},
        "received": {"len": len(received), "head": received[:32].hex(),
                     "shape": [len(received), zlib.crc32(received)]},
        "ok": ok,
        "error": None if ok else error,
    }  # fmt: skip


def test_nested_calls_show_outcomes_and_blocked_calls() -> None:
    events = [
        _ev(1, "serve_forever", "call"),
        _ev(2, "handle_request", "call"),
        _ev(3, "handle_timeout", "call"),
        _ev(4, "handle_timeout", "return"),
        _ev(5, "handle_request", "return"),
        _ev(6, "get_request", "call"),
        _ev(7, "get_request", "raise", exc="OSError"),
    ]
    assert (
        nested(events)
        == "serve_forever(handle_request(handle_timeout()) get_request()!OSError)…blocked"
    )
    assert top_level("a(b() c()) d()!X e()") == ["a(b() c())", "d()!X", "e()"]
    assert hook_outcomes("server 1: a(b()!X c())…blocked d()[result=False]") == [
        "b raised X",
        "c returned",
        "a blocked",
        "d returned [result=False]",
    ]


def test_repeated_raising_call_is_folded_but_counted_calls_are_not() -> None:
    retry = [e for n in range(5) for e in (_ev(2 * n, "get_request", "call"),
             _ev(2 * n + 1, "get_request", "raise", exc="OSError"))]  # fmt: skip
    assert nested(retry) == "get_request()!OSError×+"
    three = [e for n in range(3) for e in (_ev(2 * n, "handle_request", "call"),
             _ev(2 * n + 1, "handle_request", "return"))]  # fmt: skip
    assert nested(three) == "handle_request()×3"


def test_run_specific_parts_do_not_change_the_observation() -> None:
    """Connection numbers, thread ids, pids, server ids, order and addresses are left out."""
    a = observe(
        _request(1, 10, thread=2) + _request(2, 30, thread=3, handle_raises="ValueError"),
        [_wire(0, b"pong"), _wire(1, b"", False, "ConnectionResetError: [Errno 104] reset")],
        {"fds": [], "threads": [], "children": []},
    )
    shuffled = _request(5, 10, thread=9, handle_raises="ValueError") + _request(8, 30, thread=4)
    moved = [_ev(e.seq, e.name, e.phase, e.conn, thread=e.thread_id, pid=555, server=99,
                 exc=e.exc_type, **e.detail) for e in shuffled]  # fmt: skip
    b = observe(
        moved,
        [_wire(1, b"", False, "ConnectionResetError: [Errno 104] other"), _wire(0, b"pong")],
        {},
    )
    assert a == b
    assert differences(a, b) == {}
    assert a["clients"] == {
        "Send RecvAll: sent 4 bytes, received 4 bytes, ok — b'ping' / b'pong'": 1,
        "Send RecvAll: sent 4 bytes, received nothing, ConnectionResetError — b'ping' / -": 1,
    }


def test_timeouts_compare_across_versions() -> None:
    old = observe([], [_wire(0, b"", False, "timeout: timed out")], {})
    new = observe([], [_wire(0, b"", False, "TimeoutError: timed out")], {})
    assert old == new


def test_a_difference_is_one_finding_per_section_with_a_side_by_side_diff() -> None:
    oracle = observe(_request(1, 10, thread=2), [_wire(0, b"pong")], {})
    events = _request(1, 10, thread=2)
    events[3] = _ev(13, "verify_request", "return", 1, result=False)
    target = observe(events[:4], [_wire(0, b"")], {"fds": ["socket:[123]"]})
    found = {f.evidence["section"]: f for f in findings("reference", oracle, target)}
    assert set(found) == {"clients", "connections", "resources"}
    assert all(f.check == CHECK for f in found.values())
    conns = found["connections"]
    # The gist names what differs, not the case's script: one bug, one problem.
    assert "verify_request returned [result=True]" in conns.expected
    assert "verify_request returned [result=False]" in conns.observed
    assert "finish_request" in conns.expected and "finish_request" not in conns.observed
    table = conns.evidence["side_by_side"].splitlines()
    assert table[0].startswith("oracle reference") and table[0].endswith("| target")
    assert "socket:[N]" in found["resources"].observed
    assert found["clients"].expected == "sent 4 bytes, received 4 bytes, ok"
    assert found["clients"].observed == "sent 4 bytes, received nothing, ok"
    assert "→" not in conns.expected + conns.observed  # not read as a hook order


def test_a_difference_must_hold_against_every_run() -> None:
    """A race seen on one run of either side is not a difference (see Oracle.judge)."""
    ok = observe([], [_wire(0, b"pong")], {})
    gone = observe([], [_wire(0, b"", False, "BrokenPipeError: x")], {})
    assert _differing([ok], [gone]) == {"clients"}
    assert _differing([ok, gone], [gone]) == set()
    assert _differing([ok], [gone, ok]) == set()


def test_server_calls_count_whatever_thread_made_them() -> None:
    """Three serve_forever() rounds in one thread or one in each of three threads: same."""
    one = [e for n in range(3) for e in (_ev(2 * n, "serve_forever", "call"),
           _ev(2 * n + 1, "serve_forever", "return"))]  # fmt: skip
    three = [_ev(e.seq, e.name, e.phase, thread=10 + e.seq // 2) for e in one]
    assert observe(one, [], {})["server"] == {"server 1: serve_forever()": 3}
    assert observe(one, [], {}) == observe(three, [], {})


def test_connections_compare_whichever_server_accepted_them() -> None:
    """With SO_REUSEPORT the kernel picks the server: not behaviour of the implementation."""
    first = observe(_request(1, 10, thread=2), [], {})
    moved = [_ev(e.seq, e.name, e.phase, e.conn, thread=e.thread_id, server=8, **e.detail)
             for e in _request(1, 10, thread=2)]  # fmt: skip
    assert observe([_ev(0, "server_bind", "call"), _ev(1, "server_bind", "return"), *moved], [],
                   {})["connections"] == first["connections"]  # fmt: skip


def test_other_bytes_of_the_same_size_are_a_difference_told_as_such() -> None:
    (finding,) = findings(
        "reference", observe([], [_wire(0, b"pong")], {}), observe([], [_wire(0, b"gnop")], {})
    )
    assert (finding.expected, finding.observed) == (
        "the oracle's bytes",
        "other bytes of the same sizes",
    )
    assert "b'pong'" in finding.evidence["side_by_side"]


def test_a_write_to_a_client_already_gone_is_a_race_settled_one_way() -> None:
    """finish() failing to write to a client that finished first: timing, not behaviour."""
    lane = [
        _ev(1, "finish_request", "call", 1),
        _ev(2, "handle", "call", 1),
        _ev(3, "handle", "raise", 1, exc="InjectedError"),
        _ev(4, "finish", "call", 1),
        _ev(5, "finish", "raise", 1, exc="FileNotFoundError"),
        _ev(6, "finish_request", "raise", 1, exc="FileNotFoundError"),
    ]
    clean = [*lane[:4], _ev(5, "finish", "return", 1), _ev(6, "finish_request", "raise", 1,
             exc="InjectedError")]  # fmt: skip
    client = {**_wire(0, b""), "end": 2.0}  # the client finished at t0 + 2
    raced = observe(lane, [client], {}, t0=0.0)
    assert raced == observe(clean, [client], {}, t0=0.0)
    assert list(raced["connections"]) == [
        "finish_request(handle()!InjectedError finish())!InjectedError"
    ]
    # Before any client finished, the same error is the server's own doing.
    early = observe(lane, [{**client, "end": 9.0}], {}, t0=0.0)
    assert list(early["connections"]) == [
        "finish_request(handle()!InjectedError finish()!FileNotFoundError)!FileNotFoundError"
    ]
