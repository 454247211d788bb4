"""2014 Adam: an optimizer that works well with little tuning.

Kingma & Ba, "Adam: A Method for Stochastic Optimization", ICLR 2015 (arXiv 2014).
https://arxiv.org/abs/1412.6980

Adam keeps two running averages per parameter: of the gradient (m, momentum) and of its square
(v, RMSProp's scale), corrects both for their zero initialisation, and steps by
alpha * m_hat / (sqrt(v_hat) + eps). Dividing by sqrt(v_hat) makes the step roughly alpha in every
coordinate whatever the gradient's scale, which is why one default, alpha = 1e-3, works across models:
people "just use Adam" instead of paying for a learning-rate search. Adam's update rule is written out
below (:class:`Adam`); the rules it was compared with (SGD, Nesterov momentum, AdaGrad, RMSProp) are in
``dlhistory.algorithms.optimizers``; all are tested against ``torch.optim``.

The experiment changes only the **algorithm**: the same data (all 55k Fashion-MNIST training
images), the same model (the paper's multilayer network of section 6.2: two hidden layers of 1000 ReLU
units) and the same loss, trained for a fixed number of epochs at a constant learning rate by plain SGD
or by Adam, over a log-spaced learning-rate grid per optimizer. Selection uses the validation split.
For each optimizer it reports the result at its default rate, its tuned best, and the width, in
decades, of its *good band*: the learning rates whose validation accuracy is within 1 point of its
best. The band only means something once the best run is close to converged: in a budget far too short
every rate is "too small", and the band measures the budget, not the optimizer. (The 2012 CNN, without
batch normalisation, is ``model.architecture=cnn``; it needs far more than the cpu budget.)

The paper's Figure 1 analogue trains multinomial logistic regression with SGD + Nesterov momentum,
AdaGrad, RMSProp and Adam, each at the best rate of a small grid, and plots the training loss.
What this does not claim: that Adam generalizes better than well-tuned SGD (often it does not;
Wilson et al. 2017).
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import statistics
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from ..algorithms import optimizers
from ..algorithms.supervised import MinibatchTraining, SGDConfig, TrainingConfig, parameter_groups
from ..data.images import FashionMNISTConfig, ImageData, fashion_mnist_data
from ..report.sensitivity import SENSITIVITY_HEADERS, TOLERANCE, Sensitivity, good_band
from ..spec import Claim, Component, Context, Metric, Milestone, Point, Recipe, Verdict
from . import alexnet
from .alexnet import AlexNet, AlexNetConfig

# ------------------------------------------------------------------------------------------------
# Data: Fashion-MNIST, no augmentation (the optimizers are compared on the optimisation problem).

DATA = Component("fashion-mnist", fashion_mnist_data, FashionMNISTConfig(augment="none"))


# ------------------------------------------------------------------------------------------------
# Model: the paper's test problems (section 6): logistic regression, a multilayer network, a CNN.


@dataclass(frozen=True)
class PaperModelConfig:
    """Which of the paper's three kinds of test model, and its size."""

    architecture: Literal["mlp", "logistic", "cnn"] = "mlp"
    """'logistic': multinomial logistic regression (section 6.1, Figure 1); 'mlp': fully connected
    ReLU layers (6.2, Figure 2); 'cnn': the 2012 AlexNet-style CNN (6.3 used a similar small CNN)."""
    cnn: AlexNetConfig = dataclasses.field(
        default_factory=lambda: AlexNetConfig(width=16, hidden=256, norm="none"))
    """The CNN, without normalisation layers as in 2014."""
    mlp: tuple[int, ...] = (1000, 1000)
    """Hidden units of the MLP (the paper: two layers of 1000)."""


def paper_model(config: PaperModelConfig, data: ImageData) -> nn.Module:
    channels, size, _ = data.shape
    if config.architecture == "cnn":
        return AlexNet(config.cnn, channels, data.num_classes, size)
    widths = [channels * size * size, *(config.mlp if config.architecture == "mlp" else ())]
    layers: list[nn.Module] = [nn.Flatten()]
    for n_in, n_out in itertools.pairwise(widths):
        layers += [nn.Linear(n_in, n_out), nn.ReLU()]
    return nn.Sequential(*layers, nn.Linear(widths[-1], data.num_classes))  # (B, C, H, W) -> (B, classes)


MODEL = Component("paper-test-model", paper_model, PaperModelConfig())

# ------------------------------------------------------------------------------------------------
# Loss: AlexNet's softmax cross-entropy (the negative log-likelihood of the paper's figures).

LOSS = alexnet.LOSS

# ------------------------------------------------------------------------------------------------
# Algorithm: the same mini-batch procedure, a different update rule. First the rule itself.


class Adam(optimizers.UpdateRule):
    """Kingma & Ba (2015), Algorithm 1: momentum (m) and RMSProp scaling (v), both bias-corrected.

    ``weight_decay`` is the L2 penalty added to the gradient (as ``torch.optim.Adam`` does).
    """

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay))

    def update(self, theta: torch.Tensor, g: torch.Tensor, state: dict, group: dict) -> None:
        if group["weight_decay"]:
            g = g + group["weight_decay"] * theta
        beta1, beta2 = group["betas"]
        if "m" not in state:
            state["t"], state["m"], state["v"] = 0, torch.zeros_like(theta), torch.zeros_like(theta)
        state["t"] += 1
        t, m, v = state["t"], state["m"], state["v"]
        m.mul_(beta1).add_(g, alpha=1 - beta1)  # biased first moment estimate
        v.mul_(beta2).addcmul_(g, g, value=1 - beta2)  # biased second raw moment estimate
        # m_hat = m / (1 - beta1^t) and v_hat = v / (1 - beta2^t) undo the bias towards the zero init;
        # theta <- theta - alpha * m_hat / (sqrt(v_hat) + eps), with the corrections folded into scalars.
        step_size = group["lr"] / (1 - beta1 ** t)
        denominator = (v.sqrt() / math.sqrt(1 - beta2 ** t)).add_(group["eps"])
        theta.addcdiv_(m, denominator, value=-step_size)


# The configs: each lr default is the rate its authors (or, for SGD, the common libraries) suggest;
# every run uses a constant rate, so the grid measures the optimizer, not a schedule. Each extends the
# mini-batch TrainingConfig (budget, batch, schedule), every field of which the procedure reads.


@dataclass(frozen=True)
class AdamConfig(TrainingConfig):
    """Kingma & Ba, Algorithm 1, with the paper's defaults."""

    lr: float = 1e-3
    """alpha, the step size: 'good default settings for the tested machine learning problems'."""
    beta1: float = 0.9
    """Decay of the first-moment (momentum) average."""
    beta2: float = 0.999
    """Decay of the second-moment (squared gradient) average."""
    eps: float = 1e-8
    weight_decay: float = 0.0
    """L2 penalty added to the gradient."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if not (0 <= self.beta1 < 1 and 0 <= self.beta2 < 1 and self.eps > 0):
            raise ValueError("needs 0 <= beta1, beta2 < 1 and eps > 0")


@dataclass(frozen=True)
class AdaGradConfig(TrainingConfig):
    """Duchi, Hazan & Singer (2011)."""

    lr: float = 0.01
    eps: float = 1e-10
    weight_decay: float = 0.0


@dataclass(frozen=True)
class RMSPropConfig(TrainingConfig):
    """Tieleman & Hinton (2012): a running average of squared gradients with decay rho = 0.9."""

    lr: float = 1e-3
    rho: float = 0.9
    eps: float = 1e-8
    weight_decay: float = 0.0


def sgd(config: SGDConfig, model, loss, data, ctx: Context) -> MinibatchTraining:
    rule = optimizers.SGD(parameter_groups(model, config.weight_decay), lr=config.lr,
                          momentum=config.momentum, nesterov=config.nesterov)
    return MinibatchTraining(config, model, loss, data, rule)


def adagrad(config: AdaGradConfig, model, loss, data, ctx: Context) -> MinibatchTraining:
    rule = optimizers.AdaGrad(parameter_groups(model, config.weight_decay), lr=config.lr, eps=config.eps)
    return MinibatchTraining(config, model, loss, data, rule)


def rmsprop(config: RMSPropConfig, model, loss, data, ctx: Context) -> MinibatchTraining:
    rule = optimizers.RMSProp(parameter_groups(model, config.weight_decay), lr=config.lr, rho=config.rho,
                              eps=config.eps)
    return MinibatchTraining(config, model, loss, data, rule)


def adam(config: AdamConfig, model, loss, data, ctx: Context) -> MinibatchTraining:
    rule = Adam(parameter_groups(model, config.weight_decay), lr=config.lr,
                betas=(config.beta1, config.beta2), eps=config.eps)
    return MinibatchTraining(config, model, loss, data, rule)


# Batch 128 as in the paper and a constant rate; the budget in epochs is set per preset below.
BUDGET = dict(batch_size=128, schedule="constant")
ALGORITHM = Component("adam", adam, AdamConfig(**BUDGET))
# Plain SGD has no paper default; 0.01 is the libraries' (Keras, Lasagne).
PLAIN_SGD = Component("sgd", sgd, SGDConfig(lr=0.01, momentum=0.0, weight_decay=0.0, **BUDGET))
# The others of the paper's Figure 1, at their authors' suggested rates.
NESTEROV = Component("sgd-nesterov", sgd, SGDConfig(lr=0.01, momentum=0.9, nesterov=True, weight_decay=0.0,
                                                     **BUDGET))
ADAGRAD = Component("adagrad", adagrad, AdaGradConfig(**BUDGET))
RMSPROP = Component("rmsprop", rmsprop, RMSPropConfig(**BUDGET))


# ================================================================================================
# The experiment: a learning-rate grid per optimizer, selection on the validation split.
# The good band and its table live in report/sensitivity.py; here are the grids and the judge.

# Half-decade grids of 7 points (quarter decades at full): Adam's centred on its default 1e-3, SGD's on
# 0.1, the rate SGD users start from, with its library default 0.01 inside. Bands are measured inside.
LR_GRIDS: Mapping[str, Mapping[str, tuple[float, ...]]] = {
    "smoke": {"sgd": (1e-2, 1e-1, 1.0), "adam": (1e-4, 1e-3, 1e-2)},
    "cpu": {"sgd": tuple(10 ** (e / 2) for e in range(-5, 2)),  # 10^-2.5 .. 10^0.5
            "adam": tuple(10 ** (e / 2) for e in range(-9, -2))},  # 10^-4.5 .. 10^-1.5
    "full": {"sgd": tuple(10 ** (e / 4) for e in range(-12, 3)),  # 15 points, quarter decades
             "adam": tuple(10 ** (e / 4) for e in range(-20, -5))},
}
# Figure 1: logistic regression, alpha / sqrt(t) as in the paper, a small common grid.
FIGURE1_OPTIMIZERS = ("sgd-nesterov", "adagrad", "rmsprop", "adam")
FIGURE1_GRIDS = {"smoke": (1e-2, 1e-1), "cpu": (1e-3, 1e-2, 1e-1, 1.0), "full": (1e-3, 1e-2, 1e-1, 1.0, 10.0)}
FIGURE1_EPOCHS = {"smoke": 1, "cpu": 5, "full": 45}


def lr_label(lr: float) -> str:
    return f"lr={lr:.3g}"


def experiment(milestone: Milestone, preset: str) -> list[Point]:
    """The learning-rate grids of SGD and Adam, then Figure 1's logistic-regression runs."""
    points = [Point(variant, lr_label(lr), (f"algorithm.lr={lr:.6g}",))
              for variant, grid in LR_GRIDS[preset].items() for lr in grid]
    points += [Point(variant, f"logistic {lr_label(lr)}",
                     ("model.architecture=logistic", f"algorithm.lr={lr:.6g}", "algorithm.schedule=rsqrt",
                      f"algorithm.epochs={FIGURE1_EPOCHS[preset]}"))
               for variant in FIGURE1_OPTIMIZERS for lr in FIGURE1_GRIDS[preset]]
    return points


def lr_curve(results: Mapping[str, list[dict]], variant: str, grid: tuple[float, ...],
             metric: str = "val_accuracy") -> list[float]:
    """Mean ``metric`` over seeds at each rate; NaN where any seed diverged (that rate is not 'good')."""
    means = []
    for lr in grid:
        values = [r.get(metric, math.nan) for r in results[f"{variant} {lr_label(lr)}"]]
        means.append(math.nan if not values or any(map(math.isnan, values)) else statistics.mean(values))
    return means


def default_lr(milestone: Milestone, variant: str) -> float:
    """The rate the optimizer's config suggests (Adam's alpha = 1e-3), the same at every preset."""
    return milestone.recipe("smoke", variant).algorithm.config.lr


def sensitivities(milestone: Milestone, preset: str,
                  results: Mapping[str, list[dict]]) -> dict[str, Sensitivity]:
    out = {}
    for variant, grid in LR_GRIDS[preset].items():
        val = lr_curve(results, variant, grid)
        out[variant] = Sensitivity(variant, grid, val, lr_curve(results, variant, grid, "test_accuracy"),
                                   default_lr(milestone, variant), good_band(list(grid), val))
    return out


def sensitivity(milestone: Milestone, preset: str, results: Mapping[str, list[dict]]) -> Verdict:
    """Adam at alpha = 1e-3 is within 1 point of its tuned best; its good band spans >= 1 decade and is
    wider than plain SGD's. Both optimizers' best rates must lie inside their grids.

    Each check gives SGD the benefit of the doubt: Adam's band counts as measured (where it stops at
    a diverged rate, a lower bound), SGD's as wide as it could be (up to its diverged neighbours).
    A diverged run (no metrics) counts as a bad rate; an optimizer whose every rate diverged fails.
    """
    grid_points = [f"{v} {lr_label(lr)}" for v, grid in LR_GRIDS[preset].items() for lr in grid]
    absent = [name for name in grid_points if not results.get(name)]
    if absent:
        return Verdict("not judged", f"no runs of {', '.join(absent)} to judge the claim with")
    lost = [v for v, grid in LR_GRIDS[preset].items() if all(map(math.isnan, lr_curve(results, v, grid)))]
    if lost:
        return Verdict.judged(False, f"every learning rate of {' and '.join(lost)} diverged or reported no "
                                     "val_accuracy")
    curves = sensitivities(milestone, preset, results)
    adam_, sgd_ = curves["adam"].band, curves["sgd"].band
    gap = adam_.best - curves["adam"].at(curves["adam"].default_lr)  # NaN (a failed check) if it diverged
    at_default = "Adam at 1e-3 diverged" if math.isnan(gap) else \
        f"Adam at 1e-3 is {100 * gap:.2f} points below its best"
    checks = [
        (gap <= TOLERANCE, f"{at_default} (needs <= 1.00)"),
        (adam_.decades >= 1.0, f"Adam's good band spans {adam_.decades:.2f} decades (needs >= 1)"),
        (adam_.decades > sgd_.decades_at_most,
         f"SGD's spans {sgd_.decades:.2f}, at most {sgd_.decades_at_most:.2f} (needs less than Adam's)"),
        *((c.band.best_lr not in (c.grid[0], c.grid[-1]),
           f"{c.variant}'s best rate {c.band.best_lr:.3g} is inside its grid") for c in curves.values()),
    ]
    table = (SENSITIVITY_HEADERS, tuple(c.row() for c in curves.values()))
    reason = "; ".join(f"{text} {'yes' if ok else 'NO'}" for ok, text in checks)
    return Verdict.judged(all(ok for ok, _ in checks), reason, table=table)


def _mean(runs: list[dict], metric: str) -> float:
    values = [r[metric] for r in runs if metric in r]
    return statistics.mean(values) if values else math.nan


def figure1_choice(results: Mapping[str, list[dict]], preset: str) -> dict[str, str]:
    """Figure 1: each optimizer's point with the lowest mean final training loss."""
    choice = {}
    for variant in FIGURE1_OPTIMIZERS:
        names = [f"{variant} logistic {lr_label(lr)}" for lr in FIGURE1_GRIDS[preset]]
        losses = {n: _mean(results.get(n, []), "train_loss") for n in names}
        finite = {n: v for n, v in losses.items() if not math.isnan(v)}
        if finite:
            choice[variant] = min(finite, key=finite.get)
    return choice


def _model_name(results: Mapping[str, list[dict]]) -> str:
    """The swept model as the runs recorded it (a comparison may override the preset's)."""
    configs = [r["components"]["model"]["config"] for runs in results.values() for r in runs
               if "components" in r]
    config = next((c for c in configs if c["architecture"] != "logistic"), None)
    if config is None:
        return "the model"
    return {"mlp": f"MLP {'-'.join(map(str, config['mlp']))}"}.get(config["architecture"],
                                                                  config["architecture"].upper())


def figures(comparison, out_dir) -> list:
    """The learning-rate sensitivity figure and the Figure 1 analogue."""
    from ..report.figures import learning_rate_figure, loss_curves_figure

    preset, results = comparison.preset, comparison.results
    m = comparison.milestone
    seeds = len(comparison.seeds)
    curves = {v: [(lr, [r.get("val_accuracy", math.nan) for r in results.get(f"{v} {lr_label(lr)}", [])])
                  for lr in grid] for v, grid in LR_GRIDS[preset].items()}
    sensitivity_png = out_dir / f"{m.key}.png"
    title = f"{m.year} {m.title}: {_model_name(results)} on Fashion-MNIST, {preset}, {seeds} seeds"
    learning_rate_figure(curves, {v: default_lr(m, v) for v in curves}, TOLERANCE, title, sensitivity_png)
    chosen = figure1_choice(results, preset)
    figure1_png = out_dir / f"{m.key}-figure1.png"
    loss_curves_figure({f"{v} ({name.rsplit(' ', 1)[1]})": results[name] for v, name in chosen.items()},
                       f"Figure 1 analogue: logistic regression on Fashion-MNIST ({preset}, {seeds} seeds)",
                       figure1_png)
    return [sensitivity_png, figure1_png]


# ================================================================================================
# Presets and the milestone.

EPOCHS = {"smoke": 1, "cpu": 5, "full": 50}


def with_epochs(component: Component, preset: str) -> Component:
    return component.with_config(dataclasses.replace(component.config, epochs=EPOCHS[preset]))


CPU = Recipe(DATA, MODEL, LOSS, with_epochs(ALGORITHM, "cpu"))
SMOKE = CPU.swap(
    data=DATA.with_config(FashionMNISTConfig(train_size=512, val_size=500, test_size=500,
                                             train_eval_size=500)),
    model=MODEL.with_config(PaperModelConfig(mlp=(32,), cnn=AlexNetConfig(width=4, hidden=16, norm="none"))),
    algorithm=with_epochs(ALGORITHM, "smoke"),
)
FULL = CPU.swap(algorithm=with_epochs(ALGORITHM, "full"))


def baseline(component: Component):
    """Swap only the algorithm, keeping this preset's budget."""
    return lambda preset: {"algorithm": with_epochs(component, preset)}


MILESTONE = Milestone(
    key="adam",
    year=2014,
    title="Adam",
    citation="Kingma & Ba. Adam: A Method for Stochastic Optimization. ICLR 2015.",
    url="https://arxiv.org/abs/1412.6980",
    showed="an optimizer that works well with little tuning",
    variant="adam",
    presets={"smoke": SMOKE, "cpu": CPU, "full": FULL},
    baselines={"sgd": baseline(PLAIN_SGD), "sgd-nesterov": baseline(NESTEROV),
               "adagrad": baseline(ADAGRAD), "rmsprop": baseline(RMSPROP)},
    changes=("algorithm",),
    claim=Claim(
        statement="Adam at its default alpha = 1e-3 is within 1 point of its tuned best validation "
                  "accuracy, and its good band (within 1 point of its best) spans at least a decade of "
                  "learning rates and is wider than plain SGD's",
        metric="val_accuracy",
        direction="max",
        # Per grid point: selection is on validation; test is reported; Figure 1 compares training loss.
        report=(Metric("val_accuracy", "val accuracy", 2, percent=True),
                Metric("test_accuracy", "test accuracy", 2, percent=True),
                Metric("train_loss", "training loss", 4), Metric("train_seconds", "training seconds", 1)),
        paper="Kingma & Ba: 'good default settings for the tested machine learning problems are "
              "alpha = 0.001, beta1 = 0.9, beta2 = 0.999'; Figures 1-3 (MNIST, IMDB, CIFAR-10)",
        points=experiment,
        judge=sensitivity,
        figures=figures,
        parallel=True,
    ),
)
