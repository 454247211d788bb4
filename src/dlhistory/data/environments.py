"""Environments: the data component of reinforcement learning.

In supervised learning the data is a fixed set of examples; here it is a world the agent acts in, and
what it sees depends on what it does. Two worlds, both through gymnasium (Towers et al. 2024):

* **CartPole-v1** (Barto, Sutton & Anderson 1983): four numbers (cart position and velocity, pole
  angle and angular velocity), two actions, +1 per step the pole stays up, at most 500 steps.
* **Atari 2600 games** through the Arcade Learning Environment (Bellemare et al. 2013; ``ale-py``,
  whose wheel ships the ROMs), with the preprocessing of Mnih et al. 2015 ("Human-level control
  through deep reinforcement learning", Nature 518), as in OpenAI Baselines' ``wrap_deepmind``:
  up to 30 no-op actions at the start of a game (varied starting states), FIRE to launch the ball,
  every action repeated for 4 frames with the maximum over the last two (the Atari flickers), the
  frame turned to 84x84 grayscale. For training, the loss of a life ends the episode for the learner
  (*episodic life*: no value is bootstrapped past a lost life, though the game goes on) and rewards
  are clipped to their sign (one learning rate for every game); evaluation plays whole games and
  reports the game's own score. Frames are stacked by the agent's replay memory, not here, so each
  frame is stored once.

An environment gives one frame per step; :class:`Step` says what the learner sees (``reward``,
``terminal``) and what is reported (``score``, ``game_over``). Training, validation and test episodes
use disjoint environment seeds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from ..errors import DataError
from ..spec import Context

VAL_SEED, TEST_SEED = 1_000_000, 2_000_000
"""Evaluation episodes start from these seeds upward; training environments use the run's seed."""


class Step(NamedTuple):
    """One agent step of an environment."""

    frame: np.ndarray
    """The observation after the action (84x84 uint8 for Atari, 4 float32 numbers for CartPole)."""
    reward: float
    """What the learner is trained on (clipped to its sign for Atari training)."""
    score: float
    """The game's own reward, summed into the reported score."""
    terminal: bool
    """No value is bootstrapped past this step: the episode ended (or, in training, a life was lost)."""
    truncated: bool
    """Cut by the time limit: the episode ends, but the value after it still counts."""
    game_over: bool
    """The game (the scored episode) is over; after a lost life in training it goes on."""


# ------------------------------------------------------------------------------------------------
# CartPole


@dataclass(frozen=True)
class CartPoleConfig:
    """gymnasium's CartPole-v1: balance a pole on a cart for up to 500 steps."""

    max_steps: int = 500

    def __post_init__(self) -> None:
        if self.max_steps < 1:
            raise ValueError("needs max_steps >= 1")

    @property
    def env(self) -> str:
        return "cartpole"


class CartPole:
    """A CartPole-v1 episode stream; ``reset`` starts the next episode."""

    frame_shape: tuple[int, ...] = (4,)
    frame_dtype = np.float32

    def __init__(self, config: CartPoleConfig, seed: int, train: bool = True):
        """``train`` changes nothing here: CartPole's training and evaluation episodes are the same game."""
        import gymnasium as gym

        self.env = gym.make("CartPole-v1", max_episode_steps=config.max_steps).unwrapped
        self.max_steps, self.seed, self.elapsed = config.max_steps, seed, 0
        self.seeded = False

    @property
    def n_actions(self) -> int:
        return int(self.env.action_space.n)

    def reset(self) -> np.ndarray:
        # Seed once: later episodes continue the same random stream, as gymnasium intends.
        obs, _ = self.env.reset(seed=None if self.seeded else self.seed)
        self.seeded, self.elapsed = True, 0
        return obs.astype(np.float32)

    def step(self, action: int) -> Step:
        obs, reward, terminated, _, _ = self.env.step(int(action))
        self.elapsed += 1
        truncated = not terminated and self.elapsed >= self.max_steps
        return Step(obs.astype(np.float32), float(reward), float(reward), bool(terminated), truncated,
                    bool(terminated or truncated))

    def render(self) -> np.ndarray:
        """An RGB picture of the cart and pole (drawn here: gymnasium's renderer needs pygame)."""
        return draw_cartpole(*self.env.state)

    def state_dict(self) -> dict[str, Any]:
        state = None if self.env.state is None else [float(x) for x in self.env.state]
        return {"state": state, "elapsed": self.elapsed, "seeded": self.seeded,
                "rng": self.env.np_random.bit_generator.state,
                "beyond": self.env.steps_beyond_terminated}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state["seeded"]:  # make sure np_random exists before its state is set
            self.env.reset(seed=self.seed)
        self.env.np_random.bit_generator.state = state["rng"]
        self.env.state = None if state["state"] is None else np.array(state["state"], dtype=np.float64)
        self.env.steps_beyond_terminated = state["beyond"]
        self.elapsed, self.seeded = state["elapsed"], state["seeded"]


# ------------------------------------------------------------------------------------------------
# Atari


@dataclass(frozen=True)
class AtariConfig:
    """An Atari 2600 game with the preprocessing of Mnih et al. 2015 (see the module docstring)."""

    game: str = "Breakout"
    noop_max: int = 30
    frame_skip: int = 4
    size: int = 84
    episodic_life: bool = True
    """In training, a lost life ends the learner's episode (the game itself goes on)."""
    clip_rewards: bool = True
    """In training, rewards become their sign; evaluation always reports the unclipped score."""
    max_frames: int = 108_000
    """Games are cut after this many emulator frames (30 minutes of play at 60 Hz)."""

    def __post_init__(self) -> None:
        if self.frame_skip < 1 or self.size < 8 or self.noop_max < 0 or self.max_frames < self.frame_skip:
            raise ValueError("needs frame_skip >= 1, size >= 8, noop_max >= 0 and max_frames >= frame_skip")

    @property
    def env(self) -> str:
        return self.game.lower()


class Atari:
    """An Atari game stream of 84x84 grayscale frames through gymnasium's ``AtariPreprocessing``."""

    frame_dtype = np.uint8

    def __init__(self, config: AtariConfig, seed: int, train: bool = True):
        import gymnasium as gym
        from gymnasium.wrappers import AtariPreprocessing

        ale_py = _import_ale()
        gym.register_envs(ale_py)
        # NoFrameskip-v4: deterministic actions (no sticky repeats), the minimal action set and frame
        # skipping left to the preprocessing, the setting of Mnih et al. and of most published results.
        base = gym.make(f"{config.game}NoFrameskip-v4", max_num_frames_per_episode=config.max_frames)
        self.env = AtariPreprocessing(base, noop_max=config.noop_max, frame_skip=config.frame_skip,
                                      screen_size=config.size, terminal_on_life_loss=False)
        self.ale = base.unwrapped.ale
        self.config, self.seed, self.train = config, seed, train
        self.frame_shape = (config.size, config.size)
        self.seeded, self.lives, self.frame = False, 0, None
        meanings = base.unwrapped.get_action_meanings()
        # Games such as Breakout wait for FIRE after every reset and lost life (Baselines' FireResetEnv).
        self.fire = meanings.index("FIRE") if "FIRE" in meanings else None

    @property
    def n_actions(self) -> int:
        return int(self.env.action_space.n)

    def reset(self) -> np.ndarray:
        """A new game; in training after a lost life, the same game goes on from the next life."""
        if not (self.train and self.config.episodic_life and self.lives > 0 and not self.ale.game_over()):
            self.frame, _ = self.env.reset(seed=None if self.seeded else self.seed)
            self.seeded = True
        self.lives = self.ale.lives()
        if self.fire is not None:
            self.frame, *_ = self.env.step(self.fire)
        return self.frame

    def step(self, action: int) -> Step:
        frame, score, terminated, truncated, info = self.env.step(int(action))
        self.frame = frame
        game_over = bool(terminated or truncated)
        lost_life = info["lives"] < self.lives
        self.lives = info["lives"]
        episodic = self.train and self.config.episodic_life
        reward = float(np.sign(score)) if self.train and self.config.clip_rewards else float(score)
        return Step(frame, reward, float(score), bool(terminated) or (episodic and lost_life),
                    bool(truncated), game_over)

    def render(self) -> np.ndarray:
        return self.ale.getScreenRGB()

    def state_dict(self) -> dict[str, Any]:
        """The emulator (with its random state), the no-op generator, lives and the last frame."""
        import torch

        emulator = np.frombuffer(self.ale.cloneState(include_rng=True).serialize(), dtype=np.uint8)
        return {"emulator": torch.from_numpy(emulator.copy()), "lives": self.lives, "seeded": self.seeded,
                "rng": self.env.unwrapped.np_random.bit_generator.state,
                "frame": None if self.frame is None else torch.from_numpy(self.frame.copy())}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        ale_py = _import_ale()
        if state["seeded"]:
            self.env.reset(seed=self.seed)
        self.ale.restoreState(ale_py.ALEState(state["emulator"].numpy().tobytes()))
        self.env.unwrapped.np_random.bit_generator.state = state["rng"]
        self.lives, self.seeded = state["lives"], state["seeded"]
        self.frame = None if state["frame"] is None else state["frame"].numpy()


def _import_ale():
    try:
        import ale_py
    except ImportError:
        raise DataError("Atari needs ale-py (its wheel ships the ROMs): pip install ale-py") from None
    return ale_py


# ------------------------------------------------------------------------------------------------
# The data component


class Environments:
    """What a DQN run is given: environments to make, and which seeds each split's episodes use."""

    def __init__(self, config: CartPoleConfig | AtariConfig, seed: int, rank: int = 0):
        self.config, self.seed, self.rank = config, seed, rank
        self.kind = CartPole if isinstance(config, CartPoleConfig) else Atari
        probe = self.make(train=False)
        self.n_actions, self.frame_shape = probe.n_actions, probe.frame_shape
        self.frame_dtype = probe.frame_dtype
        self.name = config.env

    @property
    def stack(self) -> int:
        """Frames per state: 4 for Atari (motion is visible), 1 for CartPole (velocities are given)."""
        return 1 if self.kind is CartPole else 4

    @property
    def train_seed(self) -> int:
        """The training environments' seed: the run's, offset by the process's rank."""
        return self.seed + 7919 * self.rank

    def make(self, seed: int | None = None, train: bool = True):
        """An environment; by default the training one, seeded with :attr:`train_seed`."""
        return self.kind(self.config, self.train_seed if seed is None else seed, train)

    def episode_seeds(self, split: str, n: int) -> list[int]:
        """Seeds of ``n`` evaluation episodes: the same every time, disjoint from training seeds."""
        first = {"val": VAL_SEED, "test": TEST_SEED}[split]
        return list(range(first, first + n))


def environments(config: CartPoleConfig | AtariConfig, ctx: Context) -> Environments:
    """The data component's builder."""
    return Environments(config, ctx.seed, ctx.rank)


def draw_cartpole(x: float, x_dot: float, theta: float, theta_dot: float, width: int = 300,
                  height: int = 200):
    """An RGB picture (height, width, 3) of CartPole's state: the cart on its track, the pole at its angle
    (gymnasium draws it with pygame; this needs only Pillow)."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    scale = width / 4.8  # the track spans x in [-2.4, 2.4]
    track, cart_x = int(0.7 * height), width / 2 + x * scale
    draw.line([(0, track), (width, track)], fill="black")
    draw.rectangle([cart_x - 25, track - 15, cart_x + 25, track + 15], fill="black")
    pole = 1.0 * scale  # the pole is 1.0 long (twice gymnasium's half-length 0.5)
    tip = (cart_x + pole * math.sin(theta), track - 15 - pole * math.cos(theta))
    draw.line([(cart_x, track - 15), tip], fill=(202, 152, 101), width=8)
    draw.ellipse([cart_x - 4, track - 19, cart_x + 4, track - 11], fill=(129, 132, 203))
    return np.asarray(image)
