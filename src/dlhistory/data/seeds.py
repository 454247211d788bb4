"""Seeds for batches drawn as a pure function of (seed, rank, step): a resumed run draws exactly the
batches the uninterrupted one would, whatever came before."""

from __future__ import annotations


def mix_seeds(*numbers: int) -> int:
    """One 63-bit seed from several numbers (a splitmix-style hash: nearby steps get unrelated seeds)."""
    x = 0
    for n in numbers:
        x = (x ^ (n + 0x9E3779B97F4A7C15 + (x << 6) + (x >> 2))) & (2**64 - 1)
        x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & (2**64 - 1)
        x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & (2**64 - 1)
    return (x ^ (x >> 31)) & (2**63 - 1)
