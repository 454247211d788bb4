"""The optimizer family, written from the papers: how the parameters move given the gradient.

Each is a ``torch.optim.Optimizer`` with the update rule spelled out in paper notation, so the
difference between them is readable line by line. ``g`` is the gradient, ``theta`` the parameter,
``alpha`` the learning rate; the state is per parameter. Every rule matches its ``torch.optim``
counterpart's trajectory (tests/test_optimizers.py).

* SGD with momentum (Polyak 1964) and Nesterov momentum (Nesterov 1983; Sutskever et al. 2013).
* AdaGrad: Duchi, Hazan & Singer, "Adaptive Subgradient Methods", JMLR 2011.
* RMSProp: Tieleman & Hinton, Coursera lecture 6.5, 2012.
* Adam: Kingma & Ba, "Adam: A Method for Stochastic Optimization", ICLR 2015, Algorithm 1.
* AdamW: Loshchilov & Hutter, "Decoupled Weight Decay Regularization", ICLR 2019, Algorithm 2.
"""

from __future__ import annotations

import math

import torch
from torch.optim import Optimizer


class _Optimizer(Optimizer):
    """Shared loop: call ``update(theta, g, state, group)`` for every parameter with a gradient."""

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            for theta in group["params"]:
                if theta.grad is not None:
                    self.update(theta, theta.grad, self.state[theta], group)
        return loss

    def update(self, theta: torch.Tensor, g: torch.Tensor, state: dict, group: dict) -> None:
        raise NotImplementedError


class SGD(_Optimizer):
    """theta <- theta - alpha * v, with v = mu * v + g (momentum) or g + mu * v (Nesterov)."""

    def __init__(self, params, lr: float = 0.01, momentum: float = 0.0, nesterov: bool = False,
                 weight_decay: float = 0.0):
        if nesterov and momentum <= 0:
            raise ValueError("Nesterov momentum needs momentum > 0")
        super().__init__(params, dict(lr=lr, momentum=momentum, nesterov=nesterov, weight_decay=weight_decay))

    def update(self, theta, g, state, group):
        if group["weight_decay"]:
            g = g + group["weight_decay"] * theta  # L2 penalty: its gradient wd * theta
        mu = group["momentum"]
        if mu:
            if "v" not in state:
                state["v"] = g.clone()  # the first step starts the velocity at the gradient
            else:
                state["v"].mul_(mu).add_(g)
            # Nesterov: step along the velocity as it will be after this step (look-ahead).
            g = g + mu * state["v"] if group["nesterov"] else state["v"]
        theta.add_(g, alpha=-group["lr"])


class AdaGrad(_Optimizer):
    """theta <- theta - alpha * g / (sqrt(sum of g^2 so far) + eps): rare features get larger steps."""

    def __init__(self, params, lr: float = 0.01, eps: float = 1e-10, weight_decay: float = 0.0):
        super().__init__(params, dict(lr=lr, eps=eps, weight_decay=weight_decay))

    def update(self, theta, g, state, group):
        if group["weight_decay"]:
            g = g + group["weight_decay"] * theta
        G = state.setdefault("G", torch.zeros_like(theta))  # running sum of squared gradients
        G.addcmul_(g, g)
        theta.addcdiv_(g, G.sqrt().add_(group["eps"]), value=-group["lr"])


class RMSProp(_Optimizer):
    """AdaGrad with a leaky sum: E[g^2] <- rho * E[g^2] + (1 - rho) g^2, so old gradients are forgotten."""

    def __init__(self, params, lr: float = 0.01, rho: float = 0.99, eps: float = 1e-8,
                 weight_decay: float = 0.0):
        super().__init__(params, dict(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay))

    def update(self, theta, g, state, group):
        if group["weight_decay"]:
            g = g + group["weight_decay"] * theta
        Eg2 = state.setdefault("Eg2", torch.zeros_like(theta))
        Eg2.mul_(group["rho"]).addcmul_(g, g, value=1 - group["rho"])
        theta.addcdiv_(g, Eg2.sqrt().add_(group["eps"]), value=-group["lr"])


class Adam(_Optimizer):
    """Kingma & Ba (2015), Algorithm 1: momentum (m) and RMSProp scaling (v), both bias-corrected.

    ``weight_decay`` here is the L2 penalty added to the gradient (as torch.optim.Adam); AdamW
    decouples it.
    """

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay))

    def update(self, theta, g, state, group):
        if group["weight_decay"]:
            g = g + group["weight_decay"] * theta
        self.adam_step(theta, g, state, group)

    @staticmethod
    def adam_step(theta, g, state, group):
        beta1, beta2 = group["betas"]
        if "m" not in state:
            state["t"], state["m"], state["v"] = 0, torch.zeros_like(theta), torch.zeros_like(theta)
        state["t"] += 1
        t, m, v = state["t"], state["m"], state["v"]
        m.mul_(beta1).add_(g, alpha=1 - beta1)  # biased first moment estimate
        v.mul_(beta2).addcmul_(g, g, value=1 - beta2)  # biased second raw moment estimate
        # m_hat = m / (1 - beta1^t) and v_hat = v / (1 - beta2^t) undo the bias towards the zero init;
        # theta <- theta - alpha * m_hat / (sqrt(v_hat) + eps), with the corrections folded into scalars.
        step_size = group["lr"] / (1 - beta1 ** t)
        denominator = (v.sqrt() / math.sqrt(1 - beta2 ** t)).add_(group["eps"])
        theta.addcdiv_(m, denominator, value=-step_size)


class AdamW(Adam):
    """Loshchilov & Hutter (2019): decay the weights directly, theta <- theta - alpha * lambda * theta,
    instead of adding lambda * theta to the gradient, where Adam's scaling would distort it."""

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 1e-2):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)

    def update(self, theta, g, state, group):
        theta.mul_(1 - group["lr"] * group["weight_decay"])
        self.adam_step(theta, g, state, group)
