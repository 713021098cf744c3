"""The module's public surface is read, not exercised: ``__all__`` against the classes it defines.

Invariant: ``__all__`` names exactly the public classes the module defines — every
name in it is defined, and every public class defined in the module (its
``__module__`` is the module) is in it, whatever the platform's ``fork`` and
``AF_UNIX`` offer.  ``from socketserver import *`` then gives an application
every server class it may use, and nothing it may not.
"""

from __future__ import annotations

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
