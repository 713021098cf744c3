"""tox inline plugin: find the pyenv-installed interpreters without PATH changes by hand.

pyenv's shims only answer for the versions selected in ``pyenv global``, so
virtualenv's discovery cannot see ``python3.10`` etc.  Before tox discovers
interpreters, this plugin puts every ``$(pyenv root)/versions/*/bin`` on the
tox process's PATH (newest patch release first).  Machines without pyenv are
left untouched.  (The pyenv discovery plugins on PyPI do not work with
virtualenv 21, which current tox requires.)
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path


def _pyenv_root() -> Path | None:
    if os.environ.get("PYENV_ROOT"):
        return Path(os.environ["PYENV_ROOT"])
    exe = shutil.which("pyenv")
    if exe:
        try:
            out = subprocess.run([exe, "root"], capture_output=True, text=True, timeout=10)
            if out.returncode == 0 and out.stdout.strip():
                return Path(out.stdout.strip())
        except (OSError, subprocess.TimeoutExpired):
            pass
    default = Path.home() / ".pyenv"
    return default if default.is_dir() else None


def _version_key(path: Path) -> tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"\d+", path.parent.name)) or (0,)


def _add_pyenv_versions_to_path() -> None:
    root = _pyenv_root()
    if root is None:
        return
    bins = sorted((root / "versions").glob("*/bin"), key=_version_key, reverse=True)
    extra = [str(b) for b in bins if b.is_dir()]
    if extra:
        os.environ["PATH"] = os.pathsep.join([*extra, os.environ.get("PATH", "")])


_add_pyenv_versions_to_path()
