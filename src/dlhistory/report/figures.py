"""Figures saved as PNG: a run's training curves, and a comparison's figure."""

from __future__ import annotations

import statistics
from collections import defaultdict
from pathlib import Path

import matplotlib

from ..records import read_jsonl

matplotlib.use("Agg")  # files only, never a window
import matplotlib.pyplot as plt


def read_metrics(path: Path) -> list[dict]:
    """A run's metrics.jsonl records."""
    return read_jsonl(path)


def training_curves(metrics_path: Path, out: Path) -> None:
    """Training loss and validation metrics against the step, for one run."""
    records = read_metrics(metrics_path)
    train = [r for r in records if r["split"] == "train" and "loss" in r]
    val = [r for r in records if r["split"] == "val"]
    if not train:
        return  # a one-step procedure (the SVM) has no curve to draw
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.8))
    left.plot([r["step"] for r in train], [r["loss"] for r in train], label="train (running mean)")
    if val and "loss" in val[0]:
        left.plot([r["step"] for r in val], [r["loss"] for r in val], "o-", label="validation")
    left.set(xlabel="step", ylabel="loss", title="loss")
    left.legend()
    if val and "accuracy" in val[0]:
        right.plot([r["step"] for r in val], [100 * r["accuracy"] for r in val], "o-", color="C1")
        right.set(xlabel="step", ylabel="validation accuracy (%)", title="validation accuracy")
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)


def comparison_figure(comparison, out: Path) -> None:
    """Curves per variant when the points vary a setting (ResNet's depths, like the paper's Figure 6),
    else a bar chart of the claim's metric with seed error bars."""
    if any(" " in p for p in comparison.results):
        _curves_by_variant(comparison, out)
    else:
        _bars(comparison, out)


def _bars(comparison, out: Path) -> None:
    metric = comparison.milestone.claim.metric
    points = list(comparison.results)
    stats = [comparison.summary(metric, p) for p in points]
    scale = 100 if metric.endswith("accuracy") else 1
    fig, ax = plt.subplots(figsize=(1.6 * len(points) + 2, 3.8))
    ax.bar(points, [scale * m for m, _ in stats], yerr=[scale * s for _, s in stats], capsize=4,
           color=["C0" if p == comparison.milestone.variant else "C7" for p in points])
    for i, (m, _) in enumerate(stats):
        ax.annotate(f"{scale * m:.2f}", (i, scale * m), ha="center", va="bottom", fontsize=9)
    low = min(scale * m for m, _ in stats)
    ax.set_ylim(bottom=max(0, low - 0.1 * abs(low) - 1))
    m = comparison.milestone
    ax.set(ylabel=metric + (" (%)" if scale == 100 else ""),
           title=f"{m.year} {m.title} ({comparison.preset}, {len(comparison.seeds)} seeds)")
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)


def _curves_by_variant(comparison, out: Path) -> None:
    """One panel per variant, one line per setting: training loss (mean over seeds) against step."""
    panels: dict[str, list[str]] = defaultdict(list)
    for point in comparison.results:
        panels[point.split(" ", 1)[0]].append(point)
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 4), sharey=True, squeeze=False)
    for ax, (variant, points) in zip(axes[0], panels.items(), strict=True):
        for point in points:
            curves = [[(r["step"], r["loss"]) for r in read_metrics(Path(res["run_dir"]) / "metrics.jsonl")
                       if r["split"] == "train"] for res in comparison.results[point] if "run_dir" in res]
            curves = [c for c in curves if c]
            if not curves:
                continue
            length = min(len(c) for c in curves)
            steps = [s for s, _ in curves[0][:length]]
            mean = [statistics.mean(c[i][1] for c in curves) for i in range(length)]
            ax.plot(steps, mean, label=point.split(" ", 1)[1])
        ax.set(title=variant, xlabel="step", ylabel="training loss (running mean)", yscale="log")
        ax.legend()
    m = comparison.milestone
    fig.suptitle(f"{m.year} {m.title}: training loss by depth ({comparison.preset}, "
                 f"{len(comparison.seeds)} seeds)")
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)


def sweep_figure(axes, rows: list[dict], metric: str, title: str, out: Path) -> None:
    """``metric`` against the first swept key, one line (with a +-std band) per variant and other keys."""
    x_axis, others = axes[0], axes[1:]
    lines: dict[str, list[dict]] = defaultdict(list)
    for row in rows:
        label = " ".join([row["variant"], *(f"{a.key}={row[a.key]}" for a in others)])
        lines[label].append(row)
    scale = 100 if metric.endswith("accuracy") else 1
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for label, points in lines.items():
        points.sort(key=lambda r: float(r[x_axis.key]))
        x = [float(r[x_axis.key]) for r in points]
        mean = [scale * r[f"{metric}_mean"] for r in points]
        std = [scale * r[f"{metric}_std"] for r in points]
        ax.plot(x, mean, "o-", label=label)
        ax.fill_between(x, [m - s for m, s in zip(mean, std, strict=True)],
                        [m + s for m, s in zip(mean, std, strict=True)], alpha=0.2)
    if x_axis.log:
        ax.set_xscale("log")
    ax.set(xlabel=x_axis.key, ylabel=metric + (" (%)" if scale == 100 else ""), title=title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=120)
    plt.close(fig)
