"""Cross-entropy for classification: the proxy for what we want, accuracy.

Accuracy is not differentiable, so it cannot be minimised directly; the negative log-likelihood of the
correct class is its smooth proxy. The loss returns both, so the runner can show how they diverge.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class CrossEntropyConfig:
    """Softmax cross-entropy."""

    label_smoothing: float = 0.0
    """Mix of the one-hot target with the uniform distribution (Szegedy et al. 2016); 0 disables."""


def cross_entropy(config: CrossEntropyConfig):
    """Build ``loss(logits, labels) -> (scalar, {"accuracy": ...})``."""

    def loss(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        # logits: (B, classes) labels: (B,); computed in fp32 even under bf16 autocast.
        value = F.cross_entropy(logits.float(), labels, label_smoothing=config.label_smoothing)
        accuracy = (logits.argmax(1) == labels).float().mean()
        return value, {"accuracy": accuracy}

    return loss
