"""2012 AlexNet: a deep CNN beats the hand-engineered pipeline.

Krizhevsky, Sutskever & Hinton, "ImageNet Classification with Deep Convolutional Neural Networks",
NeurIPS 2012. https://papers.nips.cc/paper/4824

Before 2012 the best image classifiers were pipelines: hand-engineered features (SIFT, HOG) fed to a
kernel SVM. AlexNet learned the features too, with a deep convolutional network trained by SGD on GPUs,
and won ImageNet 2012 by a wide margin. Its ingredients: ReLU instead of saturating units (section 3.1),
local response normalisation (3.3; here batch normalisation, its successor, by default), overlapping
max-pooling (3.4), dropout in the fully connected layers (4.2), data augmentation by random
crops and horizontal flips (4.1), and SGD with momentum 0.9 and weight decay 5e-4 (5).

Here the same ingredients are scaled to 28x28 Fashion-MNIST, and the baselines are the classical
pipeline: an RBF-kernel SVM on raw pixels, and on HOG features (Dalal & Triggs 2005).
Changed vs the baseline: the model (CNN vs SVM), and with it the loss (cross-entropy vs hinge) and the
algorithm (SGD vs the SVM's quadratic-programming solver). The data are identical.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..algorithms.supervised import SGDConfig, minibatch_sgd
from ..data.images import FashionMNISTConfig, ImageData, fashion_mnist_data
from ..losses.classification import CrossEntropyConfig, cross_entropy
from ..spec import Claim, Component, Context, Metric, Milestone, Recipe

# ------------------------------------------------------------------------------------------------
# Data: Fashion-MNIST with AlexNet's augmentation (random translations and horizontal flips).

# Random crops pay off only in longer training: the cpu preset flips, the full preset flips and crops.
DATA = Component("fashion-mnist", fashion_mnist_data, FashionMNISTConfig(augment="flip"))


# ------------------------------------------------------------------------------------------------
# Model: an AlexNet-style CNN for 28x28 inputs.


@dataclass(frozen=True)
class AlexNetConfig:
    """AlexNet's ingredients at 28x28: five 3x3 conv layers, overlapping max-pooling, two FC layers."""

    width: int = 32
    """Channels of the first conv block; the later blocks have 2x and 4x (AlexNet: 96/256/384)."""
    hidden: int = 512
    """Units of the fully connected hidden layer (AlexNet: 4096)."""
    dropout: float = 0.25
    """Dropout before each fully connected layer (AlexNet: 0.5, for a network 60x larger)."""
    norm: Literal["batch", "lrn", "none"] = "batch"
    """Normalisation. AlexNet used local response normalisation ('lrn', section 3.3) after its first
    blocks; batch normalisation (Ioffe & Szegedy 2015) is its successor and reaches 93% in about 8
    epochs instead of 12+ here, so it is the default. 'lrn' gives the 2012 original."""
    test_flips: bool = False
    """At evaluation, average the predictions for each image and its mirror image. AlexNet averaged
    ten patches and their reflections (section 4.1); the flip is the part that fits a 28x28 image.
    Training is unchanged: the flips cost evaluation time only."""


class AlexNet(nn.Module):
    """Conv-ReLU blocks with overlapping 3x3/2 max-pooling, then dropout + fully connected layers."""

    def __init__(self, config: AlexNetConfig, in_channels: int, num_classes: int, size: int):
        super().__init__()
        w = config.width
        self.test_flips = config.test_flips

        def block(c_in: int, c_out: int, convs: int) -> list[nn.Module]:
            layers: list[nn.Module] = []
            for i in range(convs):
                layers.append(nn.Conv2d(c_in if i == 0 else c_out, c_out, 3, padding=1))
                if config.norm == "batch":
                    layers.append(nn.BatchNorm2d(c_out))
                layers.append(nn.ReLU(inplace=True))
            if config.norm == "lrn":
                layers.append(nn.LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=2.0))  # paper's constants
            return [*layers, nn.MaxPool2d(3, stride=2, padding=1)]  # overlapping pooling: z=3, s=2

        self.features = nn.Sequential(*block(in_channels, w, 2), *block(w, 2 * w, 2), *block(2 * w, 4 * w, 1))
        out = size
        for _ in range(3):
            out = (out + 1) // 2  # 28 -> 14 -> 7 -> 4
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Dropout(config.dropout), nn.Linear(4 * w * out * out, config.hidden), nn.ReLU(inplace=True),
            nn.Dropout(config.dropout), nn.Linear(config.hidden, num_classes),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training or not self.test_flips:
            return self.classifier(self.features(x))  # (B, C, 28, 28) -> (B, classes)
        # Both views in one batch; the output is the log of the mean of their softmax probabilities,
        # which the cross-entropy's log-softmax leaves unchanged, so the validation loss stays honest.
        logits = self.classifier(self.features(torch.cat([x, x.flip(-1)]))).float()
        views = F.log_softmax(logits, -1).view(2, len(x), -1)
        return torch.logsumexp(views, 0) - math.log(2)


def alexnet(config: AlexNetConfig, data: ImageData) -> AlexNet:
    channels, size, _ = data.shape
    return AlexNet(config, channels, data.num_classes, size)


MODEL = Component("alexnet-cnn", alexnet, AlexNetConfig())

# ------------------------------------------------------------------------------------------------
# Loss: softmax cross-entropy, the proxy for accuracy.

LOSS = Component("cross-entropy", cross_entropy, CrossEntropyConfig())

# ------------------------------------------------------------------------------------------------
# Algorithm: mini-batch SGD, batch 128, momentum 0.9, weight decay 5e-4 as in the paper (section 5).
# The paper divided the learning rate by 10 by hand when validation error stalled; a one-cycle
# schedule (warm-up then cosine decay) reaches the same end automatically in a fixed budget.

SGD = SGDConfig(epochs=8, batch_size=128, lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4,
                schedule="onecycle")
ALGORITHM = Component("sgd-momentum", minibatch_sgd, SGD)


# ================================================================================================
# The baselines: the hand-engineered pipeline, features + RBF-kernel SVM (Cortes & Vapnik 1995).


@dataclass(frozen=True)
class KernelSVMConfig:
    """An SVM with a Gaussian (RBF) kernel k(x, x') = exp(-gamma ||x - x'||^2) on fixed features."""

    features: Literal["pixels", "hog"] = "pixels"
    """Raw pixels, or HOG: histograms of oriented gradients (Dalal & Triggs 2005)."""
    gamma: float | None = None
    """Kernel width; None: 1 / (n_features * variance), scikit-learn's 'scale'."""
    hog_cell: int = 4
    """HOG cell size in pixels (28/4 = 7x7 cells)."""
    hog_bins: int = 9
    """Unsigned orientation bins over 0-180 degrees, as in Dalal & Triggs."""


def hog(images: torch.Tensor, cell: int = 4, bins: int = 9, block: int = 2) -> torch.Tensor:
    """Histogram-of-oriented-gradients features (Dalal & Triggs 2005), vectorised in torch.

    images: (N, 1, H, W) in [0, 1]. Centered [-1, 0, 1] gradients; each pixel votes its gradient
    magnitude into the two nearest of ``bins`` unsigned orientation bins; votes are summed over
    ``cell`` x ``cell`` cells; overlapping ``block`` x ``block`` cell blocks are L2-Hys normalised.
    Returns (N, blocks * block^2 * bins); 1296 features for 28x28 images with the defaults.
    """
    x = images[:, 0].float()  # (N, H, W)
    gx, gy = torch.zeros_like(x), torch.zeros_like(x)
    gx[:, :, 1:-1] = x[:, :, 2:] - x[:, :, :-2]
    gy[:, 1:-1, :] = x[:, 2:, :] - x[:, :-2, :]
    magnitude = torch.hypot(gx, gy)
    angle = torch.rad2deg(torch.atan2(gy, gx)) % 180.0  # unsigned orientation
    position = angle / (180.0 / bins) - 0.5  # bin centres at (i + 0.5) * 180 / bins
    low = torch.floor(position)
    upper_weight = position - low
    low = low.long() % bins
    votes = (F.one_hot(low, bins) * (magnitude * (1 - upper_weight))[..., None]
             + F.one_hot((low + 1) % bins, bins) * (magnitude * upper_weight)[..., None])  # (N, H, W, bins)
    N, H, W, _ = votes.shape
    cells = votes[:, : H // cell * cell, : W // cell * cell]
    cells = cells.reshape(N, H // cell, cell, W // cell, cell, bins).sum((2, 4))  # (N, Hc, Wc, bins)
    blocks = cells.unfold(1, block, 1).unfold(2, block, 1)  # (N, Hc-1, Wc-1, bins, block, block)
    blocks = blocks.permute(0, 1, 2, 4, 5, 3)  # Dalal & Triggs' order within a block: cell row, col, bin
    blocks = blocks.reshape(N, blocks.shape[1], blocks.shape[2], -1)
    blocks = blocks / torch.sqrt((blocks ** 2).sum(-1, keepdim=True) + 1e-10)
    blocks = blocks.clamp(max=0.2)  # L2-Hys: clip, then renormalise
    blocks = blocks / torch.sqrt((blocks ** 2).sum(-1, keepdim=True) + 1e-10)
    return blocks.reshape(N, -1)


class KernelSVM:
    """Fixed features followed by a kernel SVM (scikit-learn's libsvm); not an ``nn.Module``."""

    def __init__(self, config: KernelSVMConfig, data: ImageData):
        self.config, self.data = config, data
        self.svc = None
        self.parameter_count = 0

    def features(self, images: torch.Tensor) -> np.ndarray:
        """(N, 1, H, W) uint8 -> (N, F) float64 features, standardised by the data's statistics."""
        x = images.float() / 255
        if self.config.features == "hog":
            return hog(x, self.config.hog_cell, self.config.hog_bins).double().numpy()
        return ((x - self.data.mean) / self.data.std).flatten(1).double().numpy()


def kernel_svm(config: KernelSVMConfig, data: ImageData) -> KernelSVM:
    return KernelSVM(config, data)


@dataclass(frozen=True)
class HingeConfig:
    """The soft-margin SVM objective: 1/2 ||w||^2 + C * sum of hinge losses max(0, 1 - y f(x))."""

    C: float = 10.0
    """Weight of the hinge losses against the margin (the Fashion-MNIST benchmark's best SVC: C=10)."""


def hinge(config: HingeConfig) -> HingeConfig:
    """The solver minimises the hinge objective itself; the component only carries its weight C."""
    return config


@dataclass(frozen=True)
class SMOConfig:
    """libsvm's SMO solver (Platt 1998; Fan et al. 2005), one-vs-one over the 10 classes."""

    max_train: int | None = 10000
    """Training examples the solver sees (a random subset): kernel SVM training grows as n^2 to n^3,
    so the cpu preset trains on a subset; None uses the whole training split (minutes to hours)."""
    cache_mb: int = 2000
    """Kernel cache of libsvm, in MB."""


class SVMFit:
    """The whole baseline 'training' is one call to the solver: a procedure of one step."""

    total_steps = 1

    def __init__(self, config: SMOConfig, model: KernelSVM, loss: HingeConfig, data: ImageData, ctx: Context):
        from sklearn.svm import SVC

        self.config, self.model, self.data, self.ctx = config, model, data, ctx
        gamma = "scale" if model.config.gamma is None else model.config.gamma
        model.svc = SVC(C=loss.C, kernel="rbf", gamma=gamma, cache_size=config.cache_mb)
        self.samples_per_step = min(data.size("train"), config.max_train or data.size("train"))
        self.modules: dict = {}

    def update(self, step: int) -> dict[str, float]:
        x, y = self.data.splits["train"]
        order = torch.randperm(len(y), generator=torch.Generator().manual_seed(self.ctx.seed))
        index = order[: self.samples_per_step]
        self.model.svc.fit(self.model.features(x[index].cpu()), y[index].cpu().numpy())
        svc = self.model.svc
        self.model.parameter_count = int(svc.support_vectors_.size + svc.dual_coef_.size)
        return {"support_vectors": float(len(self.model.svc.support_))}

    def evaluate(self, split: str) -> dict[str, float]:
        x, y = self.data.eval_split(split)
        predicted = self.model.svc.predict(self.model.features(x.cpu()))
        return {"accuracy": float((predicted == y.cpu().numpy()).mean())}

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


def smo(config: SMOConfig, model: KernelSVM, loss: HingeConfig, data: ImageData, ctx: Context) -> SVMFit:
    return SVMFit(config, model, loss, data, ctx)


def svm_baseline(features: str, max_train: dict[str, int | None]):
    """Swap model, loss and algorithm for the SVM pipeline; the data stay identical."""

    def swaps(preset: str) -> dict[str, Component]:
        return {"model": Component(f"svm-rbf-{features}", kernel_svm, KernelSVMConfig(features=features)),
                "loss": Component("hinge", hinge, HingeConfig()),
                "algorithm": Component("smo", smo, SMOConfig(max_train=max_train[preset]))}

    return swaps


# ================================================================================================
# Presets and the milestone.

CPU = Recipe(DATA, MODEL, LOSS, ALGORITHM)
SMOKE = CPU.swap(
    data=DATA.with_config(
        dataclasses.replace(DATA.config, train_size=512, val_size=500, test_size=500,
                            train_eval_size=500)),
    model=MODEL.with_config(AlexNetConfig(width=8, hidden=32)),
    algorithm=ALGORITHM.with_config(dataclasses.replace(SGD, epochs=1, batch_size=64)),
)
FULL = CPU.swap(
    data=DATA.with_config(FashionMNISTConfig(augment="flip+crop")),
    model=MODEL.with_config(AlexNetConfig(width=64, hidden=1024, dropout=0.5)),
    algorithm=ALGORITHM.with_config(dataclasses.replace(SGD, epochs=60)),
)
SVM_SUBSET = {"smoke": 300, "cpu": 10000, "full": None}

MILESTONE = Milestone(
    key="alexnet",
    year=2012,
    title="AlexNet",
    citation="Krizhevsky, Sutskever & Hinton. ImageNet Classification with Deep Convolutional Neural "
             "Networks. NeurIPS 2012.",
    url="https://papers.nips.cc/paper/4824",
    showed="a deep CNN beats the hand-engineered pipeline (SVM on features) on image classification",
    variant="cnn",
    presets={"smoke": SMOKE, "cpu": CPU, "full": FULL},
    baselines={"svm": svm_baseline("pixels", SVM_SUBSET), "hog-svm": svm_baseline("hog", SVM_SUBSET)},
    changes=("model", "loss", "algorithm"),
    claim=Claim(
        statement="the CNN's test accuracy reaches the threshold and beats both SVM pipelines",
        metric="test_accuracy",
        direction="max",
        thresholds={"cpu": 0.93, "full": 0.945},
        report=(Metric("test_accuracy", "test accuracy", 2, percent=True),
                Metric("val_accuracy", "validation accuracy", 2, percent=True),
                Metric("train_seconds", "training seconds", 1),
                Metric("train_flops", "training FLOPs", 2, scientific=True)),
        paper="Fashion-MNIST benchmark: SVC (RBF, C=10) 89.7%, HOG+SVM 92.6%, ResNet-18 94.9%",
    ),
)
