"""Measures of a set of generated samples against real ones, in some feature space.

* :func:`frechet_distance` -- Heusel et al. 2017: fit a Gaussian to each set's features and take the
  Fréchet (2-Wasserstein) distance between them; in Inception-v3 features it is the FID. It depends on
  the number of samples (it is biased upwards for small n), so it is always reported with its n.
* :func:`precision_recall` -- Kynkäänniemi et al. 2019, "Improved Precision and Recall Metric for
  Assessing Generative Models": precision is the share of generated samples inside the real data's
  manifold, recall the share of real samples inside the generated one; each manifold is the union of
  balls around its points reaching their k-th nearest neighbour (k = 3).
* :func:`class_coverage` -- the entropy of the classes a classifier assigns to the samples, in bits:
  log2(10) = 3.32 when every class is equally present, lower when modes collapse.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import scipy.linalg
import torch


def gaussian(features: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Mean (D,) and covariance (D, D), float64, of features (N, D), N >= 2."""
    x = features.double().cpu().numpy()
    if len(x) < 2:
        raise ValueError(f"{len(x)} samples: a covariance needs at least 2")
    return x.mean(0), np.cov(x, rowvar=False)


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """||mu1 - mu2||^2 + Tr(sigma1 + sigma2 - 2 (sigma1 sigma2)^(1/2)) (Dowson & Landau 1982).

    The matrix square root is scipy's (Schur method). Where the product is singular (fewer samples
    than dimensions) its root is taken of the product with both covariances nudged by 1e-6 I, as the
    reference implementation (pytorch-fid) does; a tiny imaginary part from rounding is dropped."""
    diff = mu1 - mu2
    with warnings.catch_warnings():  # a singular product is handled below, not printed
        warnings.simplefilter("ignore")
        root = scipy.linalg.sqrtm(sigma1 @ sigma2)
        if not np.isfinite(root).all():
            offset = np.eye(len(sigma1)) * 1e-6
            root = scipy.linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
    if np.iscomplexobj(root):
        if not np.allclose(np.diagonal(root).imag, 0, atol=1e-3):
            largest = np.abs(root.imag).max()
            raise ValueError(f"the covariance product's square root is complex ({largest:.3g})")
        root = root.real
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(root))


def feature_distance(real: torch.Tensor, fake: torch.Tensor) -> float:
    """The Fréchet distance between two sets of features (N, D)."""
    return frechet_distance(*gaussian(real), *gaussian(fake))


def _radii(points: torch.Tensor, k: int, batch: int) -> torch.Tensor:
    """Distance of each point to its k-th nearest other point (itself excluded)."""
    return torch.cat([torch.cdist(points[i:i + batch], points).kthvalue(k + 1, dim=1).values
                      for i in range(0, len(points), batch)])


def _inside(queries: torch.Tensor, centres: torch.Tensor, radii: torch.Tensor, batch: int) -> torch.Tensor:
    """For each query, whether it lies within some centre's ball."""
    return torch.cat([(torch.cdist(queries[i:i + batch], centres) <= radii[None]).any(1)
                      for i in range(0, len(queries), batch)])


def precision_recall(real: torch.Tensor, fake: torch.Tensor, k: int = 3,
                     batch: int = 1024) -> tuple[float, float]:
    """(precision, recall) of generated features ``fake`` against ``real`` (N, D) each."""
    if min(len(real), len(fake)) <= k:
        raise ValueError(f"needs more than k = {k} samples of each")
    real, fake = real.double(), fake.double()
    precision = _inside(fake, real, _radii(real, k, batch), batch).double().mean()
    recall = _inside(real, fake, _radii(fake, k, batch), batch).double().mean()
    return float(precision), float(recall)


def class_coverage(labels: torch.Tensor, classes: int) -> float:
    """Entropy (bits) of the histogram of predicted ``labels``: log2(classes) at best, 0 for one class."""
    counts = torch.bincount(labels.flatten().cpu(), minlength=classes).double()
    p = counts[counts > 0] / counts.sum()
    return max(0.0, float(-(p * p.log2()).sum())) if len(p) else math.nan  # no -0.0
