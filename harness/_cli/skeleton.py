"""``sockspec new NAME``: a commented skeleton for a new scenario module."""

from __future__ import annotations

import re
from pathlib import Path

from harness._model.errors import UsageError

TEMPLATE = '''"""{title}: clients connect, send a payload, read it back.

Invariant: every client receives exactly the bytes it sent.
"""

from harness import Send, RecvAll, ShutdownWrite, checks, scenario


@scenario(
    "{name}",
    title="{title}",
    transports=("tcp", "unix_stream"),  # any of: tcp tcp6 udp udp6 unix_stream unix_dgram
    kinds=("sync", "threading"),  # any of: sync threading forking
    params={{"clients": [5]}},  # each value list multiplies the cases
    profile="smoke",  # smoke / default / full / stress
    checks=("lifecycle", "resources"),  # applied after the body
)
def run(ctx, clients):
    """Every client receives exactly the bytes it sent."""
    ctx.server()  # an instrumented echo server of the case's transport and kind
    payloads = [ctx.payload(64) for _ in range(clients)]  # seeded: replays are exact
    scripts = [(Send(p), ShutdownWrite(), RecvAll()) for p in payloads]
    results = ctx.swarm(scripts)  # all clients start together
    checks.clients_ok(ctx, results)
    checks.echoed(ctx, results, payloads)
'''


def write_skeleton(name: str, directory: Path) -> Path:
    """Write ``<directory>/<last part of name>.py``; refuses to overwrite."""
    if not re.match(r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)+$", name):
        raise UsageError(
            f"scenario name {name!r} must be a dotted lower-case id like 'mine.echo.twice'"
        )
    if directory.exists() and not directory.is_dir():
        raise UsageError(f"--dir {str(directory)!r} is a file, not a directory")
    path = directory / f"{name.split('.')[-1]}.py"
    if path.exists():
        raise UsageError(f"{str(path)!r} already exists; choose another name or --dir")
    title = name.split(".")[-1].replace("_", " ").capitalize()
    try:
        directory.mkdir(parents=True, exist_ok=True)
        path.write_text(TEMPLATE.format(name=name, title=title))
    except OSError as exc:
        raise UsageError(
            f"cannot write {str(path)!r}: {exc.strerror or exc} (give a directory as --dir)"
        ) from None
    return path
