"""Pre-train on unlabeled text, then fine-tune on a label budget: BERT's two phases.

Devlin, Chang, Lee & Toutanova, "BERT: Pre-training of Deep Bidirectional Transformers for Language
Understanding", NAACL 2019, sections 3.1 (pre-training) and 3.2 (fine-tuning), appendix A.2.

* :class:`MaskedLMPretraining` trains the encoder and its masked-LM head on windows of unlabeled text,
  with BERT's masking drawn afresh at every step;
* :class:`FineTuning` trains the encoder and a fresh classifier on the labelled sentences of a budget.

Both use Adam with decoupled weight decay on the matrices (BERT's ``AdamWeightDecayOptimizer``; AdamW,
Loshchilov & Hutter 2019), a learning rate warmed up linearly and then decayed linearly to zero, and the
global gradient norm clipped at 1 (BERT's ``optimization.py``). Budgets are steps, never seconds.

The networks are the model component's dict ``{"encoder", "mlm_head", "classifier"}``; the loss is the
loss component's dict ``{"mlm", "classification"}``. A model trained from scratch runs the fine-tuning
phase alone (:func:`fine_tune_only`), with the same recipe.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ..data.polarity import check_budget
from ..data.seeds import mix_seeds
from ..spec import Context, Panel, Phase
from .supervised import OptimizerState, descend, parameter_groups, set_learning_rate

EVALUATION_MASKING_SEED = 20181011
"""The masking of the validation sentences, fixed: every evaluation scores the same masked positions."""


def linear_warmup_decay(lr: float, step: int, warmup_steps: int, total_steps: int) -> float:
    """BERT's schedule: linear warm-up to ``lr`` over ``warmup_steps``, then linear decay to 0."""
    if step < warmup_steps:
        return lr * (step + 1) / warmup_steps
    return lr * max(0.0, (total_steps - step) / max(1, total_steps - warmup_steps))


@dataclass(frozen=True)
class PretrainingConfig:
    """The masked-LM phase. BERT-base: 1M steps of 256 sequences, lr 1e-4 warmed up over 10k steps,
    weight decay 0.01, betas (0.9, 0.999); small models take a larger learning rate."""

    steps: int = 3000
    batch_size: int = 32
    """Windows of ``data.max_length`` tokens per step (3,000 steps of 32 x 64 tokens are 6.1M
    tokens, about 6 passes over the corpus)."""
    lr: float = 5e-4
    warmup_steps: int = 300
    weight_decay: float = 0.01
    beta2: float = 0.999
    grad_clip: float = 1.0
    eval_batch_size: int = 256

    def __post_init__(self) -> None:
        if min(self.steps, self.batch_size, self.eval_batch_size) < 1 or self.warmup_steps < 0:
            raise ValueError("needs steps, batch_size and eval_batch_size >= 1 and warmup_steps >= 0")
        _check_optimizer(self.lr, self.weight_decay, self.beta2, self.grad_clip)


@dataclass(frozen=True)
class FineTuningConfig:
    """The classification phase on a label budget. BERT (section 4.1, appendix A.3): batch 16 or 32,
    lr 5e-5, 3e-5 or 2e-5, 2 to 4 epochs, warm-up over the first 10% of steps."""

    labels: int | None = None
    """The label budget: labelled training sentences (class-balanced, nested); None: all 8,530."""
    epochs: float = 3.0
    min_steps: int = 200
    """Steps a small budget still gets: 3 epochs of 250 labels would be 24 steps."""
    batch_size: int = 32
    lr: float = 1e-4
    warmup: float = 0.1
    """The fraction of the steps spent warming up."""
    weight_decay: float = 0.01
    beta2: float = 0.999
    grad_clip: float = 1.0
    eval_batch_size: int = 256

    def __post_init__(self) -> None:
        if min(self.batch_size, self.eval_batch_size) < 1 or self.min_steps < 0 or not self.epochs > 0:
            raise ValueError("needs batch_size and eval_batch_size >= 1, min_steps >= 0 and epochs > 0")
        if not 0 <= self.warmup < 1:
            raise ValueError(f"warmup {self.warmup}: a fraction of the steps, 0 <= warmup < 1")
        if self.labels is not None:
            check_budget(self.labels)
        _check_optimizer(self.lr, self.weight_decay, self.beta2, self.grad_clip)


def _check_optimizer(lr: float, weight_decay: float, beta2: float, grad_clip: float) -> None:
    if not (lr > 0 and weight_decay >= 0 and 0 <= beta2 < 1 and grad_clip >= 0):
        raise ValueError("needs lr > 0, weight_decay >= 0, 0 <= beta2 < 1 and grad_clip >= 0")


def adamw(modules: list[nn.Module], lr: float, weight_decay: float, beta2: float) -> torch.optim.AdamW:
    """AdamW over the parameters of ``modules`` (a tied parameter once), decay on matrices only."""
    return torch.optim.AdamW(parameter_groups(nn.ModuleList(modules), weight_decay), lr=lr,
                             betas=(0.9, beta2), eps=1e-6)  # BERT's epsilon


class _Phase(OptimizerState):
    """What both phases do the same way: the schedule, one clipped AdamW step."""

    config: Any
    total_steps: int
    warmup_steps: int

    def _step(self, step: int, loss: torch.Tensor) -> float:
        lr = linear_warmup_decay(self.config.lr, step, self.warmup_steps, self.total_steps)
        set_learning_rate(self.optimizer, lr)
        descend(self.optimizer, loss, self.config.grad_clip)
        return lr


class MaskedLMPretraining(_Phase):
    """Section 3.1, "Task #1: Masked LM": hide 15% of the tokens of unlabeled text, predict them."""

    panels = (Panel("loss", ("train", "val"), "masked-LM loss (nats)"),
              Panel("accuracy", ("val",), "masked tokens predicted (validation)", percent=True))

    def __init__(self, config: PretrainingConfig, networks: dict[str, nn.Module], loss: dict, data,
                 ctx: Context):
        self.config, self.data, self.ctx = config, data, ctx
        self.encoder, self.head, self.mlm = networks["encoder"], networks["mlm_head"], loss["mlm"]
        self.total_steps, self.warmup_steps = config.steps, config.warmup_steps
        self.samples_per_step = config.batch_size
        self.modules = {"encoder": self.encoder, "mlm_head": self.head}
        self.optimizer = adamw([self.encoder, self.head], config.lr, config.weight_decay, config.beta2)

    def cost_key(self, step: int) -> int:
        return 0  # every step is batch_size full windows, 15% of them predicted: the same FLOPs

    def update(self, step: int) -> dict[str, Any]:
        ids, mask = self.data.pretraining_batch(step, self.config.batch_size // self.ctx.world_size,
                                                self.ctx.seed)
        # The masking is drawn from its own stream of (seed, rank, step), apart from the batch's.
        seed = mix_seeds(self.ctx.seed, self.ctx.rank, step, 1)
        generator = torch.Generator(device=ids.device).manual_seed(seed)
        self.encoder.train()
        self.head.train()
        loss, correct, chosen = self._masked_lm(ids, mask, generator)
        lr = self._step(step, loss)
        return {"loss": loss.detach(), "accuracy": correct / max(chosen, 1), "lr": lr}

    def _masked_lm(self, ids: torch.Tensor, mask: torch.Tensor,
                   generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor, int]:
        """(mean loss, correct predictions, positions predicted): the head runs at the chosen positions
        only (BERT's ``gather_indexes``), a sixth of the cost of scoring every position."""
        inputs, targets = self.mlm.mask(ids, mask, self.data.vocab_size, generator)
        chosen = targets != self.mlm.ignore
        logits = self.head(self.encoder(inputs, mask)[chosen])  # (N, V)
        loss = self.mlm(logits, targets[chosen])
        return loss, (logits.argmax(-1) == targets[chosen]).sum(), int(chosen.sum())

    @torch.no_grad()
    def evaluate(self, split: str) -> dict[str, float]:
        """Masked-LM loss and accuracy on the validation sentences, always masked the same way. The
        pre-training never sees the labelled test split, and its training windows are logged as it goes."""
        if split != "val":
            return {}
        self.encoder.eval()
        self.head.eval()
        device = self.data.splits["val"].ids.device
        generator = torch.Generator(device=device).manual_seed(EVALUATION_MASKING_SEED)
        total, correct, count = 0.0, 0, 0
        for ids, mask, _ in self.data.eval_batches("val", self.config.eval_batch_size):
            loss, right, chosen = self._masked_lm(ids, mask, generator)
            total, correct, count = total + float(loss) * chosen, correct + int(right), count + chosen
        return {"loss": total / max(count, 1), "accuracy": correct / max(count, 1)}


class FineTuning(_Phase):
    """Section 3.2: the encoder and a new classifier on the [CLS] position, trained end to end on the
    labels of the budget; scored by accuracy."""

    panels = (Panel("accuracy", label="validation accuracy", percent=True),)

    def __init__(self, config: FineTuningConfig, networks: dict[str, nn.Module], loss: dict, data,
                 ctx: Context):
        self.config, self.data, self.ctx = config, data, ctx
        self.encoder, self.classifier = networks["encoder"], networks["classifier"]
        self.cross_entropy = loss["classification"]
        labels = len(data.budget(config.labels))
        self.total_steps = max(config.min_steps, math.ceil(config.epochs * labels / config.batch_size))
        self.warmup_steps = round(config.warmup * self.total_steps)
        self.samples_per_step = min(config.batch_size, labels)
        self.modules = {"encoder": self.encoder, "classifier": self.classifier}
        self.optimizer = adamw([self.encoder, self.classifier], config.lr, config.weight_decay, config.beta2)

    def update(self, step: int) -> dict[str, Any]:
        ids, mask, labels = self.data.train_batch(step, self.config.batch_size, self.config.labels)
        self.encoder.train()
        self.classifier.train()
        logits = self.classifier(self.encoder(ids, mask))
        loss = self.cross_entropy(logits, labels)
        lr = self._step(step, loss)
        return {"loss": loss.detach(), "accuracy": (logits.argmax(1) == labels).float().mean(), "lr": lr}

    @torch.no_grad()
    def evaluate(self, split: str) -> dict[str, float]:
        """Loss and accuracy on ``split`` ('train': the budget's labelled sentences)."""
        self.encoder.eval()
        self.classifier.eval()
        total, correct, count = 0.0, 0, 0
        batches = self.data.eval_batches(split, self.config.eval_batch_size, self.config.labels)
        for ids, mask, labels in batches:
            logits = self.classifier(self.encoder(ids, mask))
            total += float(self.cross_entropy(logits, labels, reduction="sum"))
            correct, count = correct + int((logits.argmax(1) == labels).sum()), count + len(labels)
        return {"loss": total / count, "accuracy": correct / count}


@dataclass(frozen=True)
class PretrainThenFineTuneConfig:
    """BERT's recipe: the masked-LM phase once per seed, then fine-tuning (at each label budget)."""

    pretrain: PretrainingConfig = field(default_factory=PretrainingConfig)
    finetune: FineTuningConfig = field(default_factory=FineTuningConfig)


@dataclass(frozen=True)
class FineTuneOnlyConfig:
    """The same fine-tuning from randomly initialised weights: no pre-training phase."""

    finetune: FineTuningConfig = field(default_factory=FineTuningConfig)


def pretrain_then_fine_tune(config: PretrainThenFineTuneConfig, networks, loss, data,
                            ctx: Context) -> tuple[Phase, ...]:
    """Two phases on the same networks; the runner stores the first and reuses it for every budget."""
    return (Phase("pretrain", config.pretrain, MaskedLMPretraining),
            Phase("finetune", config.finetune, FineTuning))


def fine_tune_only(config: FineTuneOnlyConfig, networks, loss, data, ctx: Context) -> tuple[Phase, ...]:
    return (Phase("finetune", config.finetune, FineTuning),)
