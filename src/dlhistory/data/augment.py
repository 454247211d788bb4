"""Image augmentations for contrastive learning, on whole batches of tensors (Chen et al. 2020, "A
Simple Framework for Contrastive Learning of Visual Representations", section 3 and appendix A).

SimCLR's finding is that the composition matters, and the random crop most: two crops of one image
must be recognised as the same image, which forces features that survive the crop. Fashion-MNIST is
grey and 28x28, so colour jitter becomes brightness and contrast jitter and there is no blur; random
erasing (Zhong et al. 2020) hides a patch. Every draw comes from a ``torch.Generator``, so a batch's
views are a pure function of the seed the caller gives.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class AugmentConfig:
    """The composition and its strengths (SimCLR's, adapted to 28x28 grey images)."""

    crop_scale: tuple[float, float] = (0.25, 1.0)
    """Area of the random crop, as a fraction of the image (SimCLR: 0.08 to 1 at 224x224)."""
    crop_ratio: tuple[float, float] = (3 / 4, 4 / 3)
    """Aspect ratio of the crop (SimCLR's, Inception's)."""
    flip: float = 0.5
    """Probability of a horizontal flip."""
    shift: float = 2 / 28
    """Largest translation, as a fraction of the side, after the crop (2 pixels)."""
    jitter: float = 0.8
    """Probability of brightness and contrast jitter (SimCLR applies colour jitter with 0.8)."""
    brightness: float = 0.4
    contrast: float = 0.4
    erase: float = 0.5
    """Probability of erasing a random patch of 2% to 20% of the area."""

    def __post_init__(self) -> None:
        low, high = self.crop_scale
        if not 0 < low <= high <= 1 or not 0 < self.crop_ratio[0] <= self.crop_ratio[1]:
            raise ValueError("needs 0 < crop_scale[0] <= crop_scale[1] <= 1 and a positive crop_ratio range")
        chances = (self.flip, self.jitter, self.erase)
        if not all(0 <= p <= 1 for p in chances) or min(self.shift, self.brightness, self.contrast) < 0:
            raise ValueError("needs probabilities in [0, 1] and non-negative shift, brightness, contrast")


def _uniform(n: int, low: float, high: float, generator: torch.Generator) -> torch.Tensor:
    return low + (high - low) * torch.rand(n, generator=generator)


def crop_flip_shift(x: torch.Tensor, config: AugmentConfig, generator: torch.Generator) -> torch.Tensor:
    """A random resized crop, a horizontal flip and a small translation of each image, as one affine
    resampling (bilinear): (N, C, H, W) -> the same shape."""
    n = len(x)
    area = _uniform(n, *config.crop_scale, generator)
    ratio = torch.exp(_uniform(n, math.log(config.crop_ratio[0]), math.log(config.crop_ratio[1]), generator))
    width, height = (area * ratio).sqrt().clamp(max=1), (area / ratio).sqrt().clamp(max=1)
    # Where the crop lies (its centre, in [-1, 1] coordinates), then the translation.
    cx = _uniform(n, -1, 1, generator) * (1 - width) + _uniform(n, -1, 1, generator) * 2 * config.shift
    cy = _uniform(n, -1, 1, generator) * (1 - height) + _uniform(n, -1, 1, generator) * 2 * config.shift
    flip = torch.where(torch.rand(n, generator=generator) < config.flip, -1.0, 1.0)
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0], theta[:, 0, 2] = width * flip, cx
    theta[:, 1, 1], theta[:, 1, 2] = height, cy
    grid = F.affine_grid(theta.to(x.device, x.dtype), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def jitter(x: torch.Tensor, config: AugmentConfig, generator: torch.Generator) -> torch.Tensor:
    """Brightness (add) and contrast (scale around the image's mean) jitter, with probability
    ``config.jitter``, clamped to [0, 1]."""
    n = len(x)
    apply = (torch.rand(n, generator=generator) < config.jitter).to(x.device)
    brightness = _uniform(n, -config.brightness, config.brightness, generator).to(x.device)
    contrast = _uniform(n, 1 - config.contrast, 1 + config.contrast, generator).to(x.device)
    mean = x.mean((1, 2, 3), keepdim=True)
    contrast, brightness = contrast[:, None, None, None], brightness[:, None, None, None]
    changed = ((x - mean) * contrast + mean + brightness).clamp(0, 1)
    return torch.where(apply[:, None, None, None], changed, x)


def erase(x: torch.Tensor, config: AugmentConfig, generator: torch.Generator) -> torch.Tensor:
    """With probability ``config.erase``, a random rectangle of 2% to 20% of the area set to 0."""
    n, _, h, w = x.shape
    apply = torch.rand(n, generator=generator) < config.erase
    area = _uniform(n, 0.02, 0.2, generator) * h * w
    ratio = torch.exp(_uniform(n, math.log(0.3), math.log(3.3), generator))
    eh = (area * ratio).sqrt().round().clamp(1, h)
    ew = (area / ratio).sqrt().round().clamp(1, w)
    top = (torch.rand(n, generator=generator) * (h - eh + 1)).floor()
    left = (torch.rand(n, generator=generator) * (w - ew + 1)).floor()
    rows, cols = torch.arange(h)[None, :, None], torch.arange(w)[None, None, :]
    box = ((rows >= top[:, None, None]) & (rows < (top + eh)[:, None, None])
           & (cols >= left[:, None, None]) & (cols < (left + ew)[:, None, None]) & apply[:, None, None])
    return x.masked_fill(box[:, None].to(x.device), 0.0)


def augment(x: torch.Tensor, config: AugmentConfig, generator: torch.Generator) -> torch.Tensor:
    """SimCLR's composition on images (N, C, H, W) in [0, 1]: crop, flip and shift; jitter; erase."""
    return erase(jitter(crop_flip_shift(x, config, generator), config, generator), config, generator)
