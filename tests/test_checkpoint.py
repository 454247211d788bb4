"""Checkpoints without pickle: round trips of nested state, atomic writes, damaged files, RNG state.

Nothing here trains or needs a dataset: these are the unit tests of ``dlhistory.checkpoint``. The runner's
use of it (resume after an interruption or a kill -9, the NaN guard) is tested in ``test_runner.py``.
"""

from __future__ import annotations

import ast
import copy
import json
import math
from pathlib import Path

import pytest
import safetensors.torch
import torch

from dlhistory import checkpoint
from dlhistory.errors import UsageError

SRC = Path(checkpoint.__file__).resolve().parent


def round_trip(state, tmp_path: Path | None = None):
    """``state`` through flatten -> JSON skeleton -> unflatten, or through a file if ``tmp_path`` is given."""
    if tmp_path is not None:
        checkpoint.save(tmp_path / "state.safetensors", state)
        return checkpoint.load(tmp_path / "state.safetensors")
    tensors: dict[str, torch.Tensor] = {}
    skeleton = json.loads(json.dumps(checkpoint.flatten(state, tensors)))  # what the header holds
    # Copies, as a file would give: flatten keeps CPU tensors as they are, and a restored optimizer
    # sharing buffers with the original would make the two step each other's momentum.
    return checkpoint.unflatten(skeleton, {k: v.clone() for k, v in tensors.items()})


def assert_same(restored, original) -> None:
    """Equal values and types, with tuples allowed to come back as lists (JSON has no tuples)."""
    if isinstance(original, torch.Tensor):
        assert isinstance(restored, torch.Tensor)
        assert restored.dtype == original.dtype and restored.shape == original.shape
        assert torch.equal(restored, original.detach().cpu())
    elif isinstance(original, dict):
        assert isinstance(restored, dict)
        assert list(restored) == list(original)  # same keys, same types (int stays int), same order
        for k in original:
            assert_same(restored[k], original[k])
    elif isinstance(original, (list, tuple)):
        assert isinstance(restored, list)
        assert len(restored) == len(original)
        for r, o in zip(restored, original, strict=True):
            assert_same(r, o)
    elif isinstance(original, float) and math.isnan(original):
        assert isinstance(restored, float) and math.isnan(restored)
    else:
        assert type(restored) is type(original), (restored, original)
        assert restored == original


# ------------------------------------------------------------------------------------------------
# Optimizer state: int keys, tensors, floats, bools, None, tuples (Adam's betas)


def small_net(seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.BatchNorm1d(8), torch.nn.ReLU(),
                               torch.nn.Linear(8, 3))


def train_steps(model: torch.nn.Module, optimizer: torch.optim.Optimizer, steps: int, seed: int) -> None:
    generator = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        x, y = torch.randn(16, 4, generator=generator), torch.randint(0, 3, (16,), generator=generator)
        loss = torch.nn.functional.cross_entropy(model(x), y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


OPTIMIZERS = {
    "sgd-momentum": lambda params: torch.optim.SGD(params, lr=0.1, momentum=0.9, nesterov=True,
                                                   weight_decay=1e-4),
    "adam": lambda params: torch.optim.Adam(params, lr=1e-2, betas=(0.8, 0.99), weight_decay=1e-4),
    "adam-amsgrad": lambda params: torch.optim.Adam(params, lr=1e-2, amsgrad=True),
}


@pytest.mark.parametrize("through_file", [False, True], ids=["in-memory", "file"])
@pytest.mark.parametrize("make", OPTIMIZERS.values(), ids=OPTIMIZERS.keys())
def test_optimizer_state_round_trip_and_load_state_dict(make, through_file, tmp_path):
    model = small_net(0)
    optimizer = make([{"params": list(model.parameters())[:2]}, {"params": list(model.parameters())[2:],
                                                                   "weight_decay": 0.0}])
    train_steps(model, optimizer, 3, seed=1)
    state = optimizer.state_dict()
    assert all(isinstance(k, int) for k in state["state"])  # keyed by parameter index

    restored = round_trip(state, tmp_path if through_file else None)
    assert_same(restored, state)

    # The restored state continues exactly like the original optimizer.
    twin = copy.deepcopy(model)
    twin_optimizer = make([{"params": list(twin.parameters())[:2]}, {"params": list(twin.parameters())[2:],
                                                                      "weight_decay": 0.0}])
    twin_optimizer.load_state_dict(restored)
    train_steps(model, optimizer, 2, seed=2)
    train_steps(twin, twin_optimizer, 2, seed=2)
    for p, q in zip(model.parameters(), twin.parameters(), strict=True):
        assert torch.equal(p, q)


def test_nested_json_values_round_trip(tmp_path):
    state = {
        "step": 7, "lr": 0.125, "inf": math.inf, "nan": math.nan, "flag": True, "off": False, "none": None,
        "name": "sgd", "list": [1, 2.5, "x", None, True], "tuple": (0.9, 0.999), "empty": {}, "no": [],
        3: {"momentum_buffer": torch.arange(6.0).reshape(2, 3)},  # int keys stay ints
        "nested": [{"a": torch.ones(2, dtype=torch.int64)}, ({"b": torch.tensor(True)},)],
        "dtypes": {"bf16": torch.randn(3).bfloat16(), "f16": torch.randn(3).half(),
                   "i8": torch.arange(3, dtype=torch.int8), "scalar": torch.tensor(2.0),
                   "empty": torch.zeros(0, 4)},
    }
    for restored in (round_trip(state), round_trip(state, tmp_path)):
        assert_same(restored, state)
        assert isinstance(restored["tuple"], list)  # tuples become lists
        assert 3 in restored and "3" not in restored


def test_flatten_keeps_json_only_in_the_skeleton():
    tensors: dict[str, torch.Tensor] = {}
    skeleton = checkpoint.flatten({"w": torch.ones(2), "k": [torch.zeros(1)], "step": 1}, tensors)
    json.dumps(skeleton)  # the skeleton is plain JSON
    assert len(tensors) == 2 and all(isinstance(t, torch.Tensor) for t in tensors.values())


def test_flatten_stores_cpu_contiguous_copies_of_non_contiguous_tensors(tmp_path):
    t = torch.arange(12.0).reshape(3, 4).t()  # a non-contiguous view
    restored = round_trip({"t": t}, tmp_path)
    assert torch.equal(restored["t"], t)


def test_dotted_keys_do_not_collide_with_nested_keys():
    state = {"a.b": torch.zeros(1), "a": {"b": torch.ones(1)}}
    assert_same(round_trip(state), state)


def test_tensors_that_share_memory_can_be_saved(tmp_path):
    embedding = torch.nn.Embedding(10, 4)
    head = torch.nn.Linear(4, 10, bias=False)
    head.weight = embedding.weight  # weight tying
    state = {"embedding.weight": embedding.weight, "head.weight": head.weight}
    restored = round_trip(state, tmp_path)
    assert torch.equal(restored["head.weight"], embedding.weight.detach())


# ------------------------------------------------------------------------------------------------
# Atomic writes


def part_files(folder: Path) -> list[Path]:
    return [p for p in folder.iterdir() if p.name.endswith(".part")]


def test_save_replaces_the_previous_checkpoint(tmp_path):
    path = tmp_path / "checkpoint.safetensors"
    checkpoint.save(path, {"step": 1, "w": torch.zeros(3)})
    checkpoint.save(path, {"step": 2, "w": torch.ones(3)})
    state = checkpoint.load(path)
    assert state["step"] == 2 and torch.equal(state["w"], torch.ones(3))
    assert part_files(tmp_path) == []


def test_a_failed_save_leaves_the_previous_checkpoint_untouched(tmp_path, monkeypatch):
    path = tmp_path / "checkpoint.safetensors"
    checkpoint.save(path, {"step": 1, "w": torch.arange(1000.0)})
    before = path.read_bytes()
    real_save_file = checkpoint.save_file

    def fails_midway(tensors, filename, metadata=None):
        real_save_file(tensors, filename, metadata=metadata)
        with open(filename, "r+b") as f:  # half a file on disk, as if the disk filled up
            f.truncate(Path(filename).stat().st_size // 2)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(checkpoint, "save_file", fails_midway)
    with pytest.raises(UsageError, match=r"No space left on device.*the previous one is kept"):
        checkpoint.save(path, {"step": 2, "w": torch.zeros(1000)})

    assert path.read_bytes() == before
    assert checkpoint.load(path)["step"] == 1
    assert part_files(tmp_path) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.safetensors"]


def test_a_failed_first_save_leaves_nothing(tmp_path, monkeypatch):
    def fails(tensors, filename, metadata=None):
        Path(filename).write_bytes(b"partial")
        raise KeyboardInterrupt  # an interruption, not only an error, must clean up

    monkeypatch.setattr(checkpoint, "save_file", fails)
    with pytest.raises(KeyboardInterrupt):
        checkpoint.save(tmp_path / "checkpoint.safetensors", {"step": 0})
    assert list(tmp_path.iterdir()) == []


def test_save_weights_is_a_plain_safetensors_state_dict(tmp_path):
    model = small_net(3)
    checkpoint.save_weights(tmp_path / "model.safetensors", model)
    loaded = safetensors.torch.load_file(tmp_path / "model.safetensors")
    assert loaded.keys() == model.state_dict().keys()
    fresh = small_net(4)
    fresh.load_state_dict(loaded)
    for p, q in zip(model.state_dict().values(), fresh.state_dict().values(), strict=True):
        assert torch.equal(p, q)
    assert part_files(tmp_path) == []


# ------------------------------------------------------------------------------------------------
# Damaged or missing files: a one-line UsageError naming the path


def damaged_files(tmp_path: Path) -> dict[str, bytes]:
    good = tmp_path / "good.safetensors"
    checkpoint.save(good, {"step": 5, "w": torch.randn(64, 64), "opt": {0: {"m": torch.randn(64)}}})
    raw = good.read_bytes()
    return {
        "empty": b"",
        "garbage": b"this is not a checkpoint\n" * 10,
        "8 bytes": raw[:8],
        "header cut": raw[:40],
        "tensors cut": raw[: len(raw) // 2],
        "last byte missing": raw[:-1],
        "huge header length": (2**62).to_bytes(8, "little") + raw[8:],
    }


@pytest.mark.parametrize("damage", ["empty", "garbage", "8 bytes", "header cut", "tensors cut",
                                    "last byte missing", "huge header length"])
def test_loading_a_damaged_checkpoint_is_a_one_line_usage_error(tmp_path, damage):
    path = tmp_path / "runs" / "checkpoint.safetensors"
    path.parent.mkdir()
    path.write_bytes(damaged_files(tmp_path)[damage])
    with pytest.raises(UsageError) as info:
        checkpoint.load(path)
    message = str(info.value)
    assert "\n" not in message
    assert str(path) in message


def test_loading_a_weights_file_without_the_skeleton_is_a_usage_error(tmp_path):
    path = tmp_path / "model.safetensors"
    checkpoint.save_weights(path, small_net(0))  # valid safetensors, but no dlhistory metadata
    with pytest.raises(UsageError) as info:
        checkpoint.load(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_loading_a_missing_checkpoint_is_a_usage_error(tmp_path):
    path = tmp_path / "nowhere" / "checkpoint.safetensors"
    with pytest.raises(UsageError) as info:
        checkpoint.load(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


# ------------------------------------------------------------------------------------------------
# Random-number generators


def test_rng_state_round_trip_reproduces_torch_rand(tmp_path):
    torch.manual_seed(123)
    torch.rand(7)  # somewhere in the stream, not at a seed
    state = checkpoint.rng_state()
    expected = (torch.rand(5), torch.randn(3), torch.randint(0, 100, (4,)))

    checkpoint.save(tmp_path / "rng.safetensors", {"rng": state})
    torch.manual_seed(999)  # move the generator elsewhere
    checkpoint.set_rng_state(checkpoint.load(tmp_path / "rng.safetensors")["rng"])
    again = (torch.rand(5), torch.randn(3), torch.randint(0, 100, (4,)))
    for a, b in zip(expected, again, strict=True):
        assert torch.equal(a, b)

    checkpoint.set_rng_state(round_trip({"rng": state})["rng"])  # and without a file
    assert torch.equal(torch.rand(5), expected[0])


def test_rng_state_reproduces_dropout():
    dropout = torch.nn.Dropout(0.5)
    x = torch.ones(1000)
    state = checkpoint.rng_state()
    first = dropout(x)
    checkpoint.set_rng_state(round_trip(state))
    assert torch.equal(dropout(x), first)


# ------------------------------------------------------------------------------------------------
# No pickle anywhere in the package


def python_files() -> list[Path]:
    files = sorted(SRC.rglob("*.py"))
    assert len(files) > 10, f"found only {files} under {SRC}"
    return files


PICKLING_MODULES = {"pickle", "cPickle", "_pickle", "dill", "cloudpickle", "joblib", "shelve", "marshal"}


def pickle_uses(tree: ast.AST) -> list[str]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [f"import {a.name}" for a in node.names if a.name.split(".")[0] in PICKLING_MODULES]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] in PICKLING_MODULES:
            found.append(f"from {node.module} import ...")
        elif isinstance(node, ast.Call):
            name = ast.unparse(node.func)
            keywords = {k.arg: k.value for k in node.keywords}
            weights_only = keywords.get("weights_only")
            safe = isinstance(weights_only, ast.Constant) and weights_only.value is True
            if name.endswith(("torch.load", "torch.serialization.load")) and not safe:
                found.append(f"{ast.unparse(node)} without weights_only=True")
            if name.endswith(("torch.save", "pickle.dump", "pickle.dumps", "pickle.load", "pickle.loads")):
                found.append(ast.unparse(node))
            allow = keywords.get("allow_pickle")
            if isinstance(allow, ast.Constant) and allow.value is True:
                found.append(f"{ast.unparse(node)} (allow_pickle=True)")
    return found


def test_no_pickle_in_the_package():
    offenders = {}
    for path in python_files():
        uses = pickle_uses(ast.parse(path.read_text(), filename=str(path)))
        if uses:
            offenders[str(path.relative_to(SRC))] = uses
    assert offenders == {}


def test_the_pickle_scan_finds_what_it_looks_for():
    code = ("import pickle\nfrom joblib import dump\nimport torch\nimport numpy as np\n"
            "torch.load('x')\ntorch.load('x', weights_only=False)\ntorch.load('x', weights_only=True)\n"
            "torch.save({}, 'x')\nnp.load('x', allow_pickle=True)\n")
    found = pickle_uses(ast.parse(code))
    assert found == ["import pickle", "from joblib import ...", "torch.load('x') without weights_only=True",
                     "torch.load('x', weights_only=False) without weights_only=True", "torch.save({}, 'x')",
                     "np.load('x', allow_pickle=True) (allow_pickle=True)"]
