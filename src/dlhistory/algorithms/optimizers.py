"""The optimizers Adam was compared with, written from the papers: how the parameters move given
the gradient.

Each is a ``torch.optim.Optimizer`` with the update rule spelled out in paper notation, so the
difference between them is readable line by line. ``g`` is the gradient, ``theta`` the parameter,
``alpha`` the learning rate; the state is per parameter. Every rule matches its ``torch.optim``
counterpart's trajectory (tests/test_optimizers.py). Adam itself (Kingma & Ba 2015, Algorithm 1) is
the 2014 milestone's idea, so it lives in ``dlhistory.milestones.adam``, built on :class:`UpdateRule`.

* SGD with momentum (Polyak 1964) and Nesterov momentum (Nesterov 1983; Sutskever et al. 2013).
* AdaGrad: Duchi, Hazan & Singer, "Adaptive Subgradient Methods", JMLR 2011.
* RMSProp: Tieleman & Hinton, Coursera lecture 6.5, 2012.
"""

from __future__ import annotations

import torch
from torch.optim import Optimizer


class UpdateRule(Optimizer):
    """An optimizer whose rule is written per parameter: ``step`` calls ``update(theta, g, state,
    group)`` for every parameter with a gradient."""

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


class SGD(UpdateRule):
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


class AdaGrad(UpdateRule):
    """theta <- theta - alpha * g / (sqrt(sum of g^2 so far) + eps): rare features get larger steps."""

    def __init__(self, params, lr: float = 0.01, eps: float = 1e-10, weight_decay: float = 0.0):
        super().__init__(params, dict(lr=lr, eps=eps, weight_decay=weight_decay))

    def update(self, theta, g, state, group):
        if group["weight_decay"]:
            g = g + group["weight_decay"] * theta
        G = state.setdefault("G", torch.zeros_like(theta))  # running sum of squared gradients
        G.addcmul_(g, g)
        theta.addcdiv_(g, G.sqrt().add_(group["eps"]), value=-group["lr"])


class RMSProp(UpdateRule):
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
