"""Finding scenarios: the ``scenarios`` package, user directories and entry points.

Discovery imports modules and collects the functions marked by ``@scenario``;
there is no list to edit.  User directories are loaded by path under private
module names.  A module that fails to import, or two scenarios with the same
id, end the run with one line that names the file and the problem.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import pkgutil
import re
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from types import ModuleType

from harness._model.compat import entry_points
from harness._model.errors import ScenarioDefinitionError, ScenarioImportError, one_line
from harness._model.scenario import Case, ScenarioSpec, spec_of
from harness._model.settings import profile_rank

ENTRY_POINT_GROUP = "sockspec.scenarios"
BUILTIN_PACKAGE = "scenarios"


def discover(dirs: Sequence[Path] = (), builtin: bool = True) -> list[ScenarioSpec]:
    """Every scenario from the built-in package, ``dirs`` and entry points, by id."""
    modules: list[ModuleType] = []
    if builtin:
        modules.extend(_package_modules(BUILTIN_PACKAGE))
    for directory in dirs:
        modules.extend(_directory_modules(Path(directory)))
    modules.extend(_entry_point_modules())
    specs: dict[str, ScenarioSpec] = {}
    for module in modules:
        for spec in _specs_in(module):
            other = specs.get(spec.id)
            if other is not None and other.func is not spec.func:
                raise ScenarioDefinitionError(
                    f"scenario id {spec.id!r} is defined twice: in {other.module} and {spec.module}"
                )
            specs[spec.id] = spec
    return sorted(specs.values(), key=lambda s: s.id)


def _specs_in(module: ModuleType) -> Iterable[ScenarioSpec]:
    for value in vars(module).values():
        spec = spec_of(value)
        if spec is not None and spec.module == module.__name__:
            yield spec


def _package_modules(package: str) -> list[ModuleType]:
    try:
        pkg = importlib.import_module(package)
    except Exception as exc:
        raise ScenarioImportError(
            f"scenario package {package!r} failed to import: {one_line(exc)}"
        ) from None
    out = []
    for info in pkgutil.walk_packages(pkg.__path__, prefix=f"{package}."):
        out.append(_import(info.name))
    return out


def _import(name: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except (ScenarioDefinitionError, ScenarioImportError):
        raise
    except BaseException as exc:
        raise ScenarioImportError(
            f"scenario module {name!r} failed to import: {one_line(exc)}"
        ) from None


def _directory_modules(directory: Path) -> list[ModuleType]:
    if not directory.is_dir():
        raise ScenarioImportError(f"scenario directory {str(directory)!r} does not exist")
    out = []
    for path in sorted(directory.glob("*.py")):
        if path.name.startswith("_"):
            continue
        # The directory's full path in the name: two directories with the same
        # basename must not shadow each other's same-named files.
        where = hashlib.sha256(str(directory.resolve()).encode()).hexdigest()[:12]
        name = f"_sockspec_user.{path.parent.name}_{where}.{path.stem}"
        if name in sys.modules:
            out.append(sys.modules[name])
            continue
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise ScenarioImportError(f"scenario file {str(path)!r} cannot be loaded")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except ScenarioDefinitionError:
            del sys.modules[name]
            raise
        except BaseException as exc:
            del sys.modules[name]
            raise ScenarioImportError(
                f"scenario file {str(path)!r} failed to import: {one_line(exc)}"
            ) from None
        out.append(module)
    return out


def _entry_point_modules() -> list[ModuleType]:
    out = []
    for ep in entry_points(ENTRY_POINT_GROUP):
        try:
            loaded = ep.load()
        except BaseException as exc:
            raise ScenarioImportError(
                f"scenario entry point {ep.name!r} failed to load: {one_line(exc)}"
            ) from None
        if isinstance(loaded, ModuleType):
            out.append(loaded)
    return out


def select_cases(
    specs: Iterable[ScenarioSpec], globs: Sequence[str] = (), profile: str = "default"
) -> list[Case]:
    """The cases in ``profile`` that match any of ``globs`` (all when none given).

    A glob matches a case id or a scenario id with ``*`` and ``?`` as the only
    wildcards (brackets in case ids are literal), and a plain dotted prefix
    such as ``lifecycle`` selects every scenario below it.
    """
    rank = profile_rank(profile)
    patterns = [_compile(g) for g in globs]
    out = []
    for spec in specs:
        if profile_rank(spec.profile) > rank:
            continue
        for case in spec.cases():
            if profile_rank(case.profile) > rank:
                continue
            if not patterns or any(p.match(case.id) or p.match(spec.id) for p in patterns):
                out.append(case)
    return out


def glob_regex(glob: str) -> str:
    """Regex text for a glob whose only wildcards are ``*`` and ``?`` (brackets literal)."""
    return "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in glob)


def _compile(glob: str) -> re.Pattern[str]:
    body = glob_regex(glob)
    return re.compile(rf"(?:{body})(?:\..*|\[.*)?$")
