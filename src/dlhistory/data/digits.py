"""scikit-learn's handwritten digits: 1,797 8x8 grayscale images of 0-9 (the UCI "optdigits" test set).

It ships inside scikit-learn, so it needs no download: tests and the example milestone of
``docs/adding-a-milestone.md`` use it. Pixels are 0-16; they are scaled to 0-255 so the images are
uint8 tensors like Fashion-MNIST's and the same :class:`~dlhistory.data.images.ImageData` batches them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from .images import ImageData


@dataclass(frozen=True)
class DigitsConfig:
    """A fixed split of the 1,797 digits into training, validation and test images."""

    val_size: int = 300
    test_size: int = 497
    split_seed: int = 0
    """Seed of the split; fixed, so every run and variant sees the same one."""
    train_eval_size: int = 1000
    """Training images used to measure the training loss and accuracy at evaluation."""
    augment: Literal["none"] = "none"
    crop_pad: int = 0

    def __post_init__(self) -> None:
        if self.val_size < 1 or self.test_size < 1 or self.val_size + self.test_size >= 1797:
            raise ValueError("needs positive val_size and test_size that leave training images")


def digits_data(config: DigitsConfig, ctx) -> ImageData:
    """The data component's builder: (N, 1, 8, 8) uint8 images and their labels, split once."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = torch.from_numpy(digits.images * (255 / 16)).round().to(torch.uint8)[:, None]  # (N, 1, 8, 8)
    y = torch.from_numpy(digits.target).long()
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(config.split_seed))
    test, val = order[: config.test_size], order[config.test_size: config.test_size + config.val_size]
    train = order[config.test_size + config.val_size:]
    splits = {"train": (x[train], y[train]), "val": (x[val], y[val]), "test": (x[test], y[test])}
    return ImageData(config, splits, tuple(str(d) for d in range(10)), ctx.seed, ctx.rank, ctx.world_size)
