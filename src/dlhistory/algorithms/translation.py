"""Training a translation model: teacher forcing, Adam, clipped gradients, a budget in FLOPs.

The same procedure trains the 2014 recurrent encoder-decoders and the 2017 Transformer, so a comparison
between them changes only the model. Each step feeds the reference prefix ``<s> y_1 .. y_{i-1}`` to the
decoder and scores its prediction of ``y_i`` (teacher forcing, Williams & Zipser 1989); gradients are
clipped to a maximum norm (Pascanu et al. 2013; Sutskever et al. 2014 clipped at 5) because a recurrent
network's gradient can explode. The learning rate follows the Transformer's schedule (Vaswani et al.
2017, eq. 3): a linear warm-up, then decay with the inverse square root of the step.

The budget is training compute: the runner counts each step's FLOPs (``torch.utils.flop_counter``:
the matrix products of the forward and backward pass) and stops at the first step that reaches
``flops``. Models that differ in cost per step are compared at equal compute, as Vaswani et al. did in
their Table 2, and the same seed gives the same run on any machine. A step's count depends only on the
batch's shape (sentences, source width, target width: both models compute over the padding of a
length-bucketed batch), so the runner counts one step of each shape and reuses it (:meth:`cost_key`).

Evaluation reports the unsmoothed per-token loss and its perplexity on the split and, for validation
and test, BLEU (Papineni et al. 2002) of the translations against the references, computed by
sacrebleu on detokenized text with its default 13a tokenization (Post 2018), so the number is
comparable with published ones; every run records sacrebleu's signature of it. Test translations use
beam search; validation, evaluated many times during training, decodes greedily.
"""

from __future__ import annotations

import math
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Literal

import torch
from sacrebleu.metrics import BLEU

from ..spec import Context, Panel
from .decoding import beam_search
from .supervised import OptimizerState, descend, set_learning_rate


@dataclass(frozen=True)
class TranslationTrainingConfig:
    """Adam with warm-up and inverse-square-root decay, gradient clipping, a FLOP budget, beam search."""

    epochs: float = 10.0
    """Passes over the training pairs: the budget when ``flops`` is None, else only a cap on it."""
    flops: float | None = None
    """Training FLOPs (forward and backward, as ``torch.utils.flop_counter`` counts them): stop at the
    first step that reaches it. Every variant of a comparison gets the same number."""
    minutes: float | None = None
    """A user's wall-clock limit (stop at the first step after it); None in every preset: a budget in
    minutes gives a different run on every machine."""
    batch_size: int = 128
    """Sentence pairs per step."""
    lr: float = 1e-3
    """Peak learning rate, reached at the end of the warm-up."""
    schedule: Literal["inverse-sqrt", "constant"] = "inverse-sqrt"
    """'inverse-sqrt': lr * min(t / warmup_steps, sqrt(warmup_steps / t)) at step t = 1, 2, ...
    (Vaswani et al. eq. 3 with the peak as a parameter). It needs no total step count, which a FLOP
    budget does not fix in advance; but the warm-up must end well inside the shortest run it trains,
    or the rate only rises and the run ends at its peak."""
    warmup_steps: int = 100
    """Steps of linear warm-up (Vaswani et al.: 4,000 of 100,000, 4%)."""
    beta1: float = 0.9
    beta2: float = 0.98
    """Vaswani et al. used beta2 = 0.98 (Adam's default 0.999 adapts more slowly)."""
    eps: float = 1e-9
    clip: float = 1.0
    """Maximum global gradient norm (0: no clipping)."""
    beam: int = 5
    """Beam width for the test set (1: greedy); validation BLEU is always greedy."""
    alpha: float = 0.6
    """Length-penalty exponent of the beam search (0: raw log probability)."""
    eval_batch_size: int = 200
    train_eval_size: int = 1000
    """Training pairs scored at evaluation (the training loss, teacher-forced)."""

    def __post_init__(self) -> None:
        if self.epochs <= 0 or self.batch_size < 1 or self.lr < 0 or self.eval_batch_size < 1:
            raise ValueError("needs epochs > 0, batch_size >= 1, lr >= 0 and eval_batch_size >= 1")
        if self.warmup_steps < 1 or self.clip < 0 or self.beam < 1:
            raise ValueError("needs warmup_steps >= 1, clip >= 0 and beam >= 1")
        if any(limit is not None and limit <= 0 for limit in (self.flops, self.minutes)):
            raise ValueError("needs flops > 0 and minutes > 0 (or None)")


def learning_rate(config: TranslationTrainingConfig, step: int) -> float:
    """The rate at 0-based ``step``; a pure function of the step, so resuming follows the same curve."""
    if config.schedule == "constant":
        return config.lr
    t = step + 1
    return config.lr * min(t / config.warmup_steps, math.sqrt(config.warmup_steps / t))


class TranslationTraining(OptimizerState):
    """The procedure: one teacher-forced step per batch; evaluation by loss, perplexity and BLEU."""

    panels = (Panel("bleu", ("val",), "validation BLEU (greedy)"),)

    def __init__(self, config: TranslationTrainingConfig, model: torch.nn.Module, loss, data,
                 optimizer: torch.optim.Optimizer):
        self.config, self.model, self.loss, self.data, self.optimizer = config, model, loss, data, optimizer
        self.total_steps = math.ceil(config.epochs * data.steps_per_epoch(config.batch_size))
        self.samples_per_step = config.batch_size
        self.budget_flops = config.flops
        self.budget_seconds = None if config.minutes is None else 60 * config.minutes
        self.modules = {"model": model}
        self.metric = BLEU()  # corpus BLEU, 13a tokenization, cased: sacrebleu's defaults

    def cost_key(self, step: int) -> Hashable:
        """Steps whose batches have the same shape cost the same FLOPs: (sentences, source width,
        target width). The models compute over every padded position (none packs its sequences), so
        the count does not depend on the sentences' individual lengths."""
        return self.data.train_shape(step, self.config.batch_size)

    def provenance(self) -> dict[str, str]:
        """What the run's result records about how its numbers were made: sacrebleu's BLEU signature."""
        return {"bleu_signature": str(self.metric.get_signature())}

    def update(self, step: int) -> dict[str, torch.Tensor | float]:
        lr = learning_rate(self.config, step)
        set_learning_rate(self.optimizer, lr)
        batch = self.data.train_batch(step, self.config.batch_size)
        self.model.train()
        loss, sums = self.loss(self.model(batch.source, batch.target_in), batch.target)
        descend(self.optimizer, loss, self.config.clip)
        return {"loss": loss.detach(), "perplexity": torch.exp(sums["nll"] / sums["tokens"]), "lr": lr}

    @torch.no_grad()
    def evaluate(self, split: str) -> dict[str, float]:
        net = getattr(self.model, "module", self.model)
        net.eval()
        limit = self.config.train_eval_size if split == "train" else None
        nll = tokens = correct = 0.0
        for _, batch in self.data.eval_batches(split, self.config.eval_batch_size, limit):
            _, sums = self.loss(net(batch.source, batch.target_in), batch.target)
            nll += sums["nll"].item()
            tokens += sums["tokens"].item()
            correct += sums["correct"].item()
        metrics = {"loss": nll / tokens, "perplexity": math.exp(nll / tokens),
                   "token_accuracy": correct / tokens}
        if split != "train":
            # Validation is evaluated often during training, so it decodes greedily (half the time);
            # the test set, evaluated once, with the configured beam.
            metrics["bleu"] = self.bleu(split, beam=1 if split == "val" else self.config.beam)
        return metrics

    def translate_split(self, split: str, beam: int) -> list[str]:
        """Translations of every source sentence of ``split``, in the split's order."""
        net = getattr(self.model, "module", self.model)
        out: list[str] = [""] * self.data.size(split)
        for index, batch in self.data.eval_batches(split, self.config.eval_batch_size):
            hyps = beam_search(net, batch.source, beam, self.config.alpha)
            for i, sentence in zip(index.tolist(), self.data.decode(hyps.ids), strict=True):
                out[i] = sentence
        return out

    def bleu(self, split: str, beam: int) -> float:
        """Corpus BLEU (sacrebleu, 13a tokenization, cased) of the translations of ``split``."""
        translations = self.translate_split(split, beam)
        return self.metric.corpus_score(translations, [self.data.references(split)]).score


def adam_translation(config: TranslationTrainingConfig, model, loss, data,
                     ctx: Context) -> TranslationTraining:
    """The algorithm component's builder: torch's Adam with the config's betas and epsilon."""
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, betas=(config.beta1, config.beta2),
                                 eps=config.eps, fused=True)
    return TranslationTraining(config, model, loss, data, optimizer)
