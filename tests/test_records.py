"""Run records: identity, the code version that goes into it, locks."""

from __future__ import annotations

import ast

from dlhistory.codeversion import _without_docstrings, code_version
from dlhistory.records import identity

SOURCE = '''
"""Module docstring."""
import math


class Config:
    """A config."""

    lr: float = 0.1
    """The learning rate."""


def step(x):
    """One step."""
    return math.sqrt(x)  # why: the paper's eq. 3
'''


def version(source: str) -> str:
    return ast.dump(_without_docstrings(ast.parse(source)))


def test_the_code_version_ignores_comments_and_docstrings():
    edited = SOURCE.replace("One step.", "One step, better said.").replace("eq. 3", "equation 3")
    edited = edited.replace('"""The learning rate."""', '"""The step size alpha."""')
    assert version(edited) == version(SOURCE)


def test_the_code_version_sees_every_change_of_behaviour():
    assert version(SOURCE.replace("lr: float = 0.1", "lr: float = 0.2")) != version(SOURCE)
    assert version(SOURCE.replace("math.sqrt(x)", "math.log(x)")) != version(SOURCE)


def test_the_code_version_of_a_milestone_covers_what_it_imports():
    from pathlib import Path

    import dlhistory
    from dlhistory.codeversion import sources

    root = Path(dlhistory.__file__).parent

    def files(key: str) -> set[str]:
        return {str(p.relative_to(root)) for p in sources(root, [root / "runner.py",
                                                                   root / "milestones" / f"{key}.py"])}

    transformer, resnet, dqn = files("transformer"), files("resnet"), files("dqn")
    assert {"runner.py", "milestones/seq2seq.py", "milestones/transformer.py", "data/translation.py",
            "algorithms/decoding.py", "milestones/__init__.py"} <= transformer
    assert {"milestones/adam.py", "milestones/alexnet.py", "data/images.py"} <= resnet
    # What a milestone does not import cannot change its runs: another dataset, the reporting parts.
    assert not {p for p in dqn if p.startswith(("data/images", "data/translation", "milestones/alexnet"))}
    assert not {p for p in transformer | resnet | dqn
                if p.split("/")[0] in ("cli.py", "report", "tools", "comparison.py", "records.py")}
    assert code_version("resnet") == code_version("resnet") and len(code_version("resnet")) == 16
    assert code_version("resnet") != code_version("transformer")


def test_a_new_module_that_a_milestone_does_not_import_keeps_its_version(tmp_path):
    import shutil
    from pathlib import Path

    import dlhistory
    from dlhistory.codeversion import _code_version

    root = tmp_path / "dlhistory"
    shutil.copytree(Path(dlhistory.__file__).parent, root, ignore=shutil.ignore_patterns("__pycache__"))
    before = _code_version(root, "alexnet")
    (root / "data" / "shakespeare.py").write_text("WORDS = 1\n")
    assert _code_version(root, "alexnet") == before
    (root / "data" / "images.py").write_text((root / "data" / "images.py").read_text() + "\nX = 1\n")
    assert _code_version(root, "alexnet") != before


def test_identity_ignores_key_order():
    assert identity({"a": 1, "b": {"c": 2}}) == identity({"b": {"c": 2}, "a": 1})
    assert identity({"a": 1}) != identity({"a": 2})


def test_holding_a_directory_removes_what_a_killed_writer_left(tmp_path):
    from dlhistory.records import hold

    (tmp_path / ".checkpoint.safetensors.4242.part").write_bytes(b"half a checkpoint")
    (tmp_path / "checkpoint.safetensors").write_bytes(b"the good one")
    with hold(tmp_path):
        pass
    assert sorted(p.name for p in tmp_path.iterdir()) == [".lock", "checkpoint.safetensors"]


def test_a_held_directory_is_refused_with_the_holders_pid(tmp_path):
    import os

    import pytest

    from dlhistory.errors import UsageError
    from dlhistory.records import held, hold

    with hold(tmp_path):
        assert held(tmp_path)
        with pytest.raises(UsageError, match=f"in use by process {os.getpid()}"), hold(tmp_path):
            pass
    assert not held(tmp_path)


def test_every_file_the_package_writes_goes_through_the_atomic_writer():
    """A whole-file write outside ``records.atomic_write`` can be cut short by a kill and then look valid
    (a cut tokenizer.json made a resumed run "succeed"). So every write goes to ``tmp``: the temporary
    file the atomic writer hands out, or a temporary folder renamed into place when complete (an
    exported model). metrics.jsonl's appends are the one exception (a line cut by a kill is dropped on
    resume)."""
    import ast
    from pathlib import Path

    import dlhistory

    def destination(node: ast.Call) -> ast.AST | None:
        """Where a call writes a file, if it is one of the ways to write one."""
        func, args = node.func, node.args
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        if name in ("write_text", "write_bytes"):
            return func.value
        if name == "open":
            mode = next((a.value for a in [*args[1:2], *[k.value for k in node.keywords if k.arg == "mode"]]
                         if isinstance(a, ast.Constant)), "r")
            if not any(c in str(mode) for c in "wx"):
                return None
            return func.value if isinstance(func, ast.Attribute) else args[0]
        if name == "savefig":
            return args[0]
        if name == "save_file":
            return args[1]
        return None

    found = []
    for path in Path(dlhistory.__file__).parent.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            target = destination(node) if isinstance(node, ast.Call) else None
            if target is not None and "tmp" not in ast.unparse(target):
                found.append(f"{path.relative_to(path.parents[1])}:{node.lineno}")
    assert found == []
