"""What ``mutate`` mutates: one ``.py`` file, or every module of a package.

A target is copied into a work directory before anything runs, and each
mutant is judged on a copy of its own in which exactly one file differs, so
parallel judges never see each other's edits and the original is never
touched.  A single file is loaded by path (``--impl FILE``); a package is
copied under a private import name and loaded as a dotted module with its
parent on ``PYTHONPATH``, so its relative imports resolve inside the copy.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from harness._model.errors import UsageError

_ROOT = Path(__file__).resolve().parents[2]
#: Target names that mean the project's own reference package.
_REFERENCE = ("servers", "reference")


@dataclass(frozen=True)
class Target:
    """A mutation target: a label, where it lives, and the files that get mutants."""

    label: str  # used in report directory names: mutation-<label>
    origin: Path  # the .py file, or the package directory
    files: tuple[str, ...]  # names relative to ``origin`` (a package) or its own name

    @property
    def is_package(self) -> bool:
        """True when the target is a package directory."""
        return self.origin.is_dir()

    @property
    def import_name(self) -> str:
        """The private name a package copy is imported under."""
        return "sockspec_mutant_" + self.label.replace(".", "_").replace("-", "_")

    def source(self, name: str) -> str:
        """The original text of one of ``files``."""
        path = self.origin / name if self.is_package else self.origin
        return path.read_text(encoding="utf-8")

    def materialise(self, dest: Path, edit: tuple[str, str] | None = None) -> Placement:
        """Copy the target under ``dest``, with ``edit`` = (file, new text) applied."""
        dest.mkdir(parents=True, exist_ok=True)
        if not self.is_package:
            path = dest / f"{self.import_name}.py"
            path.write_text(edit[1] if edit else self.source(self.files[0]), encoding="utf-8")
            return Placement(spec=str(path), pythonpath=None, files={self.files[0]: path})
        package = dest / self.import_name
        shutil.copytree(
            self.origin, package, ignore=shutil.ignore_patterns("__pycache__"), dirs_exist_ok=True
        )
        if edit is not None:
            (package / edit[0]).write_text(edit[1], encoding="utf-8")
        files = {name: package / name for name in self.files}
        return Placement(spec=self.import_name, pythonpath=str(dest), files=files)


@dataclass(frozen=True)
class Placement:
    """A materialised copy: the ``--impl`` spec that loads it and where its files are."""

    spec: str
    pythonpath: str | None  # to prepend to PYTHONPATH (packages), or None
    files: dict[str, Path]

    def environ(self) -> dict[str, str]:
        """The environment a harness run of this copy needs."""
        parts = [self.pythonpath] if self.pythonpath else []
        parts.append(str(_ROOT))
        return {**os.environ, "PYTHONPATH": os.pathsep.join(parts)}


def resolve_target(target: str) -> Target:
    """The target a name means; ``UsageError`` when there is none.

    ``stdlib`` is this interpreter's socketserver.py, ``stdlib-3.X`` the file of
    the pyenv-installed CPython 3.X, ``servers``/``reference`` the project's
    reference package, otherwise a ``.py`` file or a package directory.
    """
    if target == "stdlib":
        spec = importlib.util.find_spec("socketserver")  # found, not imported: never run here
        if spec is None or spec.origin is None:
            raise UsageError("target 'stdlib': this interpreter has no socketserver.py")
        return _file_target(target, Path(spec.origin))
    if target.startswith("stdlib-3."):
        minor = target.removeprefix("stdlib-")
        root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
        found = sorted(root.glob(f"{minor}.*/lib/python{minor}/socketserver.py"))
        if not found:
            raise UsageError(f"target {target!r}: no CPython {minor} under {root}")
        return _file_target(target, found[-1])
    path = _ROOT / "servers" if target in _REFERENCE else Path(target)
    if path.is_dir() and (path / "__init__.py").is_file():
        files = tuple(sorted(p.name for p in path.glob("*.py")))
        return Target(path.resolve().name, path.resolve(), files)
    if path.suffix == ".py" and path.is_file():
        return _file_target(path.stem, path.resolve())
    raise UsageError(
        f"target {target!r}: expected stdlib, stdlib-3.X, servers, a .py file or a package"
    )


def _file_target(label: str, path: Path) -> Target:
    return Target(label, path, (path.name,))
