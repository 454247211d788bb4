"""``dlhistory play dqn``: a trained agent plays whole games; the scores print and the games become an
animated GIF.

The agent is the network the run selected on its validation games (``selected.safetensors`` of a run
that completed) and plays as in evaluation: epsilon 0.05 on Atari, greedy on CartPole, on environment
seeds given here. Frames are the emulator's full-colour screen (Atari) or a drawing of the cart and
pole, one per agent step. Used by the milestone, not part of what it computes: a change here keeps its
runs.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import records
from ..errors import UsageError
from ..spec import Context, Milestone, Tool
from . import load_weights, run_recipe, use_threads, variant_of

ENVIRONMENTS = ("cartpole", "breakout")
FPS = 15
"""Atari runs at 60 Hz and the agent acts every 4th frame: 15 agent steps per second is real time."""
MAX_EPISODES = 100
"""A Breakout game can last 30 minutes of emulator time; a hundred are plenty to watch."""
SEEDS = 2**31


def preset_for(milestone: Milestone, preset: str, env: str | None) -> str:
    """The preset of ``preset``'s scale that acts in ``env``: cpu + breakout is cpu-breakout, smoke +
    breakout smoke-breakout; full is Breakout already. ``env`` None keeps ``preset``."""
    from ..milestones.dqn import environment_name

    milestone.recipe(preset)  # an unknown preset fails here, with suggestions
    if env is None:
        return preset
    scale = preset.split("-", 1)[0]  # cpu-breakout: the cpu scale
    for name in (preset, scale, f"{scale}-{env}"):
        if name in milestone.presets and environment_name(milestone.presets[name]) == env:
            return name
    raise UsageError(f"no {preset!r} preset for --env {env}; presets: "
                     f"{', '.join(f'{p} ({environment_name(r)})' for p, r in milestone.presets.items())}")


@dataclass
class Played:
    scores: list[float]
    frames: int
    """Frames drawn into the GIF (none without one)."""


def find_played_run(milestone: Milestone, preset: str, variant: str | None, which: str,
                    runs_dir: str) -> tuple[Path, dict]:
    """The run to play and its config: ``which`` (a run directory) or, for 'latest', the newest run of
    ``preset`` that completed; either way one of this milestone that wrote its selected network."""
    run_dir = records.find_run(runs_dir, milestone.key, variant or milestone.variant, which, finished=True,
                               preset=preset)
    config = records.run_config_of(run_dir)
    if config["milestone"] != milestone.key:
        raise UsageError(f"{run_dir} is a run of {config['milestone']!r}, not {milestone.key!r}")
    if variant and config["variant"] != variant:
        raise UsageError(f"{run_dir} is a run of {milestone.key}/{config['variant']}, not of "
                         f"--variant {variant}")
    if not (run_dir / "selected.safetensors").exists():
        raise UsageError(f"{run_dir} holds no selected.safetensors to play; it completed without "
                         "writing its networks")
    return run_dir, config


def play(milestone: Milestone, run_dir: Path, episodes: int, seed: int, gif: Path | None) -> Played:
    """Play ``episodes`` games with ``run_dir``'s selected network; write them to ``gif`` if given."""
    from ..algorithms.qlearning import play_episodes

    _, recipe = run_recipe(milestone, run_dir, "play")
    data = recipe.data(Context(seed=seed))
    model = recipe.model(data)
    load_weights(model, run_dir / "selected.safetensors", "selected", run_dir)
    model.eval()
    frames: list[list[np.ndarray]] = [[] for _ in range(episodes)]
    watch = (lambda i, env: frames[i].append(env.render())) if gif else None
    rng = np.random.default_rng(seed)
    scores = play_episodes(model, data, list(range(seed, seed + episodes)),
                           recipe.algorithm.config.eval_epsilon, rng, watch)
    if gif:
        write_gif([frame for game in frames for frame in game], gif)
    return Played(scores, sum(len(f) for f in frames))


def write_gif(frames: list[np.ndarray], path: Path, fps: int = FPS) -> None:
    """An animated GIF of RGB frames, written atomically: all or nothing."""
    from PIL import Image

    images = [Image.fromarray(f).quantize(colors=64, method=Image.Quantize.MEDIANCUT) for f in frames]
    records.atomic_write(path, lambda tmp: images[0].save(
        tmp, format="GIF", save_all=True, append_images=images[1:], duration=1000 // fps, loop=0))


def play_arguments(parser) -> None:
    parser.add_argument("milestone", help="the milestone whose agent plays (dqn)")
    parser.add_argument("--variant", help="whose run plays (default: the milestone's own; random: the floor)")
    parser.add_argument("--preset", default="cpu",
                        help="the preset of the run to play (default cpu; cpu-breakout, full: Breakout)")
    parser.add_argument("--env", choices=ENVIRONMENTS,
                        help="the preset's version for this environment (cpu + breakout: cpu-breakout)")
    parser.add_argument("--checkpoint", metavar="RUN_DIR",
                        help="the run directory to play (default: the newest completed run of the preset)")
    parser.add_argument("--runs-dir", default="runs", help="where runs are (default: runs)")
    parser.add_argument("--episodes", type=int, default=3, help="games to play (default 3)")
    parser.add_argument("--seed", type=int, default=0, help="first environment seed of the games (default 0)")
    parser.add_argument("--gif", metavar="FILE.gif", help="write the games as an animated GIF")


def play_main(milestone: Milestone, args) -> None:
    """Check the input, say which run plays (on stderr), print each game's score, write the GIF."""
    use_threads()
    if not 1 <= args.episodes <= MAX_EPISODES:
        raise UsageError(f"--episodes {args.episodes}: play 1 to {MAX_EPISODES} games")
    if not 0 <= args.seed <= SEEDS - args.episodes:
        raise UsageError(f"--seed {args.seed}: environment seeds are whole numbers from 0 to {SEEDS - 1}")
    if args.gif:
        records.writable_file(args.gif, "--gif", ".gif")
    preset = preset_for(milestone, args.preset, args.env)
    if args.variant is not None:
        variant_of(milestone, args.variant)
    run_dir, config = find_played_run(milestone, preset, args.variant, args.checkpoint or "latest",
                                      args.runs_dir)
    print(f"playing {milestone.key}/{config['variant']} ({config['preset']}): {run_dir}", file=sys.stderr,
          flush=True)
    played = play(milestone, run_dir, args.episodes, args.seed, Path(args.gif) if args.gif else None)
    for i, score in enumerate(played.scores):
        print(f"game {i + 1} (environment seed {args.seed + i}): score {score:g}")
    if args.gif:
        print(f"animation: {args.gif} ({played.frames} frames)", file=sys.stderr, flush=True)


PLAY = Tool("play", "watch a trained DQN play: scores, and an animated GIF", play_arguments, play_main)
