"""Our Muon (algorithms/muon.py) follows torch.optim.Muon's trajectory when it orthogonalises in
bfloat16 as torch does, orthogonalises in float32 too, and resumes exactly."""

from __future__ import annotations

import pytest
import torch

from dlhistory.algorithms.muon import Muon, newton_schulz


def _trajectory(make, steps: int = 20, shape=(12, 7), seed: int = 0) -> torch.Tensor:
    """A matrix fitted by the optimizer to a fixed random target; the parameter after ``steps``."""
    generator = torch.Generator().manual_seed(seed)
    theta = torch.nn.Parameter(torch.randn(shape, generator=generator))
    target = torch.randn(shape, generator=generator)
    optimizer = make([theta])
    for _ in range(steps):
        optimizer.zero_grad()
        ((theta - target) ** 2).sum().backward()
        optimizer.step()
    return theta.detach()


@pytest.mark.parametrize("shape", [(12, 7), (7, 12)])
@pytest.mark.parametrize("nesterov", [True, False])
def test_in_bfloat16_it_is_torch_muon_to_the_bit(shape, nesterov):
    settings = dict(lr=0.02, weight_decay=0.1, momentum=0.9, nesterov=nesterov)
    ours = _trajectory(lambda p: Muon(p, ns_dtype="bfloat16", **settings), shape=shape)
    theirs = _trajectory(lambda p: torch.optim.Muon(p, adjust_lr_fn="match_rms_adamw", **settings),
                         shape=shape)
    assert torch.equal(ours, theirs)


def test_in_float32_it_follows_the_same_path_more_precisely():
    settings = dict(lr=0.02, weight_decay=0.1)
    ours = _trajectory(lambda p: Muon(p, **settings))
    theirs = _trajectory(lambda p: torch.optim.Muon(p, adjust_lr_fn="match_rms_adamw", **settings))
    assert not torch.equal(ours, theirs) and torch.allclose(ours, theirs, atol=0.05)


def test_newton_schulz_brings_every_singular_value_near_one():
    # singular values spread over 150x; five steps lift those down to ~1/150 of the largest
    spread = torch.diag(torch.logspace(-1, 1, 24))
    G = torch.randn(64, 24, generator=torch.Generator().manual_seed(1)) @ spread
    singular_values = torch.linalg.svdvals(newton_schulz(G))
    assert singular_values.min() > 0.6 and singular_values.max() < 1.25  # Jordan et al.: ~[0.7, 1.2]
    U, _, Vh = torch.linalg.svd(G, full_matrices=False)  # and the directions are G's: U V^T
    assert torch.nn.functional.cosine_similarity(newton_schulz(G).flatten(), (U @ Vh).flatten(), 0) > 0.95


def test_it_resumes_exactly():
    theta = torch.nn.Parameter(torch.randn(6, 5))
    straight = Muon([theta], lr=0.05)
    copy = torch.nn.Parameter(theta.detach().clone())
    for _ in range(3):
        theta.grad = torch.sin(theta.detach())
        straight.step()
    resumed = Muon([copy], lr=0.05)
    for _ in range(2):
        copy.grad = torch.sin(copy.detach())
        resumed.step()
    state = resumed.state_dict()
    resumed = Muon([copy], lr=0.05)
    resumed.load_state_dict(state)
    copy.grad = torch.sin(copy.detach())
    resumed.step()
    assert torch.equal(theta, copy)


def test_bad_settings_and_vectors_are_refused():
    with pytest.raises(ValueError, match="ns_dtype"):
        Muon([torch.nn.Parameter(torch.zeros(2, 2))], ns_dtype="float16")
    bias = torch.nn.Parameter(torch.zeros(3))
    bias.grad = torch.ones(3)
    with pytest.raises(ValueError, match="matrices only"):
        Muon([bias]).step()
