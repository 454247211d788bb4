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
* algorithm -- DQN: epsilon-greedy acting, replay memory, target network, Adam
  (algorithms/qlearning.py); on CartPole it acts in ten environments at once, stepped in torch.

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

import dataclasses
import itertools
import math
import statistics
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from ..algorithms.qlearning import DQNConfig, dqn
from ..algorithms.replay import Transitions
from ..data.environments import AtariConfig, CartPoleConfig, Environments, environments
from ..spec import Claim, Component, Metric, Milestone, Point, Recipe, Verdict
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
    if not torch.is_autocast_enabled(x.device.type):  # entering the context costs as much as a tiny layer
        return module(x.float())
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
# Algorithm: DQN, counted in environment steps (algorithms/qlearning.py holds the procedure).

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
# 2.5e-4), with epsilon annealed over 50k steps instead of half the run, so that 200k steps suffice;
# acting in 10 CartPoles at once, so each gradient step follows one batched act (VectorDQN).
CARTPOLE_CPU = DQNConfig(steps=200_000, memory=10_000, batch_size=128, learning_starts=1000, train_every=10,
                         target_every=500, epsilon_start=1.0, epsilon_end=0.05, exploration_steps=50_000,
                         lr=2.5e-4, adam_eps=1e-8, eval_epsilon=0.0, val_episodes=10, test_episodes=30,
                         envs=10)
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
