"""Training a language model on next-token prediction, as GPT-2 and nanoGPT do.

AdamW (Loshchilov & Hutter 2019) with weight decay on matrices only, a linear warm-up then cosine
decay, global gradient-norm clipping (Pascanu et al. 2013); optionally Muon (Jordan et al. 2024) for
the hidden matrices. Batches are random windows the data draws from (seed, step); the schedule is a
pure function of the step; a budget is a number of tokens, or of training FLOPs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import nn

from ..spec import Context, Panel
from .muon import Muon
from .supervised import parameter_groups, set_learning_rate


@dataclass(frozen=True)
class LanguageModelTrainingConfig:
    """GPT-2/nanoGPT training: AdamW (Loshchilov & Hutter 2019) with weight decay on matrices only,
    linear warm-up then cosine decay to ``min_lr``, global gradient-norm clipping."""

    tokens: int = 5_000_000
    """Training tokens: steps of ``batch_size`` windows of ``block_size`` tokens until this many."""
    flops: float | None = None
    """A training-FLOP budget instead (the run stops at whichever comes first)."""
    batch_size: int = 32
    lr: float = 2e-3
    min_lr: float = 2e-4
    """Where the cosine ends (nanoGPT: lr / 10)."""
    warmup_steps: int = 100
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.99
    """0.99 rather than GPT-2's 0.95: few tokens per step (nanoGPT's shakespeare_char does the same)."""
    grad_clip: float = 1.0
    optimizer: Literal["adamw", "muon"] = "adamw"
    """'muon': the hidden layers' matrices follow Muon (algorithms/muon.py; Jordan et al. 2024), with its
    learning rate matched to AdamW's update size; embeddings, biases and norms stay on AdamW."""
    ns_steps: int = 5
    """Muon's Newton-Schulz steps (Jordan et al.: five take every singular value near one)."""
    ns_dtype: Literal["float32", "bfloat16"] = "float32"
    """Where Muon orthogonalises: float32 (cheap at these sizes on any CPU) or bfloat16 (torch's
    choice: faster on GPUs, emulated and 2.4x slower a step on CPUs without bf16 units)."""
    eval_batch_size: int = 32
    """Windows per forward pass at evaluation."""

    def __post_init__(self) -> None:
        if min(self.tokens, self.batch_size, self.eval_batch_size) < 1 or self.warmup_steps < 0:
            raise ValueError("needs tokens, batch_size and eval_batch_size >= 1 and warmup_steps >= 0")
        if not 0 < self.min_lr <= self.lr or self.weight_decay < 0 or self.grad_clip < 0:
            raise ValueError("needs 0 < min_lr <= lr, weight_decay >= 0 and grad_clip >= 0")
        if not (0 <= self.beta1 < 1 and 0 <= self.beta2 < 1):
            raise ValueError("needs betas in [0, 1)")
        if self.ns_steps < 1:
            raise ValueError("needs ns_steps >= 1")
        if self.flops is not None and self.flops <= 0:
            raise ValueError("needs flops > 0 (or none)")


def cosine_learning_rate(config: LanguageModelTrainingConfig, step: int, total_steps: int) -> float:
    """Linear warm-up over ``warmup_steps``, then half a cosine from ``lr`` down to ``min_lr``."""
    if step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    progress = (step - config.warmup_steps) / max(1, total_steps - config.warmup_steps)
    return config.min_lr + 0.5 * (config.lr - config.min_lr) * (1 + math.cos(math.pi * min(1.0, progress)))


def optimizers(config: LanguageModelTrainingConfig, model: nn.Module) -> list[torch.optim.Optimizer]:
    """AdamW with weight decay on matrices only; with Muon, the blocks' matrices go to Muon instead."""
    # fused: one kernel updates every tensor (nanoGPT's CPU-recipe GPT: AdamW's step 9 -> 2.8 ms).
    adamw = dict(lr=config.lr, betas=(config.beta1, config.beta2), fused=True)
    if config.optimizer == "adamw":
        return [torch.optim.AdamW(parameter_groups(model, config.weight_decay), **adamw)]
    net = getattr(model, "module", model)
    hidden = {id(p) for block in net.blocks for p in block.parameters() if p.ndim == 2}
    rest = [p for p in model.parameters() if id(p) not in hidden]
    muon = [p for p in model.parameters() if id(p) in hidden]
    return [Muon(muon, lr=config.lr, weight_decay=config.weight_decay, ns_steps=config.ns_steps,
                 ns_dtype=config.ns_dtype),
            torch.optim.AdamW([{"params": [p for p in rest if p.ndim > 1],
                                "weight_decay": config.weight_decay},
                               {"params": [p for p in rest if p.ndim <= 1], "weight_decay": 0.0}], **adamw)]


class LanguageModelTraining:
    """Next-token prediction on random windows; evaluation on whole splits."""

    panels = (Panel("loss", ("train", "val"), "loss (nats per token)"),)

    def __init__(self, config: LanguageModelTrainingConfig, model: nn.Module, loss, data,
                 ctx: Context):
        self.config, self.model, self.loss, self.data = config, model, loss, data
        tokens_per_step = config.batch_size * data.block_size
        self.total_steps = math.ceil(config.tokens / tokens_per_step)
        self.budget_flops = config.flops
        self.samples_per_step = config.batch_size
        self.modules = {"model": model}
        self.optimizers = optimizers(config, model)
        self.batch_size = config.batch_size // ctx.world_size  # windows per process

    def cost_key(self, step: int) -> int:
        return 0  # every step is batch_size windows of block_size tokens: the same FLOPs

    def update(self, step: int) -> dict[str, Any]:
        lr = cosine_learning_rate(self.config, step, self.total_steps)
        for optimizer in self.optimizers:
            set_learning_rate(optimizer, lr)
        x, y = self.data.batch(step, self.batch_size)
        self.model.train()
        loss = self.loss(self.model(x), y)
        for optimizer in self.optimizers:
            optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.config.grad_clip:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.grad_clip)
        for optimizer in self.optimizers:
            optimizer.step()
        return {"loss": loss.detach(), "lr": lr}

    @torch.no_grad()
    def evaluate(self, split: str) -> dict[str, float]:
        """Mean next-token loss over the split's windows ('test' has none: Tiny Shakespeare has two
        splits, as in nanoGPT). A BPE model's loss per character is beside its loss per token."""
        if split == "test":
            return {}
        net = getattr(self.model, "module", self.model)
        net.eval()
        inputs, targets = self.data.evaluation_windows(split)
        total = 0.0
        for i in range(0, len(inputs), self.config.eval_batch_size):
            x, y = inputs[i: i + self.config.eval_batch_size], targets[i: i + self.config.eval_batch_size]
            total += float(self.loss(net(x), y)) * len(x)
        loss = total / len(inputs)
        return {"loss": loss, "loss_per_char": loss * self.data.tokens_per_character(split)}

    def provenance(self) -> dict[str, Any]:
        net = getattr(self.model, "module", self.model)
        return {"non_embedding_parameters": net.non_embedding_parameters(),
                "tokens": self.total_steps * self.config.batch_size * self.data.block_size}

    def state_dict(self) -> dict:
        return {"optimizers": [o.state_dict() for o in self.optimizers]}

    def load_state_dict(self, state: dict) -> None:
        for optimizer, saved in zip(self.optimizers, state["optimizers"], strict=True):
            optimizer.load_state_dict(saved)


def language_model_training(config: LanguageModelTrainingConfig, model, loss, data,
                            ctx: Context) -> LanguageModelTraining:
    return LanguageModelTraining(config, model, loss, data, ctx)
