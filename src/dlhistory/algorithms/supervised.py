"""Mini-batch stochastic gradient training: the workhorse of supervised learning.

Krizhevsky, Sutskever & Hinton (2012) trained AlexNet with batch 128, momentum 0.9 and weight decay
5e-4; He et al. (2015) trained ResNets the same way; Kingma & Ba (2015) changed only the update rule.
So the procedure here takes its optimizer from the algorithm's builder. The learning-rate schedule is a
pure function of the step, so it has no state to checkpoint and a resumed run follows the same schedule.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch

from ..spec import Context, Panel


@dataclass(frozen=True)
class TrainingConfig:
    """What every mini-batch training run has, whatever its update rule: budget, batch and schedule."""

    epochs: float = 10.0
    """Passes over the training split (fractions allowed)."""
    batch_size: int = 128
    """Examples per step, over all processes together."""
    lr: float = 0.05
    """Peak learning rate (the paper's alpha or eta)."""
    schedule: Literal["constant", "onecycle", "cosine", "step", "rsqrt"] = "onecycle"
    """'onecycle': linear warm-up then cosine decay; 'step': divide by 10 at 50% and 75% (He et al.);
    'rsqrt': alpha / sqrt(t) at step t = 1, 2, ... (Kingma & Ba's logistic-regression experiment)."""
    warmup: float = 0.15
    """Fraction of the steps spent warming up (onecycle and cosine)."""
    eval_batch_size: int = 1000

    def __post_init__(self) -> None:
        if self.epochs <= 0 or self.batch_size < 1 or self.lr < 0 or self.eval_batch_size < 1:
            raise ValueError("needs epochs > 0, batch_size >= 1, lr >= 0 and eval_batch_size >= 1")


@dataclass(frozen=True)
class SGDConfig(TrainingConfig):
    """Mini-batch SGD with (Nesterov) momentum and weight decay."""

    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 5e-4
    """L2 penalty added to the gradient (not applied to biases and normalisation parameters)."""


def learning_rate(config: TrainingConfig, step: int, total_steps: int) -> float:
    """The learning rate at ``step`` (0-based) of ``total_steps``."""
    t = step / max(1, total_steps)
    if config.schedule == "constant":
        return config.lr
    if config.schedule == "rsqrt":
        return config.lr / math.sqrt(step + 1)
    if config.schedule == "step":
        return config.lr * 0.1 ** ((t >= 0.5) + (t >= 0.75))
    if t < config.warmup:
        return config.lr * (0.04 + 0.96 * t / config.warmup)
    progress = (t - config.warmup) / max(1e-12, 1 - config.warmup)
    return config.lr * 0.5 * (1 + math.cos(math.pi * progress))


def parameter_groups(model: torch.nn.Module, weight_decay: float) -> list[dict]:
    """Weight decay on weights only: decaying biases and batch-norm scales only hurts."""
    decay = [p for p in model.parameters() if p.requires_grad and p.ndim > 1]
    no_decay = [p for p in model.parameters() if p.requires_grad and p.ndim <= 1]
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def set_learning_rate(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr


def descend(optimizer: torch.optim.Optimizer, loss: torch.Tensor, clip: float = 0.0) -> None:
    """One gradient step on ``loss``: clear the gradients, backpropagate, clip the global gradient norm
    to ``clip`` (0: no clipping; Pascanu et al. 2013), update."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if clip:
        params = [p for group in optimizer.param_groups for p in group["params"]]
        torch.nn.utils.clip_grad_norm_(params, clip)
    optimizer.step()


class OptimizerState:
    """A procedure whose only state besides the weights is its optimizer's (the schedule is a pure
    function of the step), so that is what its checkpoint holds."""

    optimizer: torch.optim.Optimizer

    def state_dict(self) -> dict:
        return {"optimizer": self.optimizer.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.optimizer.load_state_dict(state["optimizer"])


class MinibatchTraining(OptimizerState):
    """Supervised training: sample a batch, compute the loss, step the optimizer it was given."""

    panels = (Panel("accuracy", label="validation accuracy", percent=True),)

    def __init__(self, config: TrainingConfig, model: torch.nn.Module, loss, data,
                 optimizer: torch.optim.Optimizer):
        self.config, self.model, self.loss, self.data = config, model, loss, data
        self.total_steps = math.ceil(config.epochs * data.steps_per_epoch(config.batch_size))
        self.samples_per_step = config.batch_size
        self.modules = {"model": model}
        self.optimizer = optimizer

    def cost_key(self, step: int) -> int:
        return 0  # every batch has batch_size examples of one shape: every step costs the same FLOPs

    def update(self, step: int) -> dict[str, torch.Tensor]:
        lr = learning_rate(self.config, step, self.total_steps)
        set_learning_rate(self.optimizer, lr)
        x, y = self.data.train_batch(step, self.config.batch_size)
        self.model.train()
        loss, metrics = self.loss(self.model(x), y)
        descend(self.optimizer, loss)
        return {"loss": loss.detach(), **{k: v.detach() for k, v in metrics.items()}, "lr": lr}

    @torch.no_grad()
    def evaluate(self, split: str) -> dict[str, float]:
        net = getattr(self.model, "module", self.model)  # evaluate without DDP's collectives
        net.eval()
        totals: dict[str, float] = {}
        count = 0
        for x, y in self.data.eval_batches(split, self.config.eval_batch_size):
            loss, metrics = self.loss(net(x), y)
            for k, v in {"loss": loss, **metrics}.items():
                totals[k] = totals.get(k, 0.0) + v.item() * len(y)
            count += len(y)
        return {k: v / count for k, v in totals.items()}


def minibatch_sgd(config: SGDConfig, model, loss, data, ctx: Context) -> MinibatchTraining:
    """Mini-batch SGD with torch's fused implementation (the algorithm component's builder)."""
    optimizer = torch.optim.SGD(parameter_groups(model, config.weight_decay), lr=config.lr,
                                momentum=config.momentum, nesterov=config.nesterov)
    return MinibatchTraining(config, model, loss, data, optimizer)
