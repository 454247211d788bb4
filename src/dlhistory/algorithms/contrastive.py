"""Contrastive pre-training, then a linear probe on the frozen features (Chen et al. 2020, SimCLR,
sections 2 and 4; the linear evaluation protocol of Zhang et al. 2016 and Oord et al. 2018); and the
supervised baseline that trains the same encoder end to end on the labels alone.

* :class:`ContrastivePretraining` -- two augmented views of each unlabeled image, the encoder and the
  projection head, the NT-Xent loss; a k-nearest-neighbour monitor on validation (Wu et al. 2018);
* :class:`LinearProbe` -- the encoder frozen, logistic regression on its features of a label budget,
  its regularisation C chosen on validation;
* :class:`SupervisedTraining` -- encoder and linear head trained with cross-entropy on the same budget
  and augmentations.

The networks are the model component's dict ``{"encoder", "projection", "head"}``; the loss is the loss
component's dict ``{"contrastive", "classification"}``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from threadpoolctl import threadpool_limits
from torch import nn

from ..data.seeds import mix_seeds
from ..spec import Context, Panel, Phase
from .supervised import OptimizerState, descend, set_learning_rate


def warmup_cosine(lr: float, step: int, warmup_steps: int, total_steps: int) -> float:
    """Linear warm-up, then cosine decay to 0 without restarts (SimCLR, section B.6)."""
    if step < warmup_steps:
        return lr * (step + 1) / warmup_steps
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return 0.5 * lr * (1 + math.cos(math.pi * min(1.0, progress)))


class _Training(OptimizerState):
    """Adam on a warm-up-then-cosine schedule: what both trained procedures do the same way."""

    config: Any
    total_steps: int

    def _step(self, step: int, loss: torch.Tensor) -> float:
        lr = warmup_cosine(self.config.lr, step, self.config.warmup_steps, self.total_steps)
        set_learning_rate(self.optimizer, lr)
        descend(self.optimizer, loss)
        return lr


@torch.no_grad()
def features(encoder: nn.Module, batches) -> tuple[torch.Tensor, torch.Tensor]:
    """(features (N, D), labels (N,)) of the encoder in evaluation mode over (images, labels) batches."""
    encoder.eval()
    out, labels = [], []
    for x, y in batches:
        out.append(encoder(x).float().cpu())
        labels.append(y.cpu())
    return torch.cat(out), torch.cat(labels)


def knn_accuracy(bank: torch.Tensor, bank_labels: torch.Tensor, queries: torch.Tensor, labels: torch.Tensor,
                 k: int, classes: int) -> float:
    """Accuracy of a k-nearest-neighbour vote in cosine similarity, each neighbour weighted by
    exp(similarity / 0.1) (Wu et al. 2018, the monitor SimCLR reproductions use).

    The similarities are float32 even under bf16 autocast: bf16 keeps 8 bits of a cosine, which would
    reorder close neighbours (and its votes could not be added to float32 counts)."""
    bank = nn.functional.normalize(bank.float(), dim=1)
    queries = nn.functional.normalize(queries.float(), dim=1)
    correct = 0
    for start in range(0, len(queries), 1000):
        with torch.autocast(queries.device.type, enabled=False):
            similarity = queries[start:start + 1000] @ bank.T  # (q, N)
        top, index = similarity.topk(min(k, len(bank)), dim=1)
        votes = torch.zeros(len(top), classes).scatter_add_(1, bank_labels[index], (top / 0.1).exp())
        correct += int((votes.argmax(1) == labels[start:start + 1000]).sum())
    return correct / len(queries)


@dataclass(frozen=True)
class ContrastiveConfig:
    """SimCLR's pre-training. The paper: LARS, batch 4096, lr 4.8, 100 to 800 epochs; at small batch on
    a CPU, Adam with a warm-up and cosine decay trains the same objective."""

    steps: int = 1500
    batch_size: int = 256
    """Images per step; each gives two views, so 2 (batch_size - 1) negatives per pair."""
    lr: float = 1e-3
    warmup_steps: int = 100
    weight_decay: float = 1e-6
    knn_k: int = 20
    knn_bank: int = 10_000
    """Labelled training images the kNN monitor votes with (the monitor only watches; nothing is
    chosen by it)."""

    def __post_init__(self) -> None:
        if min(self.steps, self.batch_size - 1, self.knn_k, self.knn_bank) < 1 or self.warmup_steps < 0:
            raise ValueError("needs steps, knn_k, knn_bank >= 1, batch_size >= 2 and warmup_steps >= 0")
        if not self.lr > 0 or self.weight_decay < 0:
            raise ValueError("needs lr > 0 and weight_decay >= 0")


class ContrastivePretraining(_Training):
    """Section 2.1: for each image two random views, encoded then projected; NT-Xent pulls each pair
    together against the other 2N - 2 views of the batch."""

    panels = (Panel("loss", ("train",), "NT-Xent loss"),
              Panel("knn_accuracy", ("val",), "kNN accuracy (validation)", percent=True))

    def __init__(self, config: ContrastiveConfig, networks: dict[str, nn.Module], loss: dict, data,
                 ctx: Context):
        self.config, self.data, self.ctx = config, data, ctx
        self.encoder, self.projection = networks["encoder"], networks["projection"]
        self.nt_xent = loss["contrastive"]
        self.total_steps, self.samples_per_step = config.steps, config.batch_size
        self.modules = {"encoder": self.encoder, "projection": self.projection}
        params = [*self.encoder.parameters(), *self.projection.parameters()]
        self.optimizer = torch.optim.AdamW(params, config.lr, weight_decay=config.weight_decay)

    def cost_key(self, step: int) -> int:
        return 0

    def update(self, step: int) -> dict[str, Any]:
        first, second = self.data.views(step, self.config.batch_size // self.ctx.world_size,
                                        mix_seeds(self.ctx.seed, self.ctx.rank, step))
        self.encoder.train()
        self.projection.train()
        z = self.projection(self.encoder(torch.cat([first, second])))
        loss = self.nt_xent(*z.chunk(2))
        return {"loss": loss.detach(), "lr": self._step(step, loss)}

    def evaluate(self, split: str) -> dict[str, float]:
        """'val': the kNN monitor's accuracy, the labelled training images voting for the validation ones."""
        if split != "val":
            return {}
        bank_batches = self.data.eval_batches("train", 500, self.config.knn_bank)
        bank, bank_labels = features(self.encoder, bank_batches)
        queries, labels = features(self.encoder, self.data.eval_batches("val", 500))
        return {"knn_accuracy": knn_accuracy(bank, bank_labels, queries, labels, self.config.knn_k,
                                             self.data.num_classes)}


@dataclass(frozen=True)
class ProbeConfig:
    """The linear evaluation protocol: logistic regression on frozen features of a label budget."""

    labels: int | None = None
    """The label budget (class-balanced, nested per seed); None: every training image."""
    Cs: tuple[float, ...] = (0.01, 0.1, 1.0, 10.0, 100.0)
    """Inverse regularisation strengths tried; the best on validation is kept."""


class LinearProbe:
    """One step: the frozen encoder's features, standardised, then scikit-learn's logistic regression
    for each C; the classifier best on validation is kept and scored."""

    total_steps = 1

    def __init__(self, config: ProbeConfig, networks: dict[str, nn.Module], loss, data, ctx: Context):
        self.config, self.data = config, data
        self.encoder = networks["encoder"]
        self.samples_per_step = len(data.budget(config.labels))
        self.modules = {"encoder": self.encoder}  # unchanged, kept with the run for its tools
        self.classifier, self.scaler, self.C = None, None, math.nan
        self._features: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def _split(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        if split not in self._features:
            x, y = features(self.encoder, self.data.eval_batches(split, 500, self.config.labels))
            self._features[split] = (x.double().numpy(), y.numpy())
        return self._features[split]

    def update(self, step: int) -> dict[str, float]:
        from sklearn.linear_model import LogisticRegression
        from sklearn.preprocessing import StandardScaler

        x, y = self._split("train")
        self.scaler = StandardScaler().fit(x)
        x = self.scaler.transform(x)
        val_x, val_y = self._split("val")
        val_x = self.scaler.transform(val_x)
        best = None
        # numpy's BLAS threads as many as torch's: its own default spins on a core another process
        # computes on (a fit of 20,000 x 16 features took 190 s with two threads beside the review).
        # The Cs are fitted from the most regularised up, each fit starting where the last one stopped
        # (a regularisation path): the same stopping rule, a third of the time with all 55,000 labels.
        previous = None
        with threadpool_limits(torch.get_num_threads()):
            for C in sorted(self.config.Cs):
                fitted = LogisticRegression(C=C, max_iter=2000, warm_start=True)
                if previous is not None:
                    fitted.coef_, fitted.intercept_ = previous.coef_.copy(), previous.intercept_.copy()
                previous = fitted.fit(x, y)
                accuracy = float(np.mean(fitted.predict(val_x) == val_y))
                if best is None or accuracy > best[0]:  # ties: the smaller C, tried first
                    best = (accuracy, C, fitted)
        _, self.C, self.classifier = best
        return {"C": self.C}

    def evaluate(self, split: str) -> dict[str, float]:
        x, y = self._split(split)
        return {"accuracy": float(np.mean(self.classifier.predict(self.scaler.transform(x)) == y))}

    def provenance(self) -> dict[str, float]:
        return {"C": self.C}

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


@dataclass(frozen=True)
class SupervisedConfig:
    """The baseline: the encoder and a linear head trained end to end on the label budget, with the
    same augmentations, Adam on a warm-up-then-cosine schedule."""

    labels: int | None = None
    epochs: float = 30.0
    max_steps: int = 1500
    """At most this many steps (the pre-training's count): 30 epochs of 600 labels are 70 steps, of
    all 55,000 labels 6,400."""
    min_steps: int = 200
    batch_size: int = 256
    lr: float = 1e-3
    warmup_steps: int = 20
    weight_decay: float = 1e-4

    def __post_init__(self) -> None:
        if min(self.batch_size, self.max_steps) < 1 or not 0 <= self.min_steps <= self.max_steps:
            raise ValueError("needs batch_size, max_steps >= 1 and 0 <= min_steps <= max_steps")
        if not (self.epochs > 0 and self.lr > 0 and self.weight_decay >= 0 and self.warmup_steps >= 0):
            raise ValueError("needs epochs > 0, lr > 0, weight_decay >= 0 and warmup_steps >= 0")


class SupervisedTraining(_Training):
    """Cross-entropy on augmented labelled batches, the encoder and the head trained together."""

    panels = (Panel("accuracy", label="validation accuracy", percent=True),)

    def __init__(self, config: SupervisedConfig, networks: dict[str, nn.Module], loss: dict, data,
                 ctx: Context):
        self.config, self.data, self.ctx = config, data, ctx
        self.encoder, self.head = networks["encoder"], networks["head"]
        self.cross_entropy = loss["classification"]
        labels = len(data.budget(config.labels))
        steps = math.ceil(config.epochs * labels / config.batch_size)
        self.total_steps = min(config.max_steps, max(config.min_steps, steps))
        self.samples_per_step = min(config.batch_size, labels)
        self.modules = {"encoder": self.encoder, "head": self.head}
        params = [*self.encoder.parameters(), *self.head.parameters()]
        self.optimizer = torch.optim.AdamW(params, config.lr, weight_decay=config.weight_decay)

    def update(self, step: int) -> dict[str, Any]:
        x, y = self.data.labelled_batch(step, self.config.batch_size, self.config.labels,
                                        mix_seeds(self.ctx.seed, self.ctx.rank, step))
        self.encoder.train()
        self.head.train()
        logits = self.head(self.encoder(x))
        loss = self.cross_entropy(logits, y)
        return {"loss": loss.detach(), "accuracy": (logits.argmax(1) == y).float().mean(),
                "lr": self._step(step, loss)}

    @torch.no_grad()
    def evaluate(self, split: str) -> dict[str, float]:
        self.head.eval()
        x, y = features(self.encoder, self.data.eval_batches(split, 500, self.config.labels))
        logits = self.head(x.to(next(self.head.parameters()).device))
        return {"loss": float(self.cross_entropy(logits, y.to(logits.device))),
                "accuracy": float((logits.argmax(1).cpu() == y).float().mean())}


@dataclass(frozen=True)
class ContrastiveThenProbeConfig:
    pretrain: ContrastiveConfig = field(default_factory=ContrastiveConfig)
    probe: ProbeConfig = field(default_factory=ProbeConfig)


@dataclass(frozen=True)
class ProbeOnlyConfig:
    """The probe of an encoder as initialised: what the architecture alone gives."""

    probe: ProbeConfig = field(default_factory=ProbeConfig)


def contrastive_then_probe(config: ContrastiveThenProbeConfig, networks, loss, data,
                           ctx: Context) -> tuple[Phase, ...]:
    """Two phases: the pre-training is stored once per seed and reused by the probe at every budget."""
    return (Phase("pretrain", config.pretrain, ContrastivePretraining),
            Phase("probe", config.probe, LinearProbe))


def probe_only(config: ProbeOnlyConfig, networks, loss, data, ctx: Context) -> tuple[Phase, ...]:
    return (Phase("probe", config.probe, LinearProbe),)


def supervised(config: SupervisedConfig, networks, loss, data, ctx: Context) -> SupervisedTraining:
    return SupervisedTraining(config, networks, loss, data, ctx)
