"""Learning-rate sensitivity: how wide is an optimizer's band of good learning rates?

Given the mean validation accuracy at each rate of a log grid, the *good band* is the contiguous range
around the best rate whose accuracy stays within a tolerance of the best; its width in decades says how
much tuning the optimizer needs. Used by the 2014 Adam milestone (Kingma & Ba's "little tuning").
"""

from __future__ import annotations

import math
from dataclasses import dataclass

TOLERANCE = 0.01
"""The good band: learning rates whose mean validation accuracy is within 1 point of the best."""


@dataclass(frozen=True)
class Band:
    """One optimizer's learning-rate curve, summarised."""

    best_lr: float
    best: float
    low: float
    high: float
    censored: bool
    """The band reaches the end of the grid, so its true width may be larger."""
    low_bound: float
    high_bound: float
    """How far the band could reach: where it stops at a diverged rate, up to that rate (the band
    is only measured up to the last rate that trained; the truth lies in between)."""

    @property
    def decades(self) -> float:
        """The measured width: a lower bound where the band stops at a diverged rate."""
        return math.log10(self.high / self.low)

    @property
    def decades_at_most(self) -> float:
        return math.inf if self.censored else math.log10(self.high_bound / self.low_bound)


def good_band(lrs: list[float], means: list[float], tolerance: float = TOLERANCE) -> Band:
    """The contiguous learning-rate range around the best whose accuracy is within ``tolerance`` of it.

    ``lrs`` ascending; ``means`` the mean validation accuracy per rate, NaN where a run diverged. The
    edges are interpolated linearly in log10(lr) between the last rate inside and the first outside;
    next to a diverged rate (no number to interpolate) the edge is the last rate inside, and the band
    could reach up to the diverged rate (``low_bound``, ``high_bound``).
    """
    scores = [-math.inf if math.isnan(m) else m for m in means]
    i_best = max(range(len(lrs)), key=scores.__getitem__)
    best = scores[i_best]
    if best == -math.inf:
        raise ValueError("every learning rate diverged")
    floor = best - tolerance

    def edge(direction: int) -> tuple[float, float, bool]:
        """(edge, how far it could be, whether the grid ended) on one side of the best."""
        i = i_best
        while 0 <= i + direction < len(lrs) and scores[i + direction] >= floor:
            i += direction
        j = i + direction
        if not 0 <= j < len(lrs):
            return lrs[i], lrs[i], True
        if scores[j] == -math.inf:
            return lrs[i], lrs[j], False
        fraction = (scores[i] - floor) / (scores[i] - scores[j])
        log_lr = math.log10(lrs[i]) + fraction * (math.log10(lrs[j]) - math.log10(lrs[i]))
        return 10 ** log_lr, 10 ** log_lr, False

    (low, low_bound, low_censored), (high, high_bound, high_censored) = edge(-1), edge(+1)
    return Band(lrs[i_best], best, low, high, low_censored or high_censored, low_bound, high_bound)


@dataclass(frozen=True)
class Sensitivity:
    """One optimizer over its learning-rate grid: validation (for selection) and test (reported)."""

    variant: str
    grid: tuple[float, ...]
    val: list[float]
    test: list[float]
    default_lr: float
    band: Band

    def at(self, lr: float, split: str = "val") -> float:
        """The mean accuracy at ``lr`` (NaN when it diverged or is not on the grid)."""
        i = next((i for i, x in enumerate(self.grid) if math.isclose(x, lr, rel_tol=1e-9)), None)
        return math.nan if i is None else getattr(self, split)[i]

    def row(self) -> tuple[str, ...]:
        b = self.band
        width = f"{'>= ' if b.censored else ''}{b.decades:.2f}"
        if not b.censored and b.decades_at_most > b.decades:
            width += f" (at most {b.decades_at_most:.2f}: next rate diverged)"
        return (self.variant, f"{self.default_lr:g}", percent(self.at(self.default_lr)),
                percent(self.at(self.default_lr, "test")), f"{b.best_lr:.3g}", percent(b.best),
                percent(self.at(b.best_lr, "test")), f"{b.low:.2g} .. {b.high:.2g}", width)


SENSITIVITY_HEADERS = ("optimizer", "default lr", "val at default", "test at default", "best lr (val)",
                       "best val", "test at best", "good band (within 1 pt)", "decades")


def percent(value: float) -> str:
    return "diverged" if math.isnan(value) else f"{100 * value:.2f}%"
