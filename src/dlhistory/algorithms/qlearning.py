"""DQN, the procedure: epsilon-greedy acting, experience replay, a target network (Mnih et al. 2013;
"Human-level control through deep reinforcement learning", Nature 518, 2015, algorithm 1).

The 2013 milestone (:mod:`dlhistory.milestones.dqn`) names its data, model and loss; this is its
algorithm component. :class:`DQN` acts in one environment, one action at a time (Atari, and CartPole
as gymnasium steps it); :class:`VectorDQN` acts in many CartPoles at once, stepped as batched torch
operations (:mod:`dlhistory.data.cartpole`), so that a small network pays Python's overhead and a
forward pass once per batch of environment steps instead of once per step.
"""

from __future__ import annotations

import copy
import math
import statistics
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from ..data.cartpole import CartPoles
from ..data.environments import CartPoleConfig, Environments
from ..errors import UsageError
from ..spec import Context, Panel
from .replay import ReplayMemory, TransitionMemory

# Each step of the procedure:
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
    envs: int = 1
    """Environments acting in lockstep, each act one batch of ``envs`` steps (:class:`VectorDQN`).
    Above 1 only on CartPole, whose batched torch twin steps them all at once; ``train_every`` must
    be a multiple, so that a gradient step still comes every ``train_every`` environment steps."""
    save_buffer: bool = False
    """Checkpoints also hold the replay memory and the game in progress, so ``--resume`` continues
    exactly (without them a resumed run starts a new game and refills the memory before it learns
    again). Does not change what is learned; costs the memory's size on disk (7 GB at 1M Atari frames)."""

    def __post_init__(self) -> None:
        if min(self.steps, self.memory, self.batch_size, self.train_every, self.target_every,
               self.val_episodes, self.test_episodes) < 1 or self.learning_starts < self.batch_size:
            raise ValueError("needs positive steps, sizes and episode counts, learning_starts >= batch_size")
        if self.envs < 1 or self.train_every % self.envs:
            raise ValueError("needs envs >= 1 dividing train_every (a gradient step every train_every "
                             "environment steps, taken in whole batches of envs)")
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
        self.start_acting()

    def start_acting(self) -> None:
        """The training environment, its first episode begun (and written to the memory)."""
        self.env = self.data.make()
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

    @property
    def acts_per_step(self) -> int:
        """Calls of :meth:`act` per step of the procedure (each acts once)."""
        return self.config.train_every

    def update(self, step: int) -> dict[str, Any]:
        learn = self.learning()
        for _ in range(self.acts_per_step):
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
        if not self.model.training:  # evaluation left it in eval mode (setting it costs per module)
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
                 "rng": self.rng.bit_generator.state, "env": self.env_state(),
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
            self.load_env_state(state["env"])
            self.score = state["score"]
        elif self.memory is not None:  # without the memory: a new game, refilled before learning resumes
            self.memory = self.new_memory()
            self.start_acting()
            self.refilled_at.append(self.env_steps)
            print(f"dqn: resumed at environment step {self.env_steps:,} without the replay memory "
                  "(algorithm.save_buffer=false): a new game starts and the memory refills, so this run "
                  "will not end where an uninterrupted one would; result.json records it", file=sys.stderr)
        self.refilled_at = [*state.get("refilled_at", []), *self.refilled_at]

    def env_state(self) -> dict[str, Any]:
        return self.env.state_dict()

    def load_env_state(self, state: dict[str, Any]) -> None:
        self.env.load_state_dict(state)

    def provenance(self) -> dict[str, Any]:
        """Resumes that lost the replay memory, at which environment steps: such a run is not the
        uninterrupted one its seed names (one such Breakout run scored 317 against 396 uninterrupted)."""
        return {"resumed_without_memory_at": self.refilled_at} if self.refilled_at else {}


class VectorDQN(DQN):
    """DQN acting in ``config.envs`` CartPoles at once (:mod:`dlhistory.data.cartpole`, tested step for
    step against gymnasium's): each act is one forward pass and a few tensor operations for ``envs``
    environment steps, where :class:`DQN` pays Python and a forward pass for every step. The algorithm
    is unchanged: epsilon-greedy on the same schedule (one epsilon per batch of steps), uniform replay
    of (s, a, r, s'), a gradient step every ``train_every`` environment steps, a target copy every
    ``target_every``, and evaluation in gymnasium's CartPole."""

    def new_memory(self) -> TransitionMemory:
        return TransitionMemory(self.config.memory, self.data.frame_shape)

    def start_acting(self) -> None:
        self.env = CartPoles(self.config.envs, self.data.train_seed)
        self.observations = self.env.reset()
        self.returns = torch.zeros(self.env.n)  # each environment's score in its game so far

    @property
    def acts_per_step(self) -> int:
        return self.config.train_every // self.config.envs

    def cost_key(self, step: int) -> bool:
        """Every act costs one forward pass of ``envs`` states, exploring or not: steps differ only
        in whether they take a gradient step."""
        return self.learning()

    def act(self) -> None:
        """One epsilon-greedy action in every environment, remembered; finished games start again."""
        n = self.env.n
        explore = torch.from_numpy(self.rng.random(n) < epsilon(self.config, self.env_steps))
        random = torch.from_numpy(self.rng.integers(self.data.n_actions, size=n))
        with torch.no_grad():
            greedy = self.model(self.observations[:, None]).argmax(1)
        actions = torch.where(explore, random, greedy)
        step = self.env.step(actions)
        self.memory.add(self.observations, actions, step.reward, step.terminated, step.observation)
        self.env_steps += n
        self.returns += step.reward
        over = step.terminated | step.truncated
        if over.any():
            self.scores.extend(self.returns[over].tolist())
            self.returns[over] = 0.0
            self.observations = self.env.reset(over)
        else:
            self.observations = step.observation

    def env_state(self) -> dict[str, Any]:
        return {**self.env.state_dict(), "observations": self.observations.clone(),
                "returns": self.returns.clone()}

    def load_env_state(self, state: dict[str, Any]) -> None:
        self.env.load_state_dict(state)
        self.observations, self.returns = state["observations"].clone(), state["returns"].clone()


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
    if config.envs == 1:
        return DQN(config, model, loss, data, ctx, optimizer)
    if not isinstance(data.config, CartPoleConfig):
        raise UsageError(f"algorithm.envs={config.envs}: only CartPole steps many environments at once "
                         "(its batched torch twin); set algorithm.envs=1 for Atari")
    return VectorDQN(config, model, loss, data, ctx, optimizer)
