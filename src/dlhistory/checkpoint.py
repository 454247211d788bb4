"""Checkpoints without pickle: one safetensors file holding weights, optimizer tensors and RNG state.

Everything that is not a tensor (step, learning-rate schedule, optimizer hyper-parameters) travels as
JSON in the safetensors header's metadata. A single file lets the write be atomic: it is written to a
temporary name, flushed to disk and renamed over the old checkpoint, so a kill -9 at any moment leaves
either the old or the new checkpoint, never a partial one.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from .errors import UsageError
from .records import atomic_write

_TENSOR = "__tensor__"


def flatten(obj: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """Replace every tensor in a nested dict/list with a reference, collecting it in ``tensors``.

    Tensors are named by a counter (dotted paths could collide) and copied when they share memory
    with one already collected (tied weights), which safetensors refuses to store twice.
    """
    if isinstance(obj, torch.Tensor):
        name = f"t{len(tensors)}"
        tensors[name] = _distinct(obj.detach().to("cpu").contiguous(), tensors)
        return {_TENSOR: name}
    if isinstance(obj, dict):
        # JSON keys are strings; keep (key, value) pairs so int keys (optimizer state) survive.
        return {"__dict__": [[k, flatten(v, tensors)] for k, v in obj.items()]}
    if isinstance(obj, (list, tuple)):
        return [flatten(v, tensors) for v in obj]
    return obj


def _distinct(tensor: torch.Tensor, tensors: dict[str, torch.Tensor]) -> torch.Tensor:
    """safetensors refuses tensors that share memory (tied weights): copy one whose memory is taken."""
    ptr = tensor.untyped_storage().data_ptr()
    if any(t.untyped_storage().data_ptr() == ptr for t in tensors.values()):
        return tensor.clone()
    return tensor


def unflatten(obj: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """Inverse of :func:`flatten`."""
    if isinstance(obj, dict) and _TENSOR in obj:
        return tensors[obj[_TENSOR]]
    if isinstance(obj, dict) and "__dict__" in obj:
        return {k: unflatten(v, tensors) for k, v in obj["__dict__"]}
    if isinstance(obj, list):
        return [unflatten(v, tensors) for v in obj]
    return obj


def save(path: Path, state: dict[str, Any]) -> None:
    """Atomically write ``state`` (nested dicts of tensors and JSON values) to ``path``."""
    tensors: dict[str, torch.Tensor] = {}
    skeleton = flatten(state, tensors)
    _atomic_save_file(tensors, path, metadata={"dlhistory": json.dumps(skeleton)})


def _atomic_save_file(tensors: dict[str, torch.Tensor], path: Path, metadata: dict | None = None) -> None:
    """All or nothing: a kill -9 mid-write leaves the old file (see :func:`records.atomic_write`)."""
    atomic_write(path, lambda tmp: save_file(tensors, str(tmp), metadata=metadata))


def load(path: Path) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save`; a damaged file raises a one-line UsageError."""
    try:
        with safe_open(str(path), framework="pt") as f:
            skeleton = json.loads(f.metadata()["dlhistory"])
            tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 (not a dict)
    except FileNotFoundError:
        raise UsageError(f"no checkpoint at {path}; run without --resume to start afresh") from None
    except Exception as e:  # safetensors raises its own error types for truncated headers
        raise UsageError(f"checkpoint {path} is unreadable ({type(e).__name__}: {e}); "
                         "delete it to start afresh") from None
    return unflatten(skeleton, tensors)


def save_weights(path: Path, module: torch.nn.Module) -> None:
    """Plain model weights for users: ``safetensors.torch.load_file(path)`` gives the state dict."""
    tensors: dict[str, torch.Tensor] = {}
    for k, v in module.state_dict().items():
        tensors[k] = _distinct(v.detach().cpu().contiguous(), tensors)
    _atomic_save_file(tensors, path)


def module_weights(path: Path, name: str) -> dict[str, torch.Tensor]:
    """The state dict of network ``name`` from a weights file (``<name>.safetensors``, written by
    :func:`save_weights`) or from a training checkpoint, which holds every network of the run."""
    if path.name.startswith("checkpoint"):
        return load(path)["weights"][name]
    try:
        return load_file(str(path))
    except Exception as e:  # safetensors raises its own error types for damaged files
        raise UsageError(f"cannot read weights {path} ({type(e).__name__}: {e})") from None


def rng_state() -> dict[str, Any]:
    """The random-number generators a run draws from (dropout, augmentation, initialisation)."""
    state: dict[str, Any] = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
