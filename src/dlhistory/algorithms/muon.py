"""Muon: momentum whose update is orthogonalised, for a network's hidden weight matrices.

Jordan, Jin, Boza, You, Cesista, Newhouse & Bernstein, "Muon: An optimizer for hidden layers in
neural networks", 2024 (https://kellerjordan.github.io/posts/muon/); the learning-rate scale that
matches AdamW's update size is from Liu et al., "Muon is Scalable for LLM Training", 2025.

Written out here rather than taken from ``torch.optim.Muon`` for one reason: torch orthogonalises in
bfloat16, which is fast on a GPU and on CPUs with bf16 matrix units, but emulated, and 2.4x slower a
GPT step, on CPUs without them. ``ns_dtype`` ('float32' or 'bfloat16', a name so that it checkpoints
as plain data) chooses; with bfloat16 the trajectory is torch's to the bit (tests/test_muon.py).
"""

from __future__ import annotations

import math

import torch

from .optimizers import UpdateRule

NS_COEFFICIENTS = (3.4445, -4.7750, 2.0315)
"""The quintic Newton-Schulz iteration's (a, b, c), chosen (Jordan et al.) for the steepest slope at
zero: five steps take every singular value into roughly [0.7, 1.2], close enough to 1."""


def newton_schulz(G: torch.Tensor, steps: int = 5, dtype: torch.dtype = torch.float32,
                  eps: float = 1e-7) -> torch.Tensor:
    """Approximately U V^T for G = U S V^T: X <- a X + (b A + c A^2) X with A = X X^T, from X = G / ||G||_F
    (so every singular value starts at most 1). Works on the wide side (A is the smaller Gram matrix)."""
    X = G.to(dtype)
    tall = G.size(0) > G.size(1)
    if tall:
        X = X.T
    X = X / X.norm().clamp(min=eps)
    a, b, c = NS_COEFFICIENTS
    for _ in range(steps):
        A = X @ X.T
        B = torch.addmm(A, A, A, beta=b, alpha=c)  # b A + c A^2
        X = torch.addmm(X, B, X, beta=a)  # a X + B X
    return X.T if tall else X


class Muon(UpdateRule):
    """theta <- theta (1 - alpha lambda) - alpha' NS(g + mu (B - g)), with B <- mu B + (1 - mu) g the
    momentum (Nesterov: step along where the momentum is heading), NS the orthogonalisation above and
    alpha' = 0.2 sqrt(max(rows, columns)) alpha, which gives the update AdamW's typical RMS, so AdamW's
    learning rate and weight decay carry over (Liu et al. 2025)."""

    def __init__(self, params, lr: float = 1e-3, weight_decay: float = 0.1, momentum: float = 0.95,
                 nesterov: bool = True, ns_steps: int = 5, ns_dtype: str = "float32"):
        if lr < 0 or weight_decay < 0 or not 0 <= momentum < 1 or ns_steps < 1:
            raise ValueError("Muon needs lr >= 0, weight_decay >= 0, 0 <= momentum < 1 and ns_steps >= 1")
        if ns_dtype not in ("float32", "bfloat16"):
            raise ValueError(f"Muon's ns_dtype is 'float32' or 'bfloat16', not {ns_dtype!r}")
        super().__init__(params, dict(lr=lr, weight_decay=weight_decay, momentum=momentum,
                                      nesterov=nesterov, ns_steps=ns_steps, ns_dtype=ns_dtype))

    def update(self, theta, g, state, group):
        if theta.ndim != 2:
            raise ValueError(f"Muon updates matrices only, got a parameter of shape {tuple(theta.shape)}")
        mu = group["momentum"]
        B = state.setdefault("momentum_buffer", torch.zeros_like(theta))
        B.lerp_(g, 1 - mu)
        direction = g.lerp(B, mu) if group["nesterov"] else B
        O = newton_schulz(direction, group["ns_steps"], getattr(torch, group["ns_dtype"]))
        alpha = group["lr"]
        theta.mul_(1 - alpha * group["weight_decay"])  # decoupled weight decay, at the base rate
        theta.add_(O.to(theta.dtype), alpha=-alpha * 0.2 * math.sqrt(max(theta.shape)))
