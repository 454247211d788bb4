"""``dlhistory play dqn``: a trained agent plays whole games; the scores print and the games become a GIF.

The agent is the network the run selected on its validation games (``selected.safetensors``; an
interrupted run's checkpoint also holds it) and plays as in evaluation: epsilon 0.05 on Atari, greedy on
CartPole, on environment seeds given here. Frames are the emulator's full-colour screen (Atari) or a
drawing of the cart and pole, one per agent step.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from . import checkpoint
from .algorithms.dqn import play_episodes
from .errors import UsageError
from .records import runs_of
from .runner import load_recipe
from .spec import Context, Milestone

WEIGHTS = ("selected.safetensors", "checkpoint.safetensors", "result.json")
"""A run has a policy to play once it wrote one of these (the random baseline has no weights)."""
FPS = 15
"""Atari runs at 60 Hz and the agent acts every 4th frame: 15 agent steps per second is real time."""


@dataclass
class Played:
    name: str
    run_dir: Path
    scores: list[float]
    frames: int


def find_played_run(runs_dir: str, milestone: Milestone, preset: str, variant: str | None,
                    given: str | None) -> Path:
    """``--checkpoint``'s run directory, or the newest run of the preset that holds weights."""
    if given:
        path = Path(given)
        if not (path / "config.json").exists():
            raise UsageError(f"--checkpoint {given}: not a run directory (no config.json there)")
        return path
    variant = variant or milestone.variant
    runs = [p for p in runs_of(runs_dir, milestone.key, variant)
            if json.loads((p / "config.json").read_text())["preset"] == preset
            and any((p / name).exists() for name in WEIGHTS)]
    if not runs:
        raise UsageError(f"no trained {preset} run of {milestone.key}/{variant} under {runs_dir}; train "
                         f"one ('dlhistory run {milestone.key} --preset {preset}') or pass --checkpoint DIR")
    return runs[-1]


def selected_weights(run_dir: Path) -> dict[str, torch.Tensor] | None:
    """The selected network's weights: the finished run's file, else the last checkpoint's copy."""
    for name in ("selected.safetensors", "checkpoint.safetensors"):
        if (run_dir / name).exists():
            return checkpoint.module_weights(run_dir / name, "selected")
    return None  # a policy without weights (the random baseline)


def play(milestone: Milestone, preset: str, variant: str | None, given: str | None, runs_dir: str,
         episodes: int, seed: int, gif: Path | None) -> Played:
    """Play ``episodes`` games with a run's selected network; write them to ``gif`` if given."""
    run_dir = find_played_run(runs_dir, milestone, preset, variant, given)
    config = json.loads((run_dir / "config.json").read_text())
    if config["milestone"] != milestone.key:
        raise UsageError(f"{run_dir} is a run of {config['milestone']!r}, not {milestone.key!r}")
    recipe = load_recipe(milestone, config["preset"], config["variant"], tuple(config["overrides"]))
    data = recipe.data(Context(seed=seed))
    model = recipe.model(data)
    weights = selected_weights(run_dir)
    if weights is not None:
        model.load_state_dict(weights)
    model.eval()
    frames: list[list[np.ndarray]] = [[] for _ in range(episodes)]
    watch = (lambda i, env: frames[i].append(env.render())) if gif else None
    rng = np.random.default_rng(seed)
    scores = play_episodes(model, data, list(range(seed, seed + episodes)),
                           recipe.algorithm.config.eval_epsilon, rng, watch)
    count = sum(len(f) for f in frames)
    if gif:
        write_gif([frame for game in frames for frame in game], gif)
    return Played(f"{milestone.key}/{config['variant']} ({config['preset']})", run_dir, scores, count)


def write_gif(frames: list[np.ndarray], path: Path, fps: int = FPS) -> None:
    """An animated GIF of RGB frames, written beside ``path`` first and renamed: all or nothing."""
    from PIL import Image

    images = [Image.fromarray(f).quantize(colors=64, method=Image.Quantize.MEDIANCUT) for f in frames]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.part")
    try:
        images[0].save(tmp, format="GIF", save_all=True, append_images=images[1:], duration=1000 // fps,
                       loop=0)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
