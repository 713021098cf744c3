"""Mutants of one source file, made with cosmic-ray's operators through its API.

A mutant is one operator applied at one occurrence: its text is the whole
mutated file.  Edits that do not compile, and edits of annotations that are
never evaluated, are not mutants of behaviour and are left out.  Each gets a
stable ``key`` that does not depend on line numbers
(the operator, the original line's text and the mutated line's text, plus a
counter for repeats), so an equivalence proven for 3.13's file also matches the
same edit in 3.12's, and survives unrelated edits above it.
"""

from __future__ import annotations

import ast
import difflib
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

#: Operators needing arguments we do not give (cosmic-ray's variable replacers).
_SKIPPED = ("core/VariableReplacer", "core/VariableInserter")


@dataclass(frozen=True)
class Mutant:
    """One edit of a source file."""

    key: str  # stable id: operator + a hash of the changed line, before and after
    operator: str
    occurrence: int  # cosmic-ray's occurrence index for this operator
    line: int  # 1-based line of the original file that changed
    before: str  # that line, stripped
    after: str  # what it became (stripped; "" when removed)
    source: str  # the whole mutated file
    file: str = ""  # the file's name inside a package target ("" for a one-file target)

    @property
    def where(self) -> str:
        """``line N``, or ``file.py:N`` inside a package."""
        return f"{self.file}:{self.line}" if self.file else f"line {self.line}"

    def diff(self) -> str:
        """A one-hunk unified diff of the change."""
        return f"-{self.line}: {self.before}\n+{self.line}: {self.after}"


def operator_names() -> list[str]:
    """The cosmic-ray operators used, by name."""
    from cosmic_ray.plugins import operator_names as names  # optional: the mutation extra

    return [name for name in names() if name not in _SKIPPED]


def generate(source: str, file: str = "") -> Iterator[Mutant]:
    """Every mutant of ``source`` that the operators give, in a stable order.

    ``file`` names the file inside a package target; it joins the key, so the
    same edit in two modules of one package gets two keys.
    """
    from cosmic_ray.ast import ast_nodes, get_ast  # optional: the mutation extra
    from cosmic_ray.mutating import mutate_code
    from cosmic_ray.plugins import get_operator

    nodes = list(ast_nodes(get_ast(source)))
    seen: dict[str, int] = {}
    postponed = "from __future__ import annotations" in source
    bare = _without_annotations(source) if postponed else ""
    for name in operator_names():
        operator: Any = get_operator(name)()
        count = sum(1 for node in nodes for _ in operator.mutation_positions(node))
        for occurrence in range(count):
            mutated = mutate_code(source, operator, occurrence)
            if mutated is None or mutated == source or not _compiles(mutated):
                continue  # no edit, or not Python (``*`` in a signature read as a product)
            if postponed and _without_annotations(mutated) == bare:
                continue  # an annotation never evaluated (PEP 563): not behaviour
            line, before, after = _changed_line(source, mutated)
            base = f"{file}|{name}|{before}|{after}" if file else f"{name}|{before}|{after}"
            seen[base] = seen.get(base, 0) + 1
            digest = hashlib.sha1(f"{base}|{seen[base]}".encode()).hexdigest()[:10]
            yield Mutant(
                key=f"{name.split('/')[-1]}:{digest}",
                operator=name,
                occurrence=occurrence,
                line=line,
                before=before,
                after=after,
                source=mutated,
                file=file,
            )


def _without_annotations(source: str) -> str:
    """The module's AST with every annotation removed, dumped for comparison.

    Under ``from __future__ import annotations`` no annotation is evaluated, so
    an edit that changes only annotations (``float | None`` to ``float - None``)
    cannot change behaviour: such mutants are not made at all.
    """
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            node.returns = None
            arguments = node.args
            for arg in [*arguments.posonlyargs, *arguments.args, *arguments.kwonlyargs]:
                arg.annotation = None
            for star in (arguments.vararg, arguments.kwarg):
                if star is not None:
                    star.annotation = None
        elif isinstance(node, ast.AnnAssign):
            node.annotation = ast.Constant(None)
    return ast.dump(tree)


def _compiles(source: str) -> bool:
    try:
        compile(source, "<mutant>", "exec")
    except (SyntaxError, ValueError):
        return False
    return True


def _changed_line(source: str, mutated: str) -> tuple[int, str, str]:
    """The first changed line: its number in ``source``, its text before and after."""
    old, new = source.splitlines(), mutated.splitlines()
    matcher = difflib.SequenceMatcher(a=old, b=new, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag != "equal":
            before = old[i1].strip() if i1 < i2 else ""
            after = new[j1].strip() if j1 < j2 else ""
            return i1 + 1, before, after
    return 0, "", ""
