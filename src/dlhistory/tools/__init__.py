"""The milestones' own subcommands (``translate``, ``play``, ...): they use finished runs and never
change what a run computes, so they are not part of any run's code version.

What every tool does the same way lives here: the torch threads, the variant asked for, the finished
run to use (and its weights file), the recipe that run was made with, loading its weights.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from .. import checkpoint, records
from ..errors import UsageError, did_you_mean
from ..spec import Milestone, Recipe


def use_threads() -> None:
    """Torch threads as a run has them: ``DLHISTORY_THREADS`` where set. Decoding one token at a time
    is many tiny operations, and on a busy machine every extra OpenMP thread spins waiting for a core
    (a sample took 15 s with two threads beside another process, 0.3 s with one)."""
    import torch

    if os.environ.get("DLHISTORY_THREADS"):
        torch.set_num_threads(int(os.environ["DLHISTORY_THREADS"]))


def variant_of(milestone: Milestone, variant: str | None) -> str:
    """``variant`` (default: the milestone's own), checked: a wrong name is one line with suggestions."""
    variant = variant or milestone.variant
    if variant not in milestone.variants:
        hint = did_you_mean(variant, milestone.variants)
        raise UsageError(f"{milestone.key} has no variant {variant!r}{hint}")
    return variant


def finished_run(runs_dir: str, milestone: Milestone, variant: str, which: str | None,
                 weights: str = "model") -> tuple[Path, Path]:
    """(run directory, weights file) of a run that completed: ``which`` (a run directory, or a weights
    file in one) or the newest finished run of ``variant``."""
    if which and Path(which).is_file():
        run_dir = records.find_run(runs_dir, milestone.key, variant, str(Path(which).parent), finished=True)
        return run_dir, Path(which)
    run_dir = records.find_run(runs_dir, milestone.key, variant, which or "latest", finished=True)
    return run_dir, run_dir / f"{weights}.safetensors"


def run_recipe(milestone: Milestone, run_dir: Path, tool: str) -> tuple[dict[str, Any], Recipe]:
    """The config a finished run recorded and the recipe it was made with; one line when the run is
    another milestone's."""
    from ..runner import load_recipe

    config = records.run_config_of(run_dir)
    if config["milestone"] != milestone.key:
        raise UsageError(f"{run_dir} is a run of {config['milestone']}, not {milestone.key}; "
                         f"use 'dlhistory {tool} {config['milestone']}'")
    return config, load_recipe(milestone, config["preset"], config["variant"], tuple(config["overrides"]))


def load_weights(model, path: Path, name: str, run_dir: Path) -> None:
    """``model`` gets network ``name``'s weights from ``path``; another model's or size's are one line."""
    try:
        model.load_state_dict(checkpoint.module_weights(path, name))
    except RuntimeError as e:
        raise UsageError(f"{path} does not fit the model configured in {run_dir}: "
                         f"{str(e).splitlines()[0][:200]}") from None


def output_png(text: str) -> Path:
    """The PNG a tool is asked to write (``--out``): a .png name in a folder that exists; one line
    otherwise (a NUL byte or a name too long included)."""
    out = Path(text).expanduser()
    if out.suffix.lower() != ".png":
        raise UsageError(f"--out {text[:80]}: give a .png file name")
    try:
        folder = out.parent.is_dir()
    except (OSError, ValueError):
        folder = False
    if not folder:
        raise UsageError(f"--out {text[:80]}: the folder {str(out.parent)[:80]} does not exist")
    return out
