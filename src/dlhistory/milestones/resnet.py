"""2015 ResNet: residual connections let depth help instead of hurt.

He, Zhang, Ren & Sun, "Deep Residual Learning for Image Recognition", CVPR 2016 (arXiv 2015).
https://arxiv.org/abs/1512.03385

The *degradation problem*: stacking more layers onto a plain network (even with batch normalisation)
makes its *training* error higher, not lower -- so it is not overfitting but an optimisation
difficulty. A residual block learns F(x) and outputs F(x) + x: if the extra layers are not needed they
only have to push F towards zero, which is easy, instead of learning an identity map through a stack
of nonlinear layers. Section 4.2 of the paper shows it on CIFAR-10 with 6n+2-layer networks; here the
same networks run on Fashion-MNIST and the claim is measured on the training loss, as in Figure 6.

Changed vs the baseline (the plain network of the same depth): the model only -- the shortcut.
"""

from __future__ import annotations

import dataclasses
import statistics
from collections.abc import Mapping
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..algorithms.supervised import SGDConfig, minibatch_sgd
from ..data.images import FashionMNISTConfig, ImageData
from ..spec import Claim, Component, Metric, Milestone, Point, Recipe, Verdict
from . import adam, alexnet

# ------------------------------------------------------------------------------------------------
# Data: Fashion-MNIST without augmentation, so the training loss measures optimisation alone: the
# 2014 Adam milestone's, unchanged.

DATA = adam.DATA


# ------------------------------------------------------------------------------------------------
# Model: the CIFAR networks of section 4.2, 6n+2 layers: a 3x3 conv, then 3 stages of n blocks of two
# 3x3 convs with 16, 32, 64 channels (feature maps 28, 14, 7 here), global average pooling and a
# fully connected layer. Batch normalisation after every conv, before the ReLU.


@dataclass(frozen=True)
class CifarNetConfig:
    """A 6n+2-layer network of the paper's CIFAR family."""

    n: int = 3
    """Blocks per stage; depth = 6n + 2 (n = 1, 3, 5, 9 -> 8, 20, 32, 56 layers)."""
    widths: tuple[int, ...] = (16, 32, 64)
    """Channels of the three stages."""

    def __post_init__(self) -> None:
        if self.n < 1 or len(self.widths) != 3 or min(self.widths) < 1:
            raise ValueError("needs n >= 1 and three positive stage widths")


def conv_bn(c_in: int, c_out: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False), nn.BatchNorm2d(c_out))


class PlainBlock(nn.Module):
    """Two conv-BN layers: y = ReLU(BN(conv(ReLU(BN(conv(x))))))."""

    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.conv1, self.conv2 = conv_bn(c_in, c_out, stride), conv_bn(c_out, c_out)

    def residual(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2(F.relu(self.conv1(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.residual(x))


class ResidualBlock(PlainBlock):
    """The same two layers plus the shortcut: y = ReLU(F(x) + x) (Eq. 1 of the paper).

    Where the block halves the map and doubles the channels, the shortcut subsamples x and pads the
    new channels with zeros (option A of the paper), so it adds no parameters: the residual network
    has exactly the plain network's parameters.
    """

    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__(c_in, c_out, stride)
        self.stride, self.extra_channels = stride, c_out - c_in

    def shortcut(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride > 1:
            x = x[:, :, :: self.stride, :: self.stride]
        if self.extra_channels:
            x = F.pad(x, (0, 0, 0, 0, 0, self.extra_channels))  # zero channels appended
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.residual(x) + self.shortcut(x))


class CifarNet(nn.Module):
    """Stem conv, three stages of ``n`` blocks, global average pooling, classifier."""

    def __init__(self, config: CifarNetConfig, block: type[PlainBlock], in_channels: int, num_classes: int):
        super().__init__()
        w = config.widths
        self.stem = nn.Sequential(conv_bn(in_channels, w[0]), nn.ReLU())
        blocks, c_in = [], w[0]
        for stage, c_out in enumerate(w):
            for i in range(config.n):
                stride = 2 if stage > 0 and i == 0 else 1
                blocks.append(block(c_in, c_out, stride))
                c_in = c_out
        self.stages = nn.Sequential(*blocks)
        self.fc = nn.Linear(c_in, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")  # He et al. 2015

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stages(self.stem(x))  # (B, 64, 7, 7)
        return self.fc(x.mean((2, 3)))  # global average pooling -> (B, classes)


def resnet(config: CifarNetConfig, data: ImageData) -> CifarNet:
    return CifarNet(config, ResidualBlock, data.shape[0], data.num_classes)


def plain(config: CifarNetConfig, data: ImageData) -> CifarNet:
    return CifarNet(config, PlainBlock, data.shape[0], data.num_classes)


MODEL = Component("resnet", resnet, CifarNetConfig())
PLAIN = Component("plain", plain, CifarNetConfig())

# ------------------------------------------------------------------------------------------------
# Loss: softmax cross-entropy, AlexNet's, unchanged.

LOSS = alexnet.LOSS

# ------------------------------------------------------------------------------------------------
# Algorithm: SGD, momentum 0.9, weight decay 1e-4, batch 128, learning rate 0.1 (section 4.2), the same
# budget for every depth. The paper divides the rate by 10 at 32k and 48k of 64k iterations; in a
# short budget a warm-up and cosine decay does the same job.

SGD = SGDConfig(epochs=3, batch_size=128, lr=0.1, momentum=0.9, weight_decay=1e-4, schedule="onecycle")
ALGORITHM = Component("sgd-momentum", minibatch_sgd, SGD)


# ================================================================================================
# The claim: the degradation experiment of Figure 6, on the final training loss.

# The claim reads the shallowest and the deepest; at the cpu preset the 20-layer nets between them
# (a third of the compute) were drawn in the figure only, so they are left to the full preset.
DEPTHS = {"smoke": (1, 2), "cpu": (1, 5), "full": (1, 3, 5, 9)}


def depth_points(milestone: Milestone, preset: str) -> list[Point]:
    """Plain and residual networks at every depth of the preset, with the same budget."""
    return [Point(variant, f"n={n}", (f"model.n={n}",))
            for variant in ("plain", milestone.variant) for n in DEPTHS[preset]]


def degradation(milestone: Milestone, preset: str, results: Mapping[str, list[dict]]) -> Verdict:
    """Deepest plain ends above the shallowest plain; deepest residual at or below the shallowest."""
    shallow, deep = min(DEPTHS[preset]), max(DEPTHS[preset])
    needed = [f"{variant} n={n}" for variant in ("plain", milestone.variant) for n in (shallow, deep)]
    absent = [p for p in needed if not results.get(p)]
    if absent:
        return Verdict("not judged", f"no runs of {', '.join(absent)}")
    bad = [p for p in needed if any("train_loss" not in r for r in results[p])]
    if bad:
        return Verdict.judged(False, f"runs of {', '.join(bad)} diverged or reported no train_loss")

    def loss(variant: str, n: int) -> float:
        return statistics.mean(r["train_loss"] for r in results[f"{variant} n={n}"])

    plain_gap = loss("plain", deep) - loss("plain", shallow)
    residual_gap = loss(milestone.variant, deep) - loss(milestone.variant, shallow)
    holds = plain_gap > 0 and residual_gap <= 0
    layers = f"{6 * deep + 2} vs {6 * shallow + 2} layers"
    return Verdict.judged(holds, f"training loss, {layers}: plain {plain_gap:+.4f} (needs > 0), "
                                 f"residual {residual_gap:+.4f} (needs <= 0)")


# ================================================================================================
# Presets and the milestone.

CPU = Recipe(DATA.with_config(FashionMNISTConfig(augment="none", train_size=20000)), MODEL, LOSS, ALGORITHM)
SMOKE = CPU.swap(
    data=DATA.with_config(
        FashionMNISTConfig(augment="none", train_size=256, val_size=256, test_size=256,
                          train_eval_size=256)),
    algorithm=ALGORITHM.with_config(dataclasses.replace(SGD, epochs=1, batch_size=64)),
)
FULL = CPU.swap(data=DATA, algorithm=ALGORITHM.with_config(dataclasses.replace(SGD, epochs=30)))

MILESTONE = Milestone(
    key="resnet",
    year=2015,
    title="ResNet",
    citation="He, Zhang, Ren & Sun. Deep Residual Learning for Image Recognition. CVPR 2016.",
    url="https://arxiv.org/abs/1512.03385",
    showed="residual connections make much deeper networks trainable: depth helps instead of hurting",
    variant="residual",
    presets={"smoke": SMOKE, "cpu": CPU, "full": FULL},
    baselines={"plain": lambda preset: {"model": PLAIN}},
    changes=("model",),
    claim=Claim(
        statement="the deepest plain net ends with a higher training loss than the shallowest plain net, "
                  "while the deepest residual net ends at or below the shallowest residual one",
        metric="train_loss",
        direction="min",
        paper="CIFAR-10 (Table 6, Fig. 6): plain-56 trains to a higher error than plain-20; "
              "ResNet test error 8.75% (20 layers), 7.51% (32), 6.97% (56), 6.43% (110)",
        report=(Metric("train_loss", "final training loss", 4),
                Metric("test_accuracy", "test accuracy", 2, percent=True),
                Metric("train_seconds", "training seconds", 1),
                Metric("train_flops", "training FLOPs", 2, scientific=True)),
        points=depth_points,
        judge=degradation,
    ),
)
