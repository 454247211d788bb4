"""Scaling laws: does validation loss fall as a power of model size?

Kaplan et al. 2020, "Scaling Laws for Neural Language Models" (eq. 1.1), found that a language model's
test loss falls as a power law in its number of parameters N, L(N) = (N_c / N)^alpha_N with
alpha_N ~= 0.076, when data and compute do not limit it. Hoffmann et al. 2022, "Training
Compute-Optimal Large Language Models" (eq. 2), add an irreducible term E, the entropy of the text that
no model removes. The form fitted here is theirs, in the size alone:

    L(N) = E + A * N^(-alpha)

The GPT milestone's claim is judged by it: the fit explains the losses (R^2), predicts the largest
model's loss from the smaller ones (a held-out extrapolation), and gives alpha with a bootstrap interval
to set beside Kaplan et al.'s. Everything here is numpy and scipy; only the figure needs matplotlib.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.optimize import least_squares

KAPLAN_ALPHA_N = 0.076
"""Kaplan et al. 2020's exponent for parameters (Section 1.2, eq. 1.1). Not like for like with ours:
theirs counts non-embedding parameters, has no E term and measures nats per BPE token on WebText2; ours
is nats per character with E fitted, so it is set beside ours for orientation, not as a target."""

MIN_SIZES = 3
"""The law has three parameters, so a fit needs at least three distinct sizes."""

_ALPHA_GRID = np.geomspace(1e-3, 5.0, 400)
"""Starting values: the exponents tried before the local fit (the loss is linear in E and A once alpha is
fixed, so each one costs a 2x2 solve). Geometric, since alpha spans orders of magnitude across setups."""

_ALPHA_MAX = 10.0
"""Upper bound on alpha for the local fit: beyond it N^(-alpha) is a step, and the fit has run off along a
direction the data do not pin down."""


@dataclass(frozen=True)
class PowerLaw:
    """L(N) = E + A * N^(-alpha) (Kaplan et al. 2020, eq. 1.1, with Hoffmann et al. 2022's E)."""

    E: float
    """Irreducible loss: the limit as N grows without bound (nats per character)."""
    A: float
    """Scale of the reducible loss: A * N^(-alpha) is what a model of N parameters has left to learn."""
    alpha: float
    """Exponent: each doubling of N multiplies the reducible loss by 2^(-alpha)."""

    def __call__(self, n: np.ndarray | float) -> np.ndarray | float:
        return self.E + self.A * np.power(n, -self.alpha)


def _points(n: Sequence[float], loss: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """The (N, loss) points as float arrays, checked: one-line ValueErrors for what no fit can use."""
    n_arr = np.asarray(n, dtype=float)
    loss_arr = np.asarray(loss, dtype=float)
    if n_arr.ndim != 1 or loss_arr.ndim != 1 or len(n_arr) != len(loss_arr):
        raise ValueError(f"n and loss must be flat sequences of equal length, got shapes {n_arr.shape} "
                         f"and {loss_arr.shape}")
    bad_n = ~(np.isfinite(n_arr) & (n_arr > 0))
    if bad_n.any():
        raise ValueError(f"every parameter count N must be finite and positive, got {_few(n_arr[bad_n])}")
    bad_loss = ~np.isfinite(loss_arr)
    if bad_loss.any():
        raise ValueError(f"every loss must be finite, got {_few(loss_arr[bad_loss])} "
                         "(a diverged run has no place on the curve)")
    sizes = len(np.unique(n_arr))
    if sizes < MIN_SIZES:
        raise ValueError(f"a power law with an irreducible term needs at least {MIN_SIZES} distinct sizes, "
                         f"got {sizes}")
    return n_arr, loss_arr


def _few(values: np.ndarray, most: int = 3) -> str:
    """A few of ``values`` for a one-line message (numpy's own repr wraps long arrays across lines)."""
    shown = ", ".join(f"{v:g}" for v in values[:most])
    return shown + (f" and {len(values) - most} more" if len(values) > most else "")


def _linear_start(x: np.ndarray, loss: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each row of ``x`` (one alpha of the grid: x = (N/n0)^(-alpha), shape (G, m)), the least-squares
    E >= 0, B >= 0 of loss ~= E + B x, and its sum of squared residuals. Returns (E, B, sse), each (G,).

    A convex problem in two unknowns over a quadrant: its minimum is the unconstrained solution on the
    interior or on one of the edges (E = 0, or B = 0) or the corner, so we solve all four and keep the best
    feasible one."""
    m = loss.shape[0]
    sx, sxx, sy, sxy = x.sum(1), (x * x).sum(1), loss.sum(), x @ loss
    det = m * sxx - sx * sx
    with np.errstate(divide="ignore", invalid="ignore"):
        both_b = (m * sxy - sx * sy) / det
        both_e = (sy - both_b * sx) / m
        edge_b = sxy / sxx  # E = 0
    candidates = [(both_e, both_b), (np.zeros_like(sx), edge_b),
                  (np.full_like(sx, sy / m), np.zeros_like(sx)), (np.zeros_like(sx), np.zeros_like(sx))]
    best_e, best_b, best_sse = np.zeros_like(sx), np.zeros_like(sx), np.full_like(sx, np.inf)
    for e, b in candidates:
        feasible = np.isfinite(e) & np.isfinite(b) & (e >= 0) & (b >= 0)
        sse = (((e[:, None] + b[:, None] * x) - loss) ** 2).sum(1)
        better = feasible & (sse < best_sse)
        best_e, best_b, best_sse = (np.where(better, e, best_e), np.where(better, b, best_b),
                                    np.where(better, sse, best_sse))
    return best_e, best_b, best_sse


def _fit(n: np.ndarray, loss: np.ndarray) -> PowerLaw:
    """:func:`fit_power_law` on checked arrays (the bootstrap calls it a thousand times)."""
    # Work in N / n0, n0 the geometric mean of the sizes: then B = A * n0^(-alpha) is the reducible loss at
    # a typical size (order 1) instead of A, which runs to 1e3 for alpha ~ 0.5 and N ~ 1e6, and B and
    # alpha are far less correlated, so the local fit is well conditioned.
    n0 = math.exp(float(np.mean(np.log(np.unique(n)))))
    log_ratio = np.log(n / n0)  # (m,)
    x = np.exp(-_ALPHA_GRID[:, None] * log_ratio)  # (G, m)
    e, b, sse = _linear_start(x, loss)
    i = int(np.argmin(sse))
    start = np.array([e[i], b[i], _ALPHA_GRID[i]])

    def residuals(p: np.ndarray) -> np.ndarray:
        E, B, alpha = p
        return E + B * np.exp(-alpha * log_ratio) - loss

    def jacobian(p: np.ndarray) -> np.ndarray:
        _, B, alpha = p
        xs = np.exp(-alpha * log_ratio)
        return np.stack([np.ones_like(xs), xs, -B * log_ratio * xs], axis=1)  # (m, 3)

    lower, upper = np.array([0.0, 0.0, 0.0]), np.array([np.inf, np.inf, _ALPHA_MAX])
    start = np.clip(start, lower, upper)
    result = least_squares(residuals, start, jac=jacobian, bounds=(lower, upper), method="trf",
                           x_scale="jac", ftol=1e-12, xtol=1e-12, gtol=1e-12)
    # The local fit starts from the grid's best, so it can only improve on it; keep the grid's point
    # should the optimizer stop early somewhere worse.
    E, B, alpha = result.x if 2 * result.cost <= sse[i] else start
    return PowerLaw(E=float(E), A=float(B * n0**alpha), alpha=float(alpha))


def fit_power_law(n: Sequence[float], loss: Sequence[float]) -> PowerLaw:
    """Fit L(N) = E + A * N^(-alpha) (Kaplan et al. 2020, eq. 1.1; E from Hoffmann et al. 2022, eq. 2) by
    least squares in the loss itself, E >= 0, A >= 0, alpha > 0.

    Pass every point: with several seeds per size, each seed's loss is a point, so sizes with more seeds
    weigh more and the residuals carry the seed noise the bootstrap needs. Least squares in the loss (not
    in log loss, as with Kaplan's pure power law) because the noise is additive in nats and E makes the law
    no longer a line in log-log.

    The squared error is linear in E and A once alpha is fixed, so the fit starts from a grid over alpha
    with E and A solved exactly for each (no guessed starting point to get wrong), then refines all three
    with ``scipy.optimize.least_squares`` from the grid's best. A = 0 means the losses do not fall with N
    (alpha then means nothing). Needs at least 3 distinct sizes; with exactly 3 the law passes through
    them.
    """
    return _fit(*_points(n, loss))


def r_squared(law: PowerLaw, n: Sequence[float], loss: Sequence[float]) -> float:
    """The share of the losses' variance the law explains, 1 - SS_res / SS_tot, over every point given.

    With several seeds per size, seed noise is variance no law in N can explain, so R^2 over the points is
    at most that over the per-size means. NaN when every loss is the same (no variance to explain)."""
    n_arr, loss_arr = np.asarray(n, dtype=float), np.asarray(loss, dtype=float)
    ss_res = float(np.sum((loss_arr - law(n_arr)) ** 2))
    ss_tot = float(np.sum((loss_arr - loss_arr.mean()) ** 2))
    return 1.0 - ss_res / ss_tot if ss_tot > 0 else math.nan


@dataclass(frozen=True)
class Extrapolation:
    """The largest model's loss predicted by a law fitted on the smaller ones: a scaling law is only worth
    having if it predicts a model not yet trained (the use Kaplan et al. 2020 and Hoffmann et al. 2022 put
    it to; OpenAI's GPT-4 report, 2023, Figure 1, predicts its final loss this way)."""

    law: PowerLaw
    """Fitted without the largest size."""
    largest: float
    """N of the largest size."""
    predicted: float
    """law(largest)."""
    measured: float
    """Mean loss measured at the largest size (over its seeds)."""

    @property
    def error(self) -> float:
        """|predicted - measured|, nats per character."""
        return abs(self.predicted - self.measured)


def extrapolate_largest(n: Sequence[float], loss: Sequence[float]) -> Extrapolation:
    """Fit on every size but the largest and predict the largest's loss (needs 4 distinct sizes, 3 for the
    fit)."""
    n_arr, loss_arr = _points(n, loss)
    largest = float(n_arr.max())
    rest = n_arr < largest
    if len(np.unique(n_arr[rest])) < MIN_SIZES:
        raise ValueError(f"extrapolating to the largest size needs {MIN_SIZES} smaller sizes to fit, got "
                         f"{len(np.unique(n_arr[rest]))}")
    law = _fit(n_arr[rest], loss_arr[rest])
    return Extrapolation(law=law, largest=largest, predicted=float(law(largest)),
                         measured=float(loss_arr[~rest].mean()))


def bootstrap_alpha(n: Sequence[float], loss: Sequence[float], samples: int = 1000, seed: int = 0,
                    level: float = 0.9) -> tuple[float, float]:
    """A percentile interval for alpha by the residual bootstrap (Efron & Tibshirani 1993, "An Introduction
    to the Bootstrap", Section 9.5; Davison & Hinkley 1997, Section 6.2.3).

    Fit once; then ``samples`` times, add to the fitted losses residuals drawn with replacement from the
    fit's (centred, and inflated by sqrt(m / (m - 3)) since a 3-parameter fit leaves its m residuals
    smaller than the noise), refit, and keep alpha. The interval is the (1 -/+ level) / 2 quantiles.

    Residuals, not (N, loss) pairs, in every case, with one seed per size or several: the sizes are a
    design the experimenter chose, not a sample, and the randomness is in the loss. Resampling pairs from
    5 sizes keeps all 5 in under 4% of draws; the rest fit alpha on 3 or 4 sizes (with 3, the law passes
    through them exactly), which widens the interval with a change of design the experiment never made.
    Resampling residuals keeps every size in every draw, so the fewer-than-3-sizes case never arises and
    nothing is redrawn or skipped. The price: it assumes the residuals are exchangeable (equal noise at
    every size), and lack of fit is resampled as if it were noise (which widens the interval, the safe
    side). Needs at least 4 points: a 3-parameter fit to 3 leaves no residual to resample.
    """
    n_arr, loss_arr = _points(n, loss)
    m = len(loss_arr)
    if m <= 3:
        raise ValueError(f"a bootstrap interval needs at least 4 points (3 parameters leave no residuals), "
                         f"got {m}")
    if not 0 < level < 1:
        raise ValueError(f"level must lie strictly between 0 and 1, got {level}")
    if samples < 1:
        raise ValueError(f"samples must be at least 1, got {samples}")
    law = _fit(n_arr, loss_arr)
    fitted = np.asarray(law(n_arr))
    residuals = loss_arr - fitted
    residuals = (residuals - residuals.mean()) * math.sqrt(m / (m - 3))
    rng = np.random.default_rng(seed)
    alphas = np.array([_fit(n_arr, fitted + rng.choice(residuals, size=m, replace=True)).alpha
                       for _ in range(samples)])
    low, high = np.quantile(alphas, [(1 - level) / 2, (1 + level) / 2])
    return float(low), float(high)


@dataclass(frozen=True)
class ScalingFit:
    """Everything the GPT milestone's scaling claim is judged by."""

    law: PowerLaw
    """Fitted on every point."""
    r2: float
    """R^2 of ``law`` over every point."""
    extrapolation: Extrapolation
    """The largest size predicted from the others."""
    alpha_interval: tuple[float, float]
    """90% residual-bootstrap percentile interval for alpha."""
    points: int
    """How many (N, loss) points were fitted (sizes times seeds)."""


def scaling_fit(n: Sequence[float], loss: Sequence[float], samples: int = 1000, seed: int = 0) -> ScalingFit:
    """Fit the law on every point, score it, extrapolate to the largest size and bootstrap alpha."""
    n_arr, loss_arr = _points(n, loss)
    law = _fit(n_arr, loss_arr)
    return ScalingFit(law=law, r2=r_squared(law, n_arr, loss_arr),
                      extrapolation=extrapolate_largest(n_arr, loss_arr),
                      alpha_interval=bootstrap_alpha(n_arr, loss_arr, samples=samples, seed=seed),
                      points=len(loss_arr))


def scaling_figure(n: Sequence[float], loss: Sequence[float], flops: Sequence[float], law: PowerLaw,
                   title: str, out: Path) -> None:
    """Two log-log panels, after Kaplan et al. 2020's Figure 1: validation loss against parameters (every
    point, the fitted law, and the largest size's loss as predicted from the others), and against
    training FLOPs (one colour per size). ``flops`` holds each point's training compute, like ``loss``."""
    # Imported here so that the fit stays free of torch (which the figure module's writer imports).
    from matplotlib.ticker import FormatStrFormatter

    from .figures import plt, save

    n_arr, loss_arr = _points(n, loss)
    flops_arr = np.asarray(flops, dtype=float)
    if flops_arr.shape != n_arr.shape:
        raise ValueError(f"flops must have one value per point, got {flops_arr.size} for {n_arr.size} points")
    sizes = np.unique(n_arr)
    fig, (by_n, by_c) = plt.subplots(1, 2, figsize=(11, 4.2))
    grid = np.geomspace(sizes[0], sizes[-1], 200)
    by_n.plot(n_arr, loss_arr, "o", color="C0", label="measured")
    by_n.plot(grid, law(grid), "-", color="C1",
              label=f"L = {law.E:.3g} + {law.A:.3g} N^-{law.alpha:.3g}")
    if len(sizes) > MIN_SIZES:
        ex = extrapolate_largest(n_arr, loss_arr)
        by_n.plot(grid, ex.law(grid), ":", color="C2", label="fit without the largest")
        by_n.plot([ex.largest], [ex.predicted], "*", ms=14, color="C2",
                  label=f"predicted largest ({ex.predicted:.3f}, error {ex.error:.3f})")
    by_n.set(xscale="log", yscale="log", xlabel="parameters N", ylabel="validation loss (nats/char)",
             title="loss against parameters")
    by_n.legend(fontsize=8)
    for k, size in enumerate(sizes):
        at = n_arr == size
        by_c.plot(flops_arr[at], loss_arr[at], "o", color=f"C{k % 10}", label=f"N = {size:.3g}")
    by_c.set(xscale="log", yscale="log", xlabel="training FLOPs", ylabel="validation loss (nats/char)",
             title="loss against compute")
    by_c.legend(fontsize=8)
    for ax in (by_n, by_c):
        # Losses span less than a decade: plain numbers read better than 2.4 x 10^0.
        ax.yaxis.set_major_formatter(FormatStrFormatter("%.2g"))
        ax.yaxis.set_minor_formatter(FormatStrFormatter("%.2g"))
    fig.suptitle(title)
    save(fig, out)
