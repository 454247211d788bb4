"""Per-token cross-entropy for sequence models: the proxy for what we want, good translations.

The model is trained to maximise log p(y_i | y_<i, x) of the reference translation, token by token
(teacher forcing); what we want is a translation people judge good, measured by BLEU. Padding tokens
are not predictions, so they count for nothing. Label smoothing (Szegedy et al. 2016; Vaswani et al.
2017, section 5.4, eps = 0.1) moves a little probability to every other token: it "hurts perplexity,
as the model learns to be more unsure, but improves accuracy and BLEU score".
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..data.translation import PAD


@dataclass(frozen=True)
class TokenCrossEntropyConfig:
    """Softmax cross-entropy per target token, padding ignored."""

    label_smoothing: float = 0.0
    """Mix of the one-hot target with the uniform distribution; 0 disables (0.1 in the Transformer)."""

    def __post_init__(self) -> None:
        if not 0 <= self.label_smoothing < 1:
            raise ValueError("label_smoothing must be in [0, 1)")


def token_cross_entropy(config: TokenCrossEntropyConfig):
    """Build ``loss(logits (B, T, V), target (B, T)) -> (mean over tokens, metrics)``.

    The metrics are sums over the batch's real tokens: ``nll`` (the unsmoothed negative log-likelihood,
    whose exponential per token is the perplexity), ``tokens`` and, at evaluation, ``correct`` (argmax
    predictions equal to the reference).
    """

    def loss(logits: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        real = (target != PAD).flatten()
        # One log-softmax, in fp32 even under bf16 autocast, serves the loss and the metrics: the output
        # over the vocabulary is the largest tensor of a step. Padding positions are computed and then
        # zeroed, which was measured cheaper than selecting the real tokens first.
        log_p = torch.log_softmax(logits.flatten(0, 1), -1, dtype=torch.float32)  # (B*T, V)
        nll = -log_p.gather(1, target.flatten()[:, None]).squeeze(1)  # (B*T,)
        value = nll
        if config.label_smoothing:  # cross-entropy with (1 - eps) one-hot + eps uniform
            value = (1 - config.label_smoothing) * nll - config.label_smoothing * log_p.mean(-1)
        tokens = real.sum()
        metrics = {"nll": (nll.detach() * real).sum(), "tokens": tokens}
        if not torch.is_grad_enabled():  # evaluation: the argmax costs 5% of a training step
            metrics["correct"] = ((log_p.argmax(-1) == target.flatten()) & real).sum()
        return (value * real).sum() / tokens.clamp(min=1), metrics

    return loss
