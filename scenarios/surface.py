"""The module's public surface is read, not exercised: ``__all__`` against the classes it defines.

Invariant: ``__all__`` names exactly the public classes the module defines — every
name in it is defined, and every public class defined in the module (its
``__module__`` is the module) is in it, whatever the platform's ``fork`` and
``AF_UNIX`` offer.  ``from socketserver import *`` then gives an application
every server class it may use, and nothing it may not.  The platform decides which
classes exist (the documentation's availability notes): with ``os.fork`` the Forking
classes, with ``AF_UNIX`` the Unix ones.  ``ThreadingMixIn`` and ``ForkingMixIn`` are
plain mix-ins, not ``BaseServer`` subclasses: a server class that lists the server
class before the mix-in gets the server's methods, as the documentation's "the
mix-in class comes first" implies.
"""

from __future__ import annotations

import os
import socket

from harness import Context, scenario


def _defined_public_classes(module: object) -> set[str]:
    """Public classes defined in ``module`` itself (imported ones, BufferedIOBase, excluded)."""
    name = getattr(module, "__name__", "")
    return {
        attr
        for attr, value in vars(module).items()
        if not attr.startswith("_") and isinstance(value, type) and value.__module__ == name
    }


@scenario(
    "surface.all_names",
    title="__all__ names exactly the public classes the module defines",
    transports=("tcp",),
    kinds=("sync",),
    checks=(),
    profile="smoke",
)
def all_names(ctx: Context) -> None:
    """Every name in __all__ is a class the module defines, and every public class it
    defines is in __all__ (so the Forking and Unix classes appear in both or neither)."""
    module = ctx.impl.module
    listed = getattr(module, "__all__", None)
    if not ctx.expect(
        isinstance(listed, (list, tuple)) and all(isinstance(n, str) for n in listed),
        "surface.all_defined",
        "the module has no __all__ list of names",
        expected="__all__: a list of the public class names",
        observed=repr(type(listed).__name__ if listed is not None else None),
    ):
        return
    names = set(listed)  # type: ignore[arg-type]
    defined = _defined_public_classes(module)
    undefined = sorted(n for n in names if not isinstance(getattr(module, n, None), type))
    ctx.expect(
        not undefined,
        "surface.all_names_defined",
        "__all__ names classes the module does not define",
        expected="every name in __all__ defined as a class",
        observed=f"undefined: {', '.join(undefined)}",
    )
    unlisted = sorted(defined - names)
    ctx.expect(
        not unlisted,
        "surface.all_complete",
        "public classes the module defines are missing from __all__",
        expected="every public class defined in the module listed in __all__",
        observed=f"not listed: {', '.join(unlisted)}",
    )
    ctx.expect(
        len(listed) == len(names),  # type: ignore[arg-type]
        "surface.all_unique",
        "__all__ names a class twice",
        expected="each name once",
        observed=f"{len(listed)} entries, {len(names)} distinct",  # type: ignore[arg-type]
    )


#: The classes the documentation makes available wherever the platform has the feature, by
#: the family they belong to: a stream-only module (no UDPServer) need not offer the
#: datagram ones.  The Forking Unix servers are 3.12+, so an implementation may lack them.
PLATFORM_CLASSES = {
    "os.fork": {
        "": ("ForkingMixIn",),
        "TCPServer": ("ForkingTCPServer",),
        "UDPServer": ("ForkingUDPServer",),
    },
    "socket.AF_UNIX": {
        "TCPServer": ("UnixStreamServer", "ThreadingUnixStreamServer"),
        "UDPServer": ("UnixDatagramServer", "ThreadingUnixDatagramServer"),
    },
}


@scenario(
    "surface.platform_classes",
    title="The platform's fork and AF_UNIX bring the Forking and Unix classes",
    transports=("tcp",),
    kinds=("sync",),
    checks=(),
    profile="smoke",
)
def platform_classes(ctx: Context) -> None:
    """Where the platform has os.fork, the module has ForkingMixIn and the Forking
    servers of the families it offers (ForkingTCPServer with TCPServer, ForkingUDPServer
    with UDPServer); where it has AF_UNIX, the Unix and ThreadingUnix servers of those
    families -- each a class listed in __all__."""
    module = ctx.impl.module
    listed = set(getattr(module, "__all__", None) or ())
    has = {"os.fork": hasattr(os, "fork"), "socket.AF_UNIX": hasattr(socket, "AF_UNIX")}
    for feature, families in PLATFORM_CLASSES.items():
        if not has[feature]:
            continue
        names = [
            name
            for family, members in families.items()
            if not family or isinstance(getattr(module, family, None), type)
            for name in members
        ]
        missing = [n for n in names if not isinstance(getattr(module, n, None), type)]
        unlisted = [n for n in names if n not in listed and n not in missing]
        ctx.expect(
            not missing and not unlisted,
            "surface.platform_classes",
            f"the platform has {feature} but the module lacks classes that come with it",
            expected=f"{', '.join(names)} defined and in __all__",
            observed="; ".join(
                part
                for part in (
                    f"missing: {', '.join(missing)}" if missing else "",
                    f"not in __all__: {', '.join(unlisted)}" if unlisted else "",
                )
                if part
            ),
        )


@scenario(
    "surface.plain_mixins",
    title="ThreadingMixIn and ForkingMixIn are plain mix-ins, not BaseServer subclasses",
    transports=("tcp",),
    kinds=("sync",),
    checks=(),
    profile="smoke",
)
def plain_mixins(ctx: Context) -> None:
    """Neither mix-in has BaseServer in its MRO, so the composed servers' MRO is the
    mix-in, then the server class and its bases (ThreadingTCPServer: ThreadingMixIn,
    TCPServer, BaseServer), and a class listing the mix-in after the server class gets the
    server's own process_request()."""
    module = ctx.impl.module
    base = getattr(module, "BaseServer", None)
    if not isinstance(base, type):
        return  # surface.all_names reports a missing BaseServer
    for name in ("ThreadingMixIn", "ForkingMixIn"):
        mixin = getattr(module, name, None)
        if not isinstance(mixin, type):
            continue  # ForkingMixIn: surface.platform_classes judges its absence
        server_bases = [c.__name__ for c in mixin.__mro__ if issubclass(c, base)]
        ctx.expect(
            not server_bases,
            "surface.plain_mixin",
            f"{name} is a BaseServer subclass: listed after the server class, it "
            "overrides BaseServer's methods",
            expected=f"{name}.__mro__ without BaseServer",
            observed=f"{name}.__mro__ includes {', '.join(server_bases)}",
        )
