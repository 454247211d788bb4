"""Our optimizers (written from the papers: Adam in its milestone, the rules it was compared with in
algorithms/optimizers.py) follow torch.optim's trajectories, and resume exactly."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from dlhistory import checkpoint
from dlhistory.algorithms import optimizers as ours
from dlhistory.milestones.adam import Adam

STEPS = 100


def pairs(lr: float, beta1: float, beta2: float, wd: float, momentum: float):
    """(name, our constructor, torch's constructor) with the same hyper-parameters."""
    return [
        ("sgd", lambda p: ours.SGD(p, lr=lr, weight_decay=wd),
         lambda p: torch.optim.SGD(p, lr=lr, weight_decay=wd, foreach=False)),
        ("momentum", lambda p: ours.SGD(p, lr=lr, momentum=momentum, weight_decay=wd),
         lambda p: torch.optim.SGD(p, lr=lr, momentum=momentum, weight_decay=wd, foreach=False)),
        ("nesterov", lambda p: ours.SGD(p, lr=lr, momentum=momentum, nesterov=True, weight_decay=wd),
         lambda p: torch.optim.SGD(p, lr=lr, momentum=momentum, nesterov=True, weight_decay=wd,
                                   foreach=False)),
        ("adagrad", lambda p: ours.AdaGrad(p, lr=lr, weight_decay=wd),
         lambda p: torch.optim.Adagrad(p, lr=lr, weight_decay=wd, foreach=False)),
        ("rmsprop", lambda p: ours.RMSProp(p, lr=lr, rho=beta2, weight_decay=wd),
         lambda p: torch.optim.RMSprop(p, lr=lr, alpha=beta2, weight_decay=wd, foreach=False)),
        ("adam", lambda p: Adam(p, lr=lr, betas=(beta1, beta2), weight_decay=wd),
         lambda p: torch.optim.Adam(p, lr=lr, betas=(beta1, beta2), weight_decay=wd, foreach=False)),
    ]


class Problem:
    """A random quadratic with noisy, sparse-ish gradients: g = 2 (theta - target) * scale + noise."""

    def __init__(self, shapes, sparsity: float, seed: int):
        gen = torch.Generator().manual_seed(seed)
        self.init = [torch.randn(s, generator=gen, dtype=torch.float64) for s in shapes]
        self.target = [torch.randn(s, generator=gen, dtype=torch.float64) for s in shapes]
        self.scale = [torch.rand(s, generator=gen, dtype=torch.float64) + 0.1 for s in shapes]
        self.noise = [[torch.randn(s, generator=gen, dtype=torch.float64) * 0.1 for s in shapes]
                      for _ in range(STEPS)]
        # Each step a random subset of coordinates gets a zero gradient, as with sparse features.
        self.mask = [[(torch.rand(s, generator=gen) >= sparsity).double() for s in shapes]
                     for _ in range(STEPS)]

    def params(self) -> list[torch.nn.Parameter]:
        return [torch.nn.Parameter(p.clone()) for p in self.init]

    def set_gradients(self, params, t: int) -> None:
        for i, p in enumerate(params):
            p.grad = (2 * (p.detach() - self.target[i]) * self.scale[i] + self.noise[t][i]) * self.mask[t][i]


def run(problem: Problem, make, params, start: int = 0, stop: int = STEPS, optimizer=None):
    optimizer = optimizer or make(params)
    for t in range(start, stop):
        problem.set_gradients(params, t)
        optimizer.step()
    return optimizer


shapes = st.lists(st.lists(st.integers(1, 5), min_size=1, max_size=3).map(tuple), min_size=1, max_size=3)


@settings(max_examples=15, deadline=None)
@given(shapes=shapes, lr=st.floats(1e-4, 0.1), beta1=st.floats(0.0, 0.99), beta2=st.floats(0.9, 0.9999),
       wd=st.sampled_from([0.0, 1e-4, 1e-2]), momentum=st.floats(0.1, 0.99),
       sparsity=st.sampled_from([0.0, 0.5, 0.9]), seed=st.integers(0, 2**16))
def test_same_trajectory_as_torch(shapes, lr, beta1, beta2, wd, momentum, sparsity, seed):
    problem = Problem(shapes, sparsity, seed)
    for name, make_ours, make_torch in pairs(lr, beta1, beta2, wd, momentum):
        a, b = problem.params(), problem.params()
        run(problem, make_ours, a)
        run(problem, make_torch, b)
        for x, y in zip(a, b, strict=True):
            torch.testing.assert_close(x, y, rtol=1e-6, atol=1e-9, msg=name)


@pytest.mark.parametrize("name", [n for n, *_ in pairs(0.01, 0.9, 0.999, 1e-3, 0.9)])
def test_resume_through_a_checkpoint_is_exact(name, tmp_path: Path):
    make = {n: m for n, m, _ in pairs(0.01, 0.9, 0.999, 1e-3, 0.9)}[name]
    problem = Problem([(3, 4), (5,)], sparsity=0.5, seed=1)
    straight = problem.params()
    run(problem, make, straight)

    resumed = problem.params()
    optimizer = run(problem, make, resumed, stop=40)
    checkpoint.save(tmp_path / "c.safetensors", {"optimizer": optimizer.state_dict(),
                                                 "params": [p.detach() for p in resumed]})
    state = checkpoint.load(tmp_path / "c.safetensors")
    restored = [torch.nn.Parameter(p.clone()) for p in state["params"]]
    fresh = make(restored)
    fresh.load_state_dict(state["optimizer"])
    run(problem, make, restored, start=40, optimizer=fresh)
    for x, y in zip(straight, restored, strict=True):
        assert torch.equal(x, y), name
