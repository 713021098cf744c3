"""Loading implementations of the socketserver API and probing what they offer.

Accepted specs: ``stdlib``, ``reference``, a dotted module name, a path to a
``.py`` file (loaded under a private name, never as ``socketserver``), or a
name registered in the ``sockspec.implementations`` entry-point group.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.util
import pkgutil
import sys
from pathlib import Path
from types import ModuleType

from harness._model.compat import entry_points
from harness._model.errors import LoadError, one_line
from harness._model.implementation import (
    REQUIRED_NAMES,
    SERVER_BASES,
    Implementation,
    missing_required,
    probe_features,
)

ENTRY_POINT_GROUP = "sockspec.implementations"


def load_implementation(spec: str) -> Implementation:
    """Load the implementation named by ``spec`` and probe it; raise ``LoadError``."""
    module = _import_spec(spec)
    missing = missing_required(module)
    if missing:
        public = [n for n in dir(module) if not n.startswith("_")]
        wanted = [*REQUIRED_NAMES, *SERVER_BASES]
        hint = next(
            (h for h in (_did_you_mean(n, public) for n in wanted if n not in public) if h), ""
        )
        raise LoadError(
            f"implementation {spec!r} lacks {', '.join(missing)}; "
            f"expected the socketserver API{hint}"
        )
    return Implementation(spec=spec, module=module, features=probe_features(module))


def _import_spec(spec: str) -> ModuleType:
    if spec == "stdlib":
        import socketserver  # on demand: a +gevent worker patches before it is imported

        return socketserver
    if spec == "reference":
        return _import_module("servers", spec)
    if spec.endswith(".py") or "/" in spec:
        return _import_path(Path(spec), spec)
    entry = _entry_point(spec)
    if entry is not None:
        return entry
    return _import_module(spec, spec)


def _import_module(name: str, spec: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name and name.startswith(exc.name):
            choices = ["stdlib", "reference", *_known_modules(), *_entry_point_names()]
            raise LoadError(
                f"unknown implementation {spec!r}; expected 'stdlib', 'reference', a dotted "
                f"module or a .py path{_did_you_mean(spec, choices)}"
            ) from None
        raise LoadError(f"implementation {spec!r} failed to import: {one_line(exc)}") from None
    except Exception as exc:
        raise LoadError(f"implementation {spec!r} failed to import: {one_line(exc)}") from None


def _import_path(path: Path, spec: str) -> ModuleType:
    if not path.is_file():
        raise LoadError(f"implementation file {spec!r} does not exist")
    # A private, unique name: the file must never shadow ``socketserver``.
    private = f"_sockspec_impl_{abs(hash(str(path.resolve()))):x}"
    if private in sys.modules:
        return sys.modules[private]
    loader_spec = importlib.util.spec_from_file_location(private, path)
    if loader_spec is None or loader_spec.loader is None:
        raise LoadError(f"implementation file {spec!r} cannot be loaded as a module")
    module = importlib.util.module_from_spec(loader_spec)
    sys.modules[private] = module  # dataclasses and pickling look modules up by name
    try:
        loader_spec.loader.exec_module(module)
    except BaseException as exc:
        del sys.modules[private]
        raise LoadError(f"implementation file {spec!r} failed to import: {one_line(exc)}") from None
    return module


def _entry_point(name: str) -> ModuleType | None:
    for ep in entry_points(ENTRY_POINT_GROUP):
        if ep.name == name:
            try:
                loaded = ep.load()
            except Exception as exc:
                raise LoadError(
                    f"entry point {name!r} of {ENTRY_POINT_GROUP} failed to load: {one_line(exc)}"
                ) from None
            if isinstance(loaded, ModuleType):
                return loaded
            raise LoadError(f"entry point {name!r} of {ENTRY_POINT_GROUP} is not a module")
    return None


def _entry_point_names() -> list[str]:
    return [ep.name for ep in entry_points(ENTRY_POINT_GROUP)]


def _known_modules() -> list[str]:
    return [m.name for m in pkgutil.iter_modules()]


def _did_you_mean(word: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f" — did you mean {close[0]!r}?" if close else ""
