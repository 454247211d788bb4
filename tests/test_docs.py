"""docs/adding-a-milestone.md is a test: its Python blocks are the example milestone's whole file.

The blocks are put together into a module, which must build, follow the lineage rules, run through the
command line and the API at the smoke preset, and make its claim hold at the cpu preset.
"""

from __future__ import annotations

import re
import sys
import types
from pathlib import Path

import pytest

from dlhistory import catalogue, cli, comparison
from dlhistory.milestones import alexnet
from dlhistory.spec import KINDS

DOC = Path(__file__).resolve().parents[1] / "docs" / "adding-a-milestone.md"


@pytest.fixture(scope="module")
def example() -> types.ModuleType:
    """The milestone file the page builds, as a module."""
    source = "\n".join(re.findall(r"```python\n(.*?)```", DOC.read_text(), re.DOTALL))
    assert source.startswith("# src/dlhistory/milestones/backprop.py")
    name = "dlhistory.milestones.backprop"
    module = types.ModuleType(name)
    module.__file__ = str(DOC)
    sys.modules[name] = module  # dataclasses resolve their annotations through it
    exec(compile(source, str(DOC), "exec"), module.__dict__)
    yield module
    del sys.modules[name]


@pytest.fixture
def with_example(example, monkeypatch) -> None:
    """The catalogue with the example added, in chronological order (step 2 of the page)."""
    milestones = (example.MILESTONE, *catalogue.CATALOGUE)
    monkeypatch.setattr(catalogue, "CATALOGUE", milestones)
    monkeypatch.setattr(catalogue, "BY_KEY", catalogue._index(milestones))


def test_the_example_inherits_by_name_and_changes_only_the_model(example):
    m = example.MILESTONE
    assert example.LOSS is alexnet.LOSS
    for preset in m.presets:
        ours, theirs = m.recipe(preset), m.recipe(preset, "linear")
        assert ours.differs_from(theirs) == ("model",)
        assert all(getattr(ours, k) is getattr(theirs, k) for k in KINDS if k != "model")


def test_show_and_smoke_compare_through_the_command_line(with_example, run_env, tmp_path, capsys):
    assert cli.main(["show", "backprop", "--preset", "smoke"]) == 0
    assert "model     mlp" in capsys.readouterr().out
    code = cli.main(["compare", "backprop", "--preset", "smoke", "--seeds", "1", "--runs-dir", str(tmp_path),
                     "--no-progress", "--evals", "2"])
    out = capsys.readouterr().out
    assert code == 0 and "claim not judged: smoke only proves the code runs" in out


def test_the_claim_holds_at_the_cpu_preset(example, run_env, tmp_path):
    c = comparison.compare(example.MILESTONE, "cpu", runs_dir=str(tmp_path), log=lambda _: None,
                           progress=False)
    assert c.verdict.outcome == "holds", c.verdict.reason
    assert c.paths["md"].is_file()
