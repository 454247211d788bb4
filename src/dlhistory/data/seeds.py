"""Seeded draws: batches as a pure function of (seed, rank, step), so a resumed run draws exactly the
batches the uninterrupted one would, whatever came before; and label budgets fixed per seed."""

from __future__ import annotations

import random

import torch


def mix_seeds(*numbers: int) -> int:
    """One 63-bit seed from several numbers (a splitmix-style hash: nearby steps get unrelated seeds)."""
    x = 0
    for n in numbers:
        x = (x ^ (n + 0x9E3779B97F4A7C15 + (x << 6) + (x >> 2))) & (2**64 - 1)
        x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & (2**64 - 1)
        x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & (2**64 - 1)
    return (x ^ (x >> 31)) & (2**63 - 1)


def label_subset(train_labels: torch.Tensor, size: int, seed: int) -> torch.Tensor:
    """Indices (ascending) into the training split of a class-balanced budget of ``size`` labels.

    Each class is shuffled by ``seed`` and the classes are dealt in turn (round robin), and the budget
    is the first ``size`` dealt: balanced to within one example, and nested, since a smaller budget is
    a prefix of the same deal. A class that runs out is skipped, so any size up to all is possible.
    """
    if not 0 <= size <= len(train_labels):
        raise ValueError(f"label budget {size}: the training split has {len(train_labels)} sentences")
    rng = random.Random(seed)
    queues = []
    for c in sorted(set(train_labels.tolist())):
        members = (train_labels == c).nonzero().squeeze(1).tolist()
        rng.shuffle(members)
        queues.append(members)
    dealt = [q[i] for i in range(max(map(len, queues), default=0)) for q in queues if i < len(q)]
    return torch.tensor(sorted(dealt[:size]), dtype=torch.long)
