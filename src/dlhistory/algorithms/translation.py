"""Training a translation model: teacher forcing, Adam, clipped gradients, an optional wall-clock budget.

The same procedure trains the 2014 recurrent encoder-decoders and the 2017 Transformer, so a comparison
between them changes only the model. Each step feeds the reference prefix ``<s> y_1 .. y_{i-1}`` to the
decoder and scores its prediction of ``y_i`` (teacher forcing, Williams & Zipser 1989); gradients are
clipped to a maximum norm (Pascanu et al. 2013; Sutskever et al. 2014 clipped at 5) because a recurrent
network's gradient can explode. The learning rate follows the Transformer's schedule (Vaswani et al.
2017, eq. 3): a linear warm-up, then decay with the inverse square root of the step.

Evaluation reports the unsmoothed per-token loss and its perplexity on the split and, for validation
and test, BLEU (Papineni et al. 2002) of the translations against the references, computed by
sacrebleu on detokenized text with its default 13a tokenization (Post 2018), so the number is
comparable with published ones. Test translations use beam search; validation, evaluated many times
during training, decodes greedily.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import sacrebleu
import torch

from ..spec import Context
from .decoding import beam_search
from .supervised import TrainingConfig


@dataclass(frozen=True)
class TranslationTrainingConfig(TrainingConfig):
    """Adam with warm-up and inverse-square-root decay, gradient clipping, beam-search evaluation."""

    epochs: float = 10.0
    batch_size: int = 128
    """Sentence pairs per step."""
    lr: float = 1e-3
    """Peak learning rate, reached at the end of the warm-up."""
    schedule: Literal["inverse-sqrt", "constant"] = "inverse-sqrt"
    """'inverse-sqrt': lr * min(t / warmup_steps, sqrt(warmup_steps / t)) at step t = 1, 2, ...
    (Vaswani et al. eq. 3 with the peak as a parameter); it needs no total, so it suits a time budget."""
    warmup_steps: int = 400
    beta1: float = 0.9
    beta2: float = 0.98
    """Vaswani et al. used beta2 = 0.98 (Adam's default 0.999 adapts more slowly)."""
    eps: float = 1e-9
    clip: float = 1.0
    """Maximum global gradient norm (0: no clipping)."""
    minutes: float | None = None
    """Wall-clock training budget: stop at the first step after it (None: train for ``epochs``).
    Comparing models at equal time is the fair comparison when they cost differently per step."""
    beam: int = 5
    """Beam width for the test set (1: greedy); validation BLEU is always greedy."""
    alpha: float = 0.6
    """Length-penalty exponent of the beam search (0: raw log probability)."""
    eval_batch_size: int = 200
    train_eval_size: int = 1000
    """Training pairs scored at evaluation (the training loss, teacher-forced)."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.warmup_steps < 1 or self.clip < 0 or self.beam < 1 or (self.minutes is not None
                                                                        and self.minutes <= 0):
            raise ValueError("needs warmup_steps >= 1, clip >= 0, beam >= 1 and minutes > 0 (or None)")


def learning_rate(config: TranslationTrainingConfig, step: int) -> float:
    """The rate at 0-based ``step``; a pure function of the step, so resuming follows the same curve."""
    if config.schedule == "constant":
        return config.lr
    t = step + 1
    return config.lr * min(t / config.warmup_steps, math.sqrt(config.warmup_steps / t))


class TranslationTraining:
    """The procedure: one teacher-forced step per batch; evaluation by loss, perplexity and BLEU."""

    def __init__(self, config: TranslationTrainingConfig, model: torch.nn.Module, loss, data,
                 optimizer: torch.optim.Optimizer):
        self.config, self.model, self.loss, self.data, self.optimizer = config, model, loss, data, optimizer
        self.total_steps = math.ceil(config.epochs * data.steps_per_epoch(config.batch_size))
        self.samples_per_step = config.batch_size
        self.budget_seconds = None if config.minutes is None else 60 * config.minutes
        self.modules = {"model": model}

    def update(self, step: int) -> dict[str, torch.Tensor | float]:
        lr = learning_rate(self.config, step)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        batch = self.data.train_batch(step, self.config.batch_size)
        self.model.train()
        loss, sums = self.loss(self.model(batch.source, batch.target_in), batch.target)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.config.clip:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.clip)
        self.optimizer.step()
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
        return sacrebleu.corpus_bleu(self.translate_split(split, beam), [self.data.references(split)]).score

    def state_dict(self) -> dict:
        return {"optimizer": self.optimizer.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.optimizer.load_state_dict(state["optimizer"])


def adam_translation(config: TranslationTrainingConfig, model, loss, data,
                     ctx: Context) -> TranslationTraining:
    """The algorithm component's builder: torch's Adam with the config's betas and epsilon."""
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr, betas=(config.beta1, config.beta2),
                                 eps=config.eps, fused=True)
    return TranslationTraining(config, model, loss, data, optimizer)
