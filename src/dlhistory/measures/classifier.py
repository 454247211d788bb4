"""The project's own Fashion-MNIST classifier, for measuring generated samples: which class each one
looks like (class coverage; a collapsed generator covers few) and a cheap 128-d feature space (the
Fréchet distance of the smoke preset, the tests and the evaluations during training, where Inception-v3
at 299x299 would cost more than the training).

A small CNN (two conv-ReLU-pool blocks, a 128-unit layer) trained once, seed 0, for 2 epochs with Adam
on the training split, then kept in the cache (:func:`measures_dir`): 89.1% test accuracy.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .. import checkpoint
from ..data.images import FashionMNISTConfig, fashion_mnist_data
from ..spec import Context
from . import measures_dir

VERSION = "fashion-mnist-cnn-1"
"""The cached file's name: change it when the network or its training changes."""
EPOCHS, BATCH, LR = 2, 128, 1e-3


class FashionClassifier(nn.Module):
    """Images (N, 1, 28, 28) in [-1, 1] -> class logits (N, 10); :meth:`features` gives the 128-d layer."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                                  nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                                  nn.Linear(64 * 7 * 7, 128), nn.ReLU())
        self.head = nn.Linear(128, 10)

    def features(self, images: torch.Tensor) -> torch.Tensor:
        return self.body(images)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(images))


def to_unit_range(pixels: torch.Tensor) -> torch.Tensor:
    """uint8 pixels -> [-1, 1], the range a GAN's generator writes in (tanh)."""
    return pixels.float() / 127.5 - 1


def train_classifier(data_dir: str | None = None) -> FashionClassifier:
    """Seed 0, EPOCHS epochs of Adam on the training part of the split every milestone uses (55,000
    images; nothing is selected, so the validation part is not needed)."""
    generator = torch.Generator().manual_seed(0)
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = FashionClassifier()
    data = fashion_mnist_data(FashionMNISTConfig(), Context(data_dir=data_dir))
    x, y = data.splits["train"]
    optimizer = torch.optim.Adam(model.parameters(), LR)
    model.train()
    for _ in range(EPOCHS):
        for index in torch.randperm(len(y), generator=generator).split(BATCH):
            loss = F.cross_entropy(model(to_unit_range(x[index])), y[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
    return model.eval()


def load_classifier(data_dir: str | None = None) -> FashionClassifier:
    """The cached classifier, trained (about a minute) and cached the first time."""
    path = measures_dir() / f"{VERSION}.safetensors"
    model = FashionClassifier()
    if path.is_file():
        model.load_state_dict(checkpoint.module_weights(path, "classifier"))
        return model.eval()
    model = train_classifier(data_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    checkpoint.save_weights(path, model)
    return model
