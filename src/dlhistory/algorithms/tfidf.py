"""TF-IDF features and logistic regression (scikit-learn), C chosen on validation: the classical text
classifier BERT's fine-tuning is measured against.

Word uni- and bigrams weighted by sublinear term frequency times inverse document frequency (Salton &
Buckley 1988), each row L2-normalised, then L2-regularised logistic regression fitted by L-BFGS at each C
of a grid, the best on validation kept (the usual strong baseline of sentence classification, e.g. Wang &
Manning 2012, "Baselines and Bigrams"). Nothing is trained by gradient steps: the whole "algorithm" is
one step that fits the vectorizer and one solver per C on the label budget's sentences.

The data is the MR polarity component (data/polarity.py): ``text`` per split, the ``train`` labels and
``budget(labels)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from ..spec import Context


@dataclass(frozen=True)
class TfidfConfig:
    """Word uni- and bigrams, sublinear term frequency (1 + log tf), L2-normalised rows (Salton & Buckley
    1988; the usual strong text-classification baseline, e.g. Wang & Manning 2012)."""

    max_n: int = 2
    min_df: int = 1


class TfidfLogistic:
    """Fixed TF-IDF features followed by a linear classifier; not an ``nn.Module``."""

    def __init__(self, config: TfidfConfig, data):
        from sklearn.feature_extraction.text import TfidfVectorizer

        self.vectorizer = TfidfVectorizer(ngram_range=(1, config.max_n), min_df=config.min_df,
                                          sublinear_tf=True)
        self.classifier = None
        self.parameter_count = 0


def tfidf(config: TfidfConfig, data) -> TfidfLogistic:
    return TfidfLogistic(config, data)


@dataclass(frozen=True)
class LogisticConfig:
    """The L2-regularised logistic loss: 1/2 ||w||^2 + C * sum log(1 + exp(-y f(x))); C is chosen."""

    Cs: tuple[float, ...] = (0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0)
    """The values of C tried; the one with the best validation accuracy is kept."""


def logistic(config: LogisticConfig) -> LogisticConfig:
    """The solver minimises the logistic objective itself; the component carries the C values."""
    return config


@dataclass(frozen=True)
class FitConfig:
    """One fit per C on the label budget's sentences (L-BFGS), the best on validation kept."""

    labels: int | None = None
    """The label budget, as the fine-tuning's."""


class TfidfFit:
    """The whole baseline's 'training' is fitting the vectorizer and one solver per C: one step."""

    total_steps = 1

    def __init__(self, config: FitConfig, model: TfidfLogistic, loss: LogisticConfig, data,
                 ctx: Context):
        self.config, self.model, self.loss, self.data = config, model, loss, data
        self.index = data.budget(config.labels)
        self.samples_per_step = len(self.index)
        self.modules: dict = {}
        self.C = math.nan

    def update(self, step: int) -> dict[str, float]:
        from sklearn.linear_model import LogisticRegression

        train, labels = self._split("train")
        features = self.model.vectorizer.fit_transform(train)
        val, val_labels = self._split("val")
        val = self.model.vectorizer.transform(val)
        scored = []
        with threadpool_limits(torch.get_num_threads()):  # numpy's BLAS spins on a busy core otherwise
            for C in self.loss.Cs:
                fitted = LogisticRegression(C=C, max_iter=1000).fit(features, labels)
                accuracy = float(np.mean(fitted.predict(val) == val_labels))
                scored.append((accuracy, -C, fitted))  # ties: the smaller C
        accuracy, minus_c, self.model.classifier = max(scored, key=lambda s: s[:2])
        self.model.parameter_count = int(self.model.classifier.coef_.size + 1)
        self.C = -minus_c
        return {"C": self.C, "val_accuracy": accuracy}

    def _split(self, split: str) -> tuple[list[str], np.ndarray]:
        """The sentences and labels of ``split``; for 'train', those of the label budget."""
        sentences, labels = self.data.text[split], self.data.splits[split].labels
        if split == "train":
            sentences, labels = [sentences[i] for i in self.index.tolist()], labels[self.index]
        return sentences, labels.cpu().numpy()

    def evaluate(self, split: str) -> dict[str, float]:
        sentences, labels = self._split(split)
        predicted = self.model.classifier.predict(self.model.vectorizer.transform(sentences))
        return {"accuracy": float(np.mean(predicted == labels))}

    def provenance(self) -> dict[str, float]:
        return {"C": self.C}

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


def fit_logistic(config: FitConfig, model: TfidfLogistic, loss: LogisticConfig, data,
                 ctx: Context) -> TfidfFit:
    return TfidfFit(config, model, loss, data, ctx)
