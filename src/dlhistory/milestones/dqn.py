"""2013 DQN: learning to act from pixels with a deep network, experience replay and a target network.

Mnih, Kavukcuoglu, Silver, Graves, Antonoglou, Wierstra & Riedmiller, "Playing Atari with Deep
Reinforcement Learning", NeurIPS Deep Learning Workshop 2013 (https://arxiv.org/abs/1312.5602);
Mnih et al., "Human-level control through deep reinforcement learning", Nature 518, 529-533 (2015).

Q-learning (Watkins 1989) learns the value Q(s, a) of taking action a in state s and acting well
afterwards, from the Bellman equation Q(s, a) = E[r + gamma max_a' Q(s', a')]. With a table, or a linear
function of hand-made features, it was well understood; with a deep network reading raw pixels it
was thought unstable. DQN made it work with two devices: *experience replay*, learning from random
past transitions instead of the last few correlated ones, and a *target network*, a periodically
frozen copy that computes the regression target so it does not move with every update. The same
network, hyper-parameters and pixels-only input then learned dozens of Atari games.

The four components, in this milestone's words:

* data -- an environment: CartPole (smoke and cpu presets), Atari Breakout (``--preset cpu-breakout``;
  the full preset);
* model -- the Q-network: the Nature CNN on stacked frames, an MLP on CartPole's four numbers;
* loss -- the temporal-difference error against the target network, Huber-shaped ("error clipping");
* algorithm -- DQN: epsilon-greedy acting, replay memory, target network, Adam.

Changed vs the baselines: the model. A random policy is the floor; a *linear* Q-function on the same
observations, trained by the same algorithm, is the function approximator reinforcement learning
trusted before (the 2013 paper's comparisons used linear learners on hand-made features). Double DQN
(van Hasselt, Guez & Silver 2016), which picks the next action with the online network and values it
with the target network to curb Q-learning's overestimation, is the loss switch ``loss.double=true``,
run alongside in the CartPole comparison.

The milestone's own command, ``dlhistory play dqn`` (tools/play.py), lets a trained agent play whole
games: the scores print and the games become an animated GIF.
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
import math
import statistics
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..algorithms.replay import ReplayMemory, Transitions
from ..data.environments import AtariConfig, CartPoleConfig, Environments, environments
from ..errors import UsageError
from ..spec import Claim, Component, Context, Metric, Milestone, Panel, Point, Recipe, Verdict
from ..tools.play import PLAY

# ------------------------------------------------------------------------------------------------
# Data: an environment to act in.

CARTPOLE = Component("cartpole", environments, CartPoleConfig())
BREAKOUT = Component("atari", environments, AtariConfig(game="Breakout"))


# ------------------------------------------------------------------------------------------------
# Model: Q(s, .), one output per action.


@dataclass(frozen=True)
class NatureCNNConfig:
    """The network of Mnih et al. 2015 (the 2013 one had 16 and 32 filters and 256 hidden units)."""

    filters: tuple[int, ...] = (32, 64, 64)
    hidden: int = 512


@dataclass(frozen=True)
class MLPConfig:
    """A multilayer perceptron on a low-dimensional state (CartPole's four numbers)."""

    hidden: tuple[int, ...] = (120, 84)


@dataclass(frozen=True)
class LinearConfig:
    """Q(s, a) = w_a . s + b_a on the same observations: the baseline function approximator."""


@dataclass(frozen=True)
class RandomConfig:
    """Uniformly random actions: the floor every learner must clear."""


def _inputs(states: torch.Tensor) -> torch.Tensor:
    """Stacked states as floats: Atari's uint8 pixels scaled to [0, 1]."""
    return states.float() / 255 if states.dtype == torch.uint8 else states.float()


def _fp32(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Q-values in float32 even under bf16 autocast: bf16 resolves 100 only to within 0.5, coarser than
    the gaps between the actions' values that the greedy policy compares."""
    with torch.autocast(x.device.type, enabled=False):
        return module(x.float())


class NatureCNN(nn.Module):
    """Three convolutions (8x8 stride 4, 4x4 stride 2, 3x3 stride 1), a hidden layer, one output per
    action, all ReLU (Nature, Methods: "Model architecture"); input (B, 4, 84, 84) stacked frames."""

    def __init__(self, config: NatureCNNConfig, channels: int, size: int, n_actions: int):
        super().__init__()
        f1, f2, f3 = config.filters
        self.features = nn.Sequential(
            nn.Conv2d(channels, f1, 8, stride=4), nn.ReLU(), nn.Conv2d(f1, f2, 4, stride=2), nn.ReLU(),
            nn.Conv2d(f2, f3, 3, stride=1), nn.ReLU(), nn.Flatten())
        with torch.no_grad():
            width = self.features(torch.zeros(1, channels, size, size)).shape[1]
        self.hidden = nn.Sequential(nn.Linear(width, config.hidden), nn.ReLU())
        self.head = nn.Linear(config.hidden, n_actions)

    def forward(self, states: torch.Tensor) -> torch.Tensor:
        x = _inputs(states).contiguous(memory_format=torch.channels_last)
        return _fp32(self.head, self.hidden(self.features(x)))


class MLP(nn.Module):
    """Fully connected ReLU layers on the flattened state; all in float32 (too small to gain from bf16)."""

    def __init__(self, config: MLPConfig, inputs: int, n_actions: int):
        super().__init__()
        sizes = (inputs, *config.hidden)
        layers = [m for a, b in itertools.pairwise(sizes) for m in (nn.Linear(a, b), nn.ReLU())]
        self.net = nn.Sequential(*layers, nn.Linear(sizes[-1], n_actions))

    def forward(self, states: torch.Tensor) -> torch.Tensor:
        return _fp32(self.net, _inputs(states).flatten(1))


class RandomPolicy(nn.Module):
    """Random 'Q-values': their argmax is a uniformly random action. Nothing to learn."""

    def __init__(self, n_actions: int):
        super().__init__()
        self.n_actions = n_actions

    def forward(self, states: torch.Tensor) -> torch.Tensor:
        return torch.rand(states.shape[0], self.n_actions, device=states.device)


def q_network(config, data: Environments) -> nn.Module:
    """The model component's builder: the network its config names, sized for the environment."""
    inputs = data.stack * math.prod(data.frame_shape)
    if isinstance(config, NatureCNNConfig):
        return NatureCNN(config, data.stack, data.frame_shape[0], data.n_actions)
    if isinstance(config, MLPConfig):
        return MLP(config, inputs, data.n_actions)
    if isinstance(config, LinearConfig):
        return MLP(MLPConfig(hidden=()), inputs, data.n_actions)
    return RandomPolicy(data.n_actions)


NATURE_CNN = Component("nature-cnn", q_network, NatureCNNConfig())
MLP_Q = Component("mlp", q_network, MLPConfig())
LINEAR_Q = Component("linear", q_network, LinearConfig())
RANDOM = Component("random", q_network, RandomConfig())


# ------------------------------------------------------------------------------------------------
# Loss: the temporal-difference error of Q(s, a) against a target from the frozen target network.


@dataclass(frozen=True)
class TDConfig:
    """y = r + gamma (1 - terminal) Q_target(s', a*), a* = argmax_a' Q_target(s', a') (or, Double DQN,
    argmax_a' Q_online(s', a')); the loss is Huber(Q(s, a) - y) or its square."""

    gamma: float = 0.99
    """Discount: how much a reward one step later is worth."""
    kind: Literal["huber", "mse"] = "huber"
    """Huber (smooth L1) is the Nature paper's "clip the error term to [-1, 1]": squared near 0, linear
    beyond, so one surprising transition cannot produce a huge gradient."""
    double: bool = False
    """Double DQN (van Hasselt et al. 2016): choose a* with the online network, value it with the target."""

    def __post_init__(self) -> None:
        if not 0 <= self.gamma <= 1:
            raise ValueError("needs 0 <= gamma <= 1")


class TemporalDifference:
    """The loss component: ``target`` builds y from a batch, calling it compares Q(s, a) with y."""

    def __init__(self, config: TDConfig):
        self.config = config

    def target(self, batch: Transitions, online: nn.Module, target: nn.Module) -> torch.Tensor:
        next_q = target(batch.next_states).float()
        if self.config.double:
            best = online(batch.next_states).argmax(1, keepdim=True)
            value = next_q.gather(1, best)[:, 0]
        else:
            value = next_q.max(1).values
        return batch.rewards + self.config.gamma * (~batch.terminals).float() * value

    def __call__(self, q: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        if self.config.kind == "huber":
            return F.smooth_l1_loss(q, y)
        return F.mse_loss(q, y)


def temporal_difference(config: TDConfig) -> TemporalDifference:
    return TemporalDifference(config)


LOSS = Component("td-error", temporal_difference, TDConfig())
# CartPole pays +1 per step, so its values reach tens and its TD errors are rarely below 1: there Huber is
# a median-like fit that discounts the few terminal transitions, the only ones that pin the values
# down, and Q diverged (`dlhistory run dqn loss.kind=huber`: mean Q 323 after 20k steps, 3.4M after
# 200k; true values are below 100). The squared error, as in CleanRL's CartPole DQN, stays bounded.
# Atari's clipped rewards keep errors near 1, where Huber is meant.
CARTPOLE_LOSS = LOSS.with_config(TDConfig(kind="mse"))

# ------------------------------------------------------------------------------------------------
# Algorithm: DQN, counted in environment steps.
#
# Mnih et al. 2013, and "Human-level control through deep reinforcement learning", Nature 518, 2015
# (algorithm 1). Each step of the procedure:
#
# 1. acts ``train_every`` times with an epsilon-greedy policy: a random action with probability
#    epsilon (annealed linearly from 1), else argmax_a Q(s, a); every transition goes to the replay
#    memory (:mod:`dlhistory.algorithms.replay`, which stores each frame once);
# 2. once the memory holds ``learning_starts`` transitions, takes one gradient step on a mini-batch
#    drawn uniformly from it, regressing Q(s, a) on the target r + gamma max_a' Q_target(s', a') (the
#    loss component computes it);
# 3. copies the online network into the target network every ``target_every`` environment steps, so
#    the regression target holds still in between (Nature, "a separate network for generating the
#    targets").
#
# Evaluation plays whole games with a nearly greedy policy (epsilon 0.05 on Atari, as in the paper; 0
# on CartPole) on environment seeds the training never saw, and reports the mean and spread of the
# game's own score. Because a DQN's policy can get worse as training goes on, the procedure keeps the
# network that scored best on the *validation* episodes and reports the test episodes of that network
# (and of the last one, as ``return_last``).


@dataclass(frozen=True)
class DQNConfig:
    """Algorithm 1 of Mnih et al. 2015, counted in environment (agent) steps."""

    steps: int = 10_000_000
    """Environment steps of training (each is ``frame_skip`` emulator frames on Atari)."""
    memory: int = 1_000_000
    """Replay memory capacity in transitions (frames, each stored once)."""
    batch_size: int = 32
    learning_starts: int = 50_000
    """Transitions in memory before the first gradient step (until then it only acts, mostly at random)."""
    train_every: int = 4
    """Environment steps per gradient step (one step of the procedure)."""
    target_every: int = 10_000
    """Environment steps between copies of the online network into the target network."""
    epsilon_start: float = 1.0
    epsilon_end: float = 0.1
    exploration_steps: int = 1_000_000
    """Environment steps over which epsilon falls linearly from start to end."""
    optimizer: Literal["adam", "rmsprop"] = "adam"
    """Adam (Kingma & Ba 2014) as in most reimplementations, or the Nature paper's RMSProp."""
    lr: float = 1e-4
    adam_eps: float = 1.5e-4
    """Adam's epsilon, raised from 1e-8 as in Dopamine: the TD targets move, tiny denominators hurt."""
    clip_grad: float = 0.0
    """Maximum global gradient norm (0: none; the Huber loss already bounds each error's gradient)."""
    eval_epsilon: float = 0.05
    """Epsilon of the evaluation policy (Mnih et al. 2015: 0.05; 0 is greedy)."""
    val_episodes: int = 10
    test_episodes: int = 30
    select: Literal["best-val", "last"] = "best-val"
    """Which network the test episodes play: the best on validation episodes, or the last."""
    save_buffer: bool = False
    """Checkpoints also hold the replay memory and the game in progress, so ``--resume`` continues
    exactly (without them a resumed run starts a new game and refills the memory before it learns
    again). Does not change what is learned; costs the memory's size on disk (7 GB at 1M Atari frames)."""

    def __post_init__(self) -> None:
        if min(self.steps, self.memory, self.batch_size, self.train_every, self.target_every,
               self.val_episodes, self.test_episodes) < 1 or self.learning_starts < self.batch_size:
            raise ValueError("needs positive steps, sizes and episode counts, learning_starts >= batch_size")
        if self.learning_starts >= self.memory:
            raise ValueError("needs learning_starts < memory (a memory that cannot hold learning_starts "
                             "transitions never starts learning)")
        if not (0 <= self.epsilon_end <= self.epsilon_start <= 1 and 0 <= self.eval_epsilon <= 1):
            raise ValueError("needs 0 <= epsilon_end <= epsilon_start <= 1 and 0 <= eval_epsilon <= 1")
        if self.lr <= 0 or self.exploration_steps < 1 or self.clip_grad < 0:
            raise ValueError("needs lr > 0, exploration_steps >= 1 and clip_grad >= 0")


def epsilon(config: DQNConfig, env_step: int) -> float:
    """Linearly annealed exploration: epsilon_start at step 0, epsilon_end from exploration_steps on."""
    fraction = min(1.0, env_step / config.exploration_steps)
    return config.epsilon_start + fraction * (config.epsilon_end - config.epsilon_start)


def greedy_actions(model: nn.Module, states: np.ndarray) -> np.ndarray:
    """argmax_a Q(s, a) for a batch of stacked states."""
    with torch.no_grad():
        return model(torch.from_numpy(states).to(_device(model))).argmax(1).cpu().numpy()


def play_episodes(model: nn.Module, data: Environments, seeds: list[int], eps: float,
                  rng: np.random.Generator, watch: Callable[[int, Any], None] | None = None) -> list[float]:
    """Play one whole game per seed, all in lockstep (one batched forward pass per step); their scores.

    ``watch(i, env)`` is called after every step of game ``i`` (``dlhistory play`` records frames).
    """
    envs = [data.make(seed, train=False) for seed in seeds]
    stacks = np.stack([np.repeat(env.reset()[None], data.stack, 0) for env in envs])
    scores, active = [0.0] * len(envs), list(range(len(envs)))
    if watch is not None:
        for i, env in enumerate(envs):
            watch(i, env)
    while active:
        actions = greedy_actions(model, stacks[active])
        explore = rng.random(len(active)) < eps
        actions[explore] = rng.integers(0, data.n_actions, int(explore.sum()))
        still = []
        for i, action in zip(active, actions, strict=True):
            step = envs[i].step(int(action))
            scores[i] += step.score
            stacks[i] = np.concatenate([stacks[i][1:], step.frame[None]])
            if watch is not None:
                watch(i, envs[i])
            if not step.game_over:
                still.append(i)
        active = still
    return scores


class DQN:
    """The procedure the runner drives: one step = ``train_every`` actions and one gradient step."""

    panels = (Panel("return", ("train", "val"), "score per game", x="env_steps"),)
    """The run's figure draws the score per game against environment steps besides the loss."""

    def __init__(self, config: DQNConfig, model: nn.Module, loss, data: Environments, ctx: Context,
                 optimizer: torch.optim.Optimizer | None):
        if ctx.world_size > 1:
            raise UsageError("DQN runs in one process (its experience is one stream); run it without "
                             "torchrun")
        self.config, self.model, self.loss, self.data, self.optimizer = config, model, loss, data, optimizer
        self.learns = optimizer is not None
        # A policy with nothing to learn (the random baseline) is only evaluated.
        self.total_steps = math.ceil(config.steps / config.train_every) if self.learns else 0
        self.samples_per_step = config.train_every
        self.target = _frozen_copy(model)
        self.selected = _frozen_copy(model)
        self.modules = {"model": model, "target": self.target, "selected": self.selected}
        self.rng = np.random.default_rng([ctx.seed, 1013])
        self.ahead = np.random.default_rng(0)  # a copy of ``rng`` to read draws ahead (``cost_key``)
        self.device = _device(model)
        self.memory = self.new_memory() if self.learns else None
        self.env_steps, self.synced_at, self.updates = 0, 0, 0
        self.score, self.scores = 0.0, []
        # The best validation score so far, and the update count when its network was copied.
        self.best_return, self.selected_at = -math.inf, -1
        self.refilled_at: list[int] = []  # environment steps at which a resume refilled the memory
        self.env = data.make()
        if self.memory is not None:
            self.memory.start(self.env.reset())

    def new_memory(self) -> ReplayMemory:
        return ReplayMemory(self.config.memory, self.data.frame_shape, self.data.frame_dtype, self.data.stack)

    # --- acting and learning ---------------------------------------------------------------------

    def learning(self) -> bool:
        """Whether the next step takes a gradient step: once its ``train_every`` actions have brought the
        memory to ``learning_starts`` transitions (decided before acting, so the runner can ask too)."""
        return self.memory is not None and (
            len(self.memory) + self.config.train_every >= self.config.learning_starts)

    def cost_key(self, step: int) -> tuple[bool, int]:
        """Steps cost the same FLOPs when they agree on taking a gradient step and on how many of their
        actions are greedy (a forward pass each), so the runner counts one step of each kind (counting
        is slow). The exploring draws are read ahead from a copy of the generator, not taken."""
        self.ahead.bit_generator.state = self.rng.bit_generator.state
        greedy = sum(self.explore(self.ahead, self.env_steps + i) is None
                     for i in range(self.config.train_every))
        return self.learning(), greedy

    def explore(self, rng: np.random.Generator, env_step: int) -> int | None:
        """With probability epsilon a uniformly random action, else None: act greedily."""
        if rng.random() < epsilon(self.config, env_step):
            return int(rng.integers(self.data.n_actions))
        return None

    def update(self, step: int) -> dict[str, Any]:
        learn = self.learning()
        for _ in range(self.config.train_every):
            self.act()
        metrics: dict[str, Any] = {"epsilon": epsilon(self.config, self.env_steps),
                                   "env_steps": self.env_steps}
        if self.scores:
            metrics["return"] = statistics.fmean(self.scores[-20:])
        if learn:
            metrics.update(self.learn())
        if self.env_steps - self.synced_at >= self.config.target_every:
            self.target.load_state_dict(self.model.state_dict())
            self.synced_at = self.env_steps
        return metrics

    def act(self) -> None:
        """One epsilon-greedy action in the training environment, remembered."""
        action = self.explore(self.rng, self.env_steps)
        if action is None:
            action = int(greedy_actions(self.model, self.memory.state()[None])[0])
        step = self.env.step(action)
        self.memory.add(action, step.reward, step.terminal, step.frame)
        self.env_steps += 1
        self.score += step.score
        if step.game_over:
            self.scores.append(self.score)
            self.score = 0.0
        if step.terminal or step.truncated:
            self.memory.start(self.env.reset())

    def learn(self) -> dict[str, torch.Tensor]:
        """One gradient step on a replayed mini-batch: regress Q(s, a) on the loss's TD target."""
        batch = self.memory.sample(self.config.batch_size, self.rng).to(self.device)
        self.model.train()
        q = self.model(batch.states).gather(1, batch.actions[:, None])[:, 0]
        with torch.no_grad():
            target = self.loss.target(batch, self.model, self.target)
        loss = self.loss(q, target)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.config.clip_grad:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.clip_grad)
        self.optimizer.step()
        self.updates += 1
        return {"loss": loss.detach(), "q": q.detach().mean()}

    # --- evaluation ------------------------------------------------------------------------------

    def evaluate(self, split: str) -> dict[str, float]:
        if split == "train":  # the last 100 training games' scores, as played (exploring)
            recent = self.scores[-100:]
            return {"games": len(self.scores), **({"return": statistics.fmean(recent)} if recent else {})}
        n = self.config.val_episodes if split == "val" else self.config.test_episodes
        last = self.episodes(self.model, split, n)
        metrics = {"return": statistics.fmean(last), "return_std": _std(last), "env_steps": self.env_steps}
        if split == "val" and metrics["return"] >= self.best_return:  # ties: the later, longer-trained
            self.best_return, self.selected_at = metrics["return"], self.updates
            self.selected.load_state_dict(self.model.state_dict())
        if split == "val":
            metrics["best_return"] = self.best_return
        if split == "test" and self.config.select == "best-val" and self.learns:
            # The selected network is the last one when it was chosen after the last update: same games.
            chosen = last if self.selected_at == self.updates else self.episodes(self.selected, split, n)
            metrics.update(return_last=metrics["return"], return_std_last=metrics["return_std"],
                           **{"return": statistics.fmean(chosen), "return_std": _std(chosen)})
        return metrics

    def episodes(self, model: nn.Module, split: str, n: int) -> list[float]:
        """Scores of ``n`` games on ``split``'s seeds; the same exploring draws every time."""
        model.eval()
        rng = np.random.default_rng([{"val": 1, "test": 2}[split], 2029])
        return play_episodes(model, self.data, self.data.episode_seeds(split, n), self.config.eval_epsilon,
                             rng)

    # --- checkpoints -----------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        state = {"optimizer": self.optimizer.state_dict() if self.learns else None,
                 "rng": self.rng.bit_generator.state, "env": self.env.state_dict(),
                 "env_steps": self.env_steps, "synced_at": self.synced_at, "updates": self.updates,
                 "score": self.score, "scores": list(self.scores), "best_return": self.best_return,
                 "selected_at": self.selected_at, "refilled_at": list(self.refilled_at), "memory": None}
        if self.config.save_buffer and self.memory is not None:
            state["memory"] = self.memory.state_dict()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if self.learns:
            self.optimizer.load_state_dict(state["optimizer"])
        self.rng.bit_generator.state = state["rng"]
        self.env_steps, self.synced_at = state["env_steps"], state["synced_at"]
        self.updates = state["updates"]
        self.scores, self.best_return = list(state["scores"]), float(state["best_return"])
        self.selected_at = state["selected_at"]
        if state["memory"] is not None:  # exact: the memory, the game in progress and its score
            self.memory.load_state_dict(state["memory"])
            self.env.load_state_dict(state["env"])
            self.score = state["score"]
        elif self.memory is not None:  # without the memory: a new game, refilled before learning resumes
            self.memory = self.new_memory()
            self.memory.start(self.env.reset())
            self.refilled_at.append(self.env_steps)
            print(f"dqn: resumed at environment step {self.env_steps:,} without the replay memory "
                  "(algorithm.save_buffer=false): a new game starts and the memory refills, so this run "
                  "will not end where an uninterrupted one would; result.json records it", file=sys.stderr)
        self.refilled_at = [*state.get("refilled_at", []), *self.refilled_at]

    def provenance(self) -> dict[str, Any]:
        """Resumes that lost the replay memory, at which environment steps: such a run is not the
        uninterrupted one its seed names (one such Breakout run scored 317 against 396 uninterrupted)."""
        return {"resumed_without_memory_at": self.refilled_at} if self.refilled_at else {}


def _device(model: nn.Module) -> torch.device:
    """Where the model's weights are (the CPU for a model without any, the random policy)."""
    return next(model.parameters(), torch.empty(0)).device


def _frozen_copy(model: nn.Module) -> nn.Module:
    clone = copy.deepcopy(model)
    clone.requires_grad_(False)
    return clone


def _std(values: list[float]) -> float:
    return statistics.stdev(values) if len(values) > 1 else 0.0


def dqn(config: DQNConfig, model: nn.Module, loss, data: Environments, ctx: Context) -> DQN:
    """The algorithm component's builder: the optimizer of the config over the Q-network's weights."""
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = None
    if params and config.optimizer == "adam":
        optimizer = torch.optim.Adam(params, lr=config.lr, eps=config.adam_eps, fused=True)
    elif params:
        # The Nature paper's RMSProp: squared-gradient momentum 0.95, min squared gradient 0.01,
        # centred (Graves 2013), without the gradient momentum torch would add on top.
        optimizer = torch.optim.RMSprop(params, lr=config.lr, alpha=0.95, eps=0.01, centered=True)
    return DQN(config, model, loss, data, ctx, optimizer)


# Mnih et al. 2015 (Extended Data Table 1) with Adam as in CleanRL's dqn_atari, whose 10M-step
# Breakout run scored 366.9: memory 1M, batch 32, an update every 4 steps after 80k, a target copy
# every 1000 steps, epsilon 1 -> 0.01 over the first million steps.
ATARI_FULL = DQNConfig(steps=10_000_000, memory=1_000_000, batch_size=32, learning_starts=80_000,
                       train_every=4, target_every=1000, epsilon_end=0.01, exploration_steps=1_000_000,
                       lr=1e-4)
# The cpu preset compresses the schedule into what 2 cores do in about half an hour.
ATARI_CPU = dataclasses.replace(ATARI_FULL, steps=350_000, memory=100_000, learning_starts=20_000,
                                exploration_steps=100_000, val_episodes=8, test_episodes=30)
# CartPole: CleanRL's dqn.py settings (memory 10k, batch 128, a step every 10, target every 500, Adam
# 2.5e-4), with epsilon annealed over 50k steps instead of half the run, so that 200k steps suffice.
CARTPOLE_CPU = DQNConfig(steps=200_000, memory=10_000, batch_size=128, learning_starts=1000, train_every=10,
                         target_every=500, epsilon_start=1.0, epsilon_end=0.05, exploration_steps=50_000,
                         lr=2.5e-4, adam_eps=1e-8, eval_epsilon=0.0, val_episodes=10, test_episodes=30)
ALGORITHM = Component("dqn", dqn, CARTPOLE_CPU)


# ================================================================================================
# Presets. smoke and cpu are CartPole; full is Breakout; the ``-breakout`` presets are Breakout at
# smaller scales (``dlhistory run dqn --preset cpu-breakout``).

CPU = Recipe(CARTPOLE, MLP_Q, CARTPOLE_LOSS, ALGORITHM)
SMOKE = CPU.swap(algorithm=ALGORITHM.with_config(dataclasses.replace(
    CARTPOLE_CPU, steps=2000, memory=1000, learning_starts=200, batch_size=32, exploration_steps=1000,
    val_episodes=2, test_episodes=3)))
CPU_BREAKOUT = Recipe(BREAKOUT, NATURE_CNN, LOSS, ALGORITHM.with_config(ATARI_CPU))
SMOKE_BREAKOUT = CPU_BREAKOUT.swap(
    model=NATURE_CNN.with_config(NatureCNNConfig(filters=(8, 8, 8), hidden=32)),
    algorithm=ALGORITHM.with_config(dataclasses.replace(
        ATARI_CPU, steps=400, memory=500, learning_starts=100, exploration_steps=200, val_episodes=1,
        test_episodes=1)))
FULL = CPU_BREAKOUT.swap(algorithm=ALGORITHM.with_config(ATARI_FULL))
PRESETS = {"smoke": SMOKE, "cpu": CPU, "full": FULL, "smoke-breakout": SMOKE_BREAKOUT,
           "cpu-breakout": CPU_BREAKOUT}


def on_cartpole(recipe: Recipe) -> bool:
    """Whether the recipe acts in CartPole (else in an Atari game): its data component's config says."""
    return isinstance(recipe.data.config, CartPoleConfig)


def environment_name(recipe: Recipe) -> str:
    """'cartpole', or the Atari game's name in lower case ('breakout')."""
    return recipe.data.config.env


def _model(baseline: Component):
    def swap(preset: str) -> dict[str, Component]:
        return {"model": baseline}
    return swap


# ================================================================================================
# The claim: DQN's score reaches the threshold and beats the baselines, on games it never trained on.


def points(milestone: Milestone, preset: str) -> list[Point]:
    """CartPole: DQN, Double DQN and both baselines; Breakout: DQN and the random floor (a linear
    learner on 28,224 pixels would cost another half hour to show what CartPole already shows)."""
    if on_cartpole(milestone.recipe(preset)):
        return [Point("dqn"), Point("dqn", "double", ("loss.double=true",)), Point("linear"), Point("random")]
    return [Point("dqn"), Point("random")]


SOLVED_FRACTION = 0.8
"""CartPole's claim counts seeds: at least 4 of 5 (80%) must reach the threshold."""


def _reaches(ours: list[float], threshold: float, count_seeds: bool) -> tuple[bool, str]:
    """Whether the seeds' scores reach ``threshold``: in >= 80% of seeds, or (else) on average."""
    if count_seeds:
        reached, needed = sum(v >= threshold for v in ours), math.ceil(SOLVED_FRACTION * len(ours))
        ok, said = reached >= needed, f"{reached} of {len(ours)} seeds >= {threshold} (need {needed})"
    else:
        ok, said = statistics.fmean(ours) >= threshold, f"mean {statistics.fmean(ours):.1f} >= {threshold}"
    return ok, f"{said} {'yes' if ok else 'NO'}"


def _scored(result: Mapping[str, Any], metric: str) -> bool:
    """The run reported the claim's metric (a diverged run stopped before its test games)."""
    return result.get("status") != "diverged" and isinstance(result.get(metric), (int, float))


def judge(milestone: Milestone, preset: str, results: Mapping[str, list[dict]]) -> Verdict:
    """CartPole: the test return reaches the threshold in >= 80% of seeds and the mean beats the
    linear and random baselines. Breakout: the mean test score reaches the threshold and beats random.

    A missing baseline leaves the claim not judged; a diverged run of DQN or of a baseline fails it
    (Double DQN, run alongside, is reported but not judged).
    """
    metric = milestone.claim.metric
    baselines = ("linear", "random") if on_cartpole(milestone.recipe(preset)) else ("random",)
    missing = [p for p in (milestone.variant, *baselines) if not results.get(p)]
    if missing:
        what = "baseline " if milestone.variant not in missing else "runs of "
        return Verdict("not judged", f"missing {what}{', '.join(missing)}: the claim compares DQN with "
                                     f"{' and '.join(baselines)} ('dlhistory compare dqn --preset {preset}')")
    rows = tuple((p, *(f"{r[metric]:.1f}" if _scored(r, metric) else r.get("status", "no score")
                       for r in rs)) for p, rs in results.items())
    table = (("variant", *(f"seed {i}" for i in range(max(len(rs) for rs in results.values())))), rows)
    failed = [p for p in (milestone.variant, *baselines) if not all(_scored(r, metric) for r in results[p])]
    if failed:
        return Verdict.judged(False, f"runs of {', '.join(failed)} diverged or reported no {metric}", table)
    ours = [r[metric] for r in results[milestone.variant]]
    threshold = milestone.claim.thresholds.get(preset)
    reasons, holds = [], True
    if threshold is not None:
        holds, reason = _reaches(ours, threshold, count_seeds=on_cartpole(milestone.recipe(preset)))
        reasons.append(reason)
    for baseline in baselines:
        theirs = statistics.fmean(r[metric] for r in results[baseline])
        ok = statistics.fmean(ours) > theirs
        holds &= ok
        reasons.append(f"beats {baseline} ({theirs:.1f}) {'yes' if ok else 'NO'}")
    others = [p for p, rs in results.items() if p not in (milestone.variant, *baselines)
              and not all(_scored(r, metric) for r in rs)]
    if others:
        reasons.append(f"{', '.join(others)} diverged (not part of the claim)")
    return Verdict.judged(holds, "; ".join(reasons), table)


def figures(comparison, out_dir: Path) -> list[Path]:
    """Test score per variant, and the return curves (training games and evaluations, seed bands)."""
    from ..report import figures as draw

    m = comparison.milestone
    paths = [out_dir / f"{m.key}.png", out_dir / f"{m.key}-returns.png"]
    draw.bar_chart(comparison, paths[0])
    env = environment_name(m.recipe(comparison.preset))
    seeds = len(comparison.seeds)
    draw.return_curves(comparison.results, f"{m.year} {m.title}: {env} ({comparison.preset}, {seeds} "
                                           f"seed{'s' if seeds > 1 else ''})", paths[1])
    return paths


CLAIM = Claim(
    statement="DQN's greedy policy reaches the threshold score (CartPole: in at least 4 of 5 seeds) "
              "on unseen environment seeds and beats a random policy and (CartPole) a linear "
              "Q-function trained the same way",
    metric="test_return",
    direction="max",
    paper="Nature DQN, Breakout: 401.2 at 50M steps (random 1.7, human 31.8); CleanRL's dqn_atari "
          "366.9 at 10M; CartPole-v1 is solved at 475 of 500",
    report=(Metric("test_return", "test score", 1), Metric("test_return_last", "test score, last network", 1),
            Metric("train_return", "training score", 1), Metric("steps", "steps", 0),
            Metric("train_seconds", "train s", 1), Metric("train_flops", "train FLOPs", 2, scientific=True)),
    thresholds={"cpu": 475.0, "cpu-breakout": 10.0, "full": 300.0},
    points=points,
    judge=judge,
    figures=figures,
    seeds=5,
)



# ================================================================================================

MILESTONE = Milestone(
    key="dqn",
    year=2013,
    title="DQN",
    citation="Mnih et al. Playing Atari with Deep Reinforcement Learning. NeurIPS Deep Learning Workshop "
             "2013; Mnih et al. Human-level control through deep reinforcement learning. Nature 2015.",
    url="https://arxiv.org/abs/1312.5602",
    showed="reinforcement learning with a deep network: one agent learns to play from pixels and the score",
    variant="dqn",
    presets=PRESETS,
    baselines={"linear": _model(LINEAR_Q), "random": _model(RANDOM)},
    changes=("model",),
    claim=CLAIM,
    tools=(PLAY,),
)
