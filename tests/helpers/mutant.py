"""A deliberately broken implementation made by one textual edit of stdlib source."""

from __future__ import annotations

import socketserver
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Mutant:
    """One bug: replace ``old`` by ``new`` (exactly once) in socketserver.py."""

    name: str
    old: str
    new: str
    caught_by: str  # a --select glob of the case that must catch it
    verdict: str = "fail"  # the verdict that case must give ("fail|hang": either one)

    def write(self, directory: Path) -> Path:
        """Write the mutated module into ``directory`` and return its path."""
        source = Path(socketserver.__file__).read_text()
        if source.count(self.old) != 1:
            raise LookupError(f"mutant {self.name!r}: pattern found {source.count(self.old)} times")
        path = directory / f"mutant_{self.name}.py"
        path.write_text(source.replace(self.old, self.new))
        return path
