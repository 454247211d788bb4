"""Which code computed a run: a hash of the syntax trees of the runner and of every module a milestone
imports, so runs made by different code are never mixed up, while a corrected comment, a new table
format, a new milestone or a fixed tool keeps finished runs reusable."""

from __future__ import annotations

import ast
import hashlib
from functools import cache
from pathlib import Path

REPORTING = ("__init__.py", "__main__.py", "catalogue.py", "cli.py", "comparison.py", "config.py",
             "errors.py", "grid.py", "pool.py", "protocols.py", "records.py", "report", "spec.py", "tools",
             "codeversion.py")
"""The package's parts that only parse, start, compare and report runs, or use finished ones (the
milestones' tools): they cannot change a run's result (the configs they produce are part of its
identity themselves)."""


def code_version(milestone: str) -> str:
    """A hash of the code that computes a run of ``milestone``: the runner, the milestone's file and
    every module of the package they import, transitively (the reporting parts aside); their syntax
    trees without comments and docstrings. Runs made by different code are never mixed up, while a
    corrected comment, a new table format, another milestone's change or a new dataset module that
    this milestone does not use keeps them reusable.

    Every version is read from disk once, at the first call, close to when the process imported the
    code it runs: a file edited while a long review runs cannot lend its hash to the old code."""
    return code_versions().get(milestone) or _code_version(_package(), milestone)


@cache
def code_versions() -> dict[str, str]:
    """The code version of every milestone in the package, read once."""
    root = _package()
    return {path.stem: _code_version(root, path.stem) for path in (root / "milestones").glob("*.py")}


def _package() -> Path:
    return Path(__file__).resolve().parent


def _code_version(root: Path, milestone: str) -> str:
    digest = hashlib.sha256()
    for path in sources(root, [root / "runner.py", root / "milestones" / f"{milestone}.py"]):
        tree = _without_docstrings(ast.parse(path.read_text()))
        digest.update(str(path.relative_to(root)).encode() + b"\0" + ast.dump(tree).encode() + b"\0")
    return digest.hexdigest()[:16]


def sources(root: Path, start: list[Path]) -> list[Path]:
    """The package's files that ``start`` imports, transitively, with ``start`` itself: every import
    of the package (``from .data import images``, ``from ..runner import load_recipe``, ``from . import
    alexnet``, inside functions too), without the reporting parts."""
    todo, seen = [p for p in start if p.is_file()], set()
    while todo:
        path = todo.pop()
        if path in seen or path.relative_to(root).parts[0] in REPORTING:
            continue
        seen.add(path)
        todo += _imported(root, path)
        if path.parent != root:  # importing a module runs its package's __init__.py first
            todo.append(path.parent / "__init__.py")
    return sorted(seen)


def _imported(root: Path, path: Path) -> list[Path]:
    """The package's files one file imports (a package stands for its ``__init__.py``)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = path.parent
            for _ in range(node.level - 1):
                base = base.parent
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == root.name:
            base, node.module = root, ".".join(node.module.split(".")[1:]) or None
        elif isinstance(node, ast.Import):
            found += [_module_file(root, root, a.name.split(".")[1:]) for a in node.names
                      if a.name.split(".")[0] == root.name]
            continue
        else:
            continue
        parts = node.module.split(".") if node.module else []
        found.append(_module_file(root, base, parts))
        found += [_module_file(root, base, [*parts, a.name]) for a in node.names]  # submodules
    return [p for p in found if p is not None]


def _module_file(root: Path, base: Path, parts: list[str]) -> Path | None:
    target = base.joinpath(*parts)
    for candidate in (target.with_suffix(".py") if parts else None, target / "__init__.py"):
        if candidate is not None and candidate.is_file() and root in candidate.parents:
            return candidate
    return None


def _without_docstrings(tree: ast.AST) -> ast.AST:
    """Drop every statement that is only a string (docstrings, attribute docstrings)."""
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list):
            kept = [s for s in body if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant)
                                            and isinstance(s.value.value, str))]
            node.body = kept or [ast.Pass()]
    return tree
