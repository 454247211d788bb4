"""Small image-classification datasets held in memory as tensors and batched by indexing.

Fashion-MNIST is 47 MB as uint8: it fits in memory (or GPU memory) whole, so a batch is one indexing
operation instead of a per-sample ``DataLoader``. The validation split is carved from the training set
with a fixed seed, independent of the run's seed, so every run and every variant sees the same split;
the test set is only used for final reporting.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F

from . import fashion_mnist

TRAIN_IMAGES, TEST_IMAGES = 60_000, 10_000


@dataclass(frozen=True)
class FashionMNISTConfig:
    """Fashion-MNIST (Xiao et al. 2017): 60k training and 10k test 28x28 grayscale images, 10 classes."""

    val_size: int = 5000
    """Images carved from the 60k training set for validation (model selection, early curves)."""
    split_seed: int = 0
    """Seed of the train/validation split; fixed so all runs share one split."""
    train_size: int | None = None
    """Use only this many training images (None: all that remain after the validation split)."""
    test_size: int | None = None
    """Use only the first N test images (smoke presets only; reported numbers use all 10k)."""
    augment: Literal["none", "flip", "crop", "flip+crop"] = "none"
    """Training-time augmentation: horizontal flips and/or random crops of a zero-padded image."""
    crop_pad: int = 2
    """Padding, in pixels, of the random crop (the crop is the original size)."""
    train_eval_size: int = 10000
    """Training images (unaugmented) used to measure the training loss and accuracy at evaluation."""

    def __post_init__(self) -> None:
        sizes = (self.val_size, self.train_size, self.test_size, self.train_eval_size)
        if min(n for n in sizes if n is not None) < 1 or self.val_size >= TRAIN_IMAGES:
            raise ValueError(f"sizes must be positive, and val_size below the {TRAIN_IMAGES} training images")
        if self.train_size is not None and self.train_size > TRAIN_IMAGES - self.val_size:
            raise ValueError(f"train_size {self.train_size}: {TRAIN_IMAGES - self.val_size} training images "
                             f"remain after the {self.val_size} of val_size")
        if self.test_size is not None and self.test_size > TEST_IMAGES:
            raise ValueError(f"test_size {self.test_size}: the test set has {TEST_IMAGES} images")


class ImageData:
    """Splits of an image-classification dataset as tensors: images uint8 (N, C, H, W), labels int64 (N,)."""

    def __init__(self, config: FashionMNISTConfig, splits: dict[str, tuple[torch.Tensor, torch.Tensor]],
                 classes: tuple[str, ...], seed: int, rank: int = 0, world_size: int = 1):
        self.config = config
        self.splits = splits
        self.classes = classes
        self.seed, self.rank, self.world_size = seed, rank, world_size
        self._epoch, self._epoch_order = -1, torch.empty(0, dtype=torch.long)
        train_x = splits["train"][0].float() / 255
        # Normalisation statistics from the training part only, never validation or test.
        self.mean, self.std = train_x.mean().item(), train_x.std().item()

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.splits["train"][0].shape[1:])

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def size(self, split: str) -> int:
        return len(self.splits[split][1])

    def to(self, device: torch.device) -> ImageData:
        """Move every split to ``device`` once, so batches are indexed where the model runs."""
        self.splits = {k: (x.to(device), y.to(device)) for k, (x, y) in self.splits.items()}
        return self

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        return (x.float() / 255 - self.mean) / self.std

    def steps_per_epoch(self, batch_size: int) -> int:
        return max(1, self.size("train") // batch_size)

    def train_batch(self, step: int, batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The augmented training batch of global ``step``.

        The epoch's order is a permutation seeded by (seed, epoch), so the batch of a step is a pure
        function of the step: a resumed run sees exactly the batches it would have seen. Under data
        parallelism each of ``world_size`` processes takes every world_size-th example of the batch.
        """
        epoch, i = divmod(step, self.steps_per_epoch(batch_size))
        index = self._order(epoch)[i * batch_size:(i + 1) * batch_size][self.rank::self.world_size]
        x, y = self.splits["train"]
        index = index.to(x.device)
        return self.augment(self.normalize(x[index])), y[index]

    def _order(self, epoch: int) -> torch.Tensor:
        """This epoch's permutation of the training set (computed once per epoch)."""
        if self._epoch != epoch:
            generator = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            self._epoch, self._epoch_order = epoch, torch.randperm(self.size("train"), generator=generator)
        return self._epoch_order

    def eval_split(self, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        """Raw images and labels to evaluate on; 'train' means a fixed subset of the training split."""
        x, y = self.splits[split]
        if split == "train":
            x, y = x[: self.config.train_eval_size], y[: self.config.train_eval_size]
        return x, y

    def eval_batches(self, split: str, batch_size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Unaugmented, normalised batches of :meth:`eval_split`."""
        x, y = self.eval_split(split)
        for i in range(0, len(y), batch_size):
            yield self.normalize(x[i:i + batch_size]), y[i:i + batch_size]

    def augment(self, x: torch.Tensor) -> torch.Tensor:
        """Random horizontal flips and translations (Krizhevsky et al. 2012, section 4.1), in torch."""
        mode = self.config.augment
        if "crop" in mode:
            x = random_crop(x, self.config.crop_pad)
        if "flip" in mode:
            flip = torch.rand(x.shape[0], device=x.device) < 0.5
            x = torch.where(flip[:, None, None, None], x.flip(3), x)
        return x


def random_crop(x: torch.Tensor, pad: int) -> torch.Tensor:
    """Crop each image of (B, C, H, W) at a random offset from its zero-padded copy, in one gather."""
    B, C, H, W = x.shape
    padded = F.pad(x, (pad, pad, pad, pad))
    dy = torch.randint(0, 2 * pad + 1, (B,), device=x.device)
    dx = torch.randint(0, 2 * pad + 1, (B,), device=x.device)
    rows = (dy[:, None] + torch.arange(H, device=x.device))[:, None, :, None]  # (B, 1, H, 1)
    cols = (dx[:, None] + torch.arange(W, device=x.device))[:, None, None, :]  # (B, 1, 1, W)
    batch = torch.arange(B, device=x.device)[:, None, None, None]
    channel = torch.arange(C, device=x.device)[None, :, None, None]
    return padded[batch, channel, rows, cols]


def fashion_mnist_data(config: FashionMNISTConfig, ctx) -> ImageData:
    """Build the Fashion-MNIST data component: load (verified), split train/validation, subset."""
    arrays = fashion_mnist.load_arrays(ctx.data_dir)
    x, y = arrays["train"]
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(config.split_seed))
    val, train = order[: config.val_size], order[config.val_size:]
    if config.train_size is not None:
        train = train[: config.train_size]
    test_x, test_y = arrays["test"]
    if config.test_size is not None:
        test_x, test_y = test_x[: config.test_size], test_y[: config.test_size]
    splits = {"train": (x[train], y[train]), "val": (x[val], y[val]), "test": (test_x, test_y)}
    return ImageData(config, splits, fashion_mnist.CLASSES, ctx.seed, ctx.rank, ctx.world_size)
