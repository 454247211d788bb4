"""How a generator's samples are measured during a run: in the project's classifier's features at every
evaluation (cheap), in Inception-v3's at the end (the FID the papers report), with precision, recall
and class coverage; against the real images of a split, whose features are computed once."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..data.images import ImageData
from . import generative
from .classifier import load_classifier, to_unit_range
from .inception import cached_inception_features, inception_features


@dataclass(frozen=True)
class SampleQualityConfig:
    """How the samples are measured: in the classifier's features at every evaluation (cheap), in
    Inception-v3's at the end (the FID the papers report)."""

    samples: int = 2000
    """n generated samples of the final measurement (FID's value depends on n)."""
    eval_samples: int = 1000
    """n of the evaluations during training (the classifier's features only)."""
    inception: bool = True
    """Measure FID, precision and recall in Inception-v3 features at the end (False: the classifier's)."""

    def __post_init__(self) -> None:
        if min(self.samples, self.eval_samples) < 8:
            raise ValueError("needs samples and eval_samples >= 8 (a covariance and 3 neighbours)")


class SampleQuality:
    """Measures a generator's samples against the real images of a split."""

    def __init__(self, config: SampleQualityConfig, data: ImageData):
        self.config, self.data = config, data
        self.classifier = load_classifier()
        self._real: dict[tuple[str, str], torch.Tensor] = {}

    def real(self, split: str, space: str) -> torch.Tensor:
        """Features of the split's images in ``space`` ('classifier' or 'inception'); Inception's of a
        whole split are computed once per machine and cached (10,000 test images take minutes)."""
        key = (split, space)
        if key not in self._real:
            images = to_unit_range(self.data.eval_split(split)[0].cpu())
            if space == "inception":
                self._real[key] = cached_inception_features(images, f"fashion-mnist-{split}")
            else:
                self._real[key] = self.features(images, space)
        return self._real[key]

    @torch.no_grad()
    def features(self, images: torch.Tensor, space: str) -> torch.Tensor:
        if space == "inception":
            return inception_features(images)
        return torch.cat([self.classifier.features(b) for b in images.split(500)]).double()

    @torch.no_grad()
    def measure(self, samples: torch.Tensor, split: str, final: bool) -> dict[str, float]:
        """Fréchet distance (with its n), precision, recall and class coverage of ``samples`` (N, 1, 28, 28)
        in [-1, 1] against the split's real images."""
        n = len(samples)
        labels = torch.cat([self.classifier(b).argmax(1) for b in samples.split(500)])
        out = {"n": float(n), "class_coverage": generative.class_coverage(labels, self.data.num_classes)}
        spaces = ["classifier"] + (["inception"] if final and self.config.inception else [])
        for space in spaces:
            real, fake = self.real(split, space), self.features(samples, space)
            prefix = "fid" if space == "inception" else "fd_classifier"
            out[prefix] = generative.feature_distance(real, fake)  # against every real image of the split
            if space == spaces[-1]:  # against as many real images as samples (Kynkäänniemi et al.)
                out["precision"], out["recall"] = generative.precision_recall(real[:n], fake)
        return out
