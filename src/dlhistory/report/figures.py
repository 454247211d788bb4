"""Figures saved as PNG: a run's training curves, and a comparison's figure."""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import matplotlib

from ..records import atomic_write, read_jsonl
from ..spec import Panel

matplotlib.use("Agg")  # files only, never a window
import matplotlib.pyplot as plt


def save(fig, out: Path) -> None:
    """Lay the figure out and write it as a PNG, atomically (a reader never sees half an image)."""
    fig.tight_layout()
    try:
        atomic_write(out, lambda tmp: fig.savefig(tmp, format="png", dpi=120))
    finally:
        plt.close(fig)


def training_curves(metrics_path: Path, panels: Sequence[Panel], out: Path) -> None:
    """One run's curves: the loss (training running mean and validation) against the step, then one
    panel per :class:`~dlhistory.spec.Panel` its procedure declares."""
    records = read_jsonl(metrics_path)
    train = [r for r in records if r["split"] == "train" and "loss" in r]
    if not train:
        return  # a one-step procedure (the SVM) has no curve to draw
    fig, axes = plt.subplots(1, 1 + len(panels), figsize=(5 * (1 + len(panels)), 3.8), squeeze=False)
    loss_axis = axes[0][0]
    loss_axis.plot([r["step"] for r in train], [r["loss"] for r in train], label="train (running mean)")
    val = [r for r in records if r["split"] == "val" and "loss" in r]
    if val:
        loss_axis.plot([r["step"] for r in val], [r["loss"] for r in val], "o-", label="validation")
    loss_axis.set(xlabel="step", ylabel="loss", title="loss")
    loss_axis.legend()
    for ax, panel in zip(axes[0][1:], panels, strict=True):
        scale = 100 if panel.percent else 1
        for split in panel.splits:
            points = [r for r in records if r["split"] == split and panel.key in r and panel.x in r]
            ax.plot([r[panel.x] for r in points], [scale * r[panel.key] for r in points],
                    "o-" if split == "val" else "-", ms=3, label=_SPLIT_NAMES.get(split, split))
        label = (panel.label or panel.key) + (" (%)" if panel.percent else "")
        ax.set(xlabel=panel.x.replace("_", " "), ylabel=label, title=panel.label or panel.key)
        ax.legend()
    save(fig, out)


_SPLIT_NAMES = {"train": "training (running mean)", "val": "validation"}


def comparison_figure(comparison, out: Path) -> None:
    """Curves per variant when the points vary a setting (ResNet's depths, like the paper's Figure 6),
    else a bar chart of the claim's metric with seed error bars."""
    if any(" " in p for p in comparison.results):
        _curves_by_variant(comparison, out)
    else:
        bar_chart(comparison, out)


def bar_chart(comparison, out: Path) -> None:
    """The claim's metric per point (mean over seeds, std error bars), the milestone's own in colour."""
    claim = comparison.milestone.claim
    column = next(m for m in claim.columns if m.key == claim.metric)
    metric = column.key
    points = list(comparison.results)
    stats = [comparison.summary(metric, p)[:2] for p in points]
    scale = 100 if column.percent else 1
    fig, ax = plt.subplots(figsize=(1.6 * len(points) + 2, 3.8))
    ax.bar(points, [scale * m for m, _ in stats], yerr=[scale * s for _, s in stats], capsize=4,
           color=["C0" if p == comparison.milestone.variant else "C7" for p in points])
    for i, (m, _) in enumerate(stats):
        if not math.isnan(m):
            ax.annotate(column.value(m).rstrip("%"), (i, scale * m), ha="center", va="bottom", fontsize=9)
    low = min((scale * m for m, _ in stats if not math.isnan(m)), default=0.0)
    ax.set_ylim(bottom=max(0, low - 0.1 * abs(low) - 1))
    m = comparison.milestone
    ax.set(ylabel=column.header + (" (%)" if scale == 100 else ""),
           title=f"{m.year} {m.title} ({comparison.preset}, {len(comparison.seeds)} seeds)")
    save(fig, out)


def logged_curves(results: list[dict], split: str, key: str,
                  x: str = "step") -> tuple[list[float], list[list[float]]]:
    """``key`` as logged on ``split`` by each run (seed) that has a metrics file, against the logged
    ``x``, cut to the shortest run: (x of each record, per record the values of every run). Empty when
    no run logged any."""
    curves = [[(r[x], r[key]) for r in read_jsonl(Path(res["run_dir"]) / "metrics.jsonl")
               if r["split"] == split and key in r and x in r] for res in results if res.get("run_dir")]
    curves = [c for c in curves if c]
    if not curves:
        return [], []
    length = min(len(c) for c in curves)
    return [s for s, _ in curves[0][:length]], [[c[j][1] for c in curves] for j in range(length)]


def _curves_by_variant(comparison, out: Path) -> None:
    """One panel per variant, one line per setting: training loss (mean over seeds) against step."""
    panels: dict[str, list[str]] = defaultdict(list)
    for point in comparison.results:
        panels[point.split(" ", 1)[0]].append(point)
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 4), sharey=True, squeeze=False)
    for ax, (variant, points) in zip(axes[0], panels.items(), strict=True):
        for point in points:
            steps, per_step = logged_curves(comparison.results[point], "train", "loss")
            if steps:
                ax.plot(steps, [statistics.mean(v) for v in per_step], label=point.split(" ", 1)[1])
        ax.set(title=variant, xlabel="step", ylabel="training loss (running mean)", yscale="log")
        ax.legend()
    m = comparison.milestone
    fig.suptitle(f"{m.year} {m.title}: training loss by depth ({comparison.preset}, "
                 f"{len(comparison.seeds)} seeds)")
    save(fig, out)


def sweep_figure(axes, rows: list[dict], metric: str, title: str, out: Path) -> None:
    """``metric`` against the first numeric key with several values, one line (with a +-std band) per
    variant and combination of the other varied keys; keys held at one value only go in no label."""
    varied = [a for a in axes if len(a.values) > 1] or list(axes[:1])
    x_axis = next((a for a in varied if all(_is_number(v) for v in a.values)), varied[0])
    others = [a for a in varied if a is not x_axis]
    lines: dict[str, list[dict]] = defaultdict(list)
    for row in rows:
        label = " ".join([row["variant"], *(f"{a.key}={row[a.key]}" for a in others)])
        lines[label].append(row)
    scale = 100 if metric.endswith("accuracy") else 1
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for label, points in lines.items():
        numeric = all(_is_number(r[x_axis.key]) for r in points)
        if numeric:
            points.sort(key=lambda r: float(r[x_axis.key]))
        x = [float(r[x_axis.key]) if numeric else r[x_axis.key] for r in points]
        mean = [scale * r[f"{metric}_mean"] for r in points]
        std = [scale * r[f"{metric}_std"] for r in points]
        ax.plot(x, mean, "o-", label=label)
        ax.fill_between(x, [m - s for m, s in zip(mean, std, strict=True)],
                        [m + s for m, s in zip(mean, std, strict=True)], alpha=0.2)
    if x_axis.log:
        ax.set_xscale("log")
    ax.set(xlabel=x_axis.key, ylabel=metric + (" (%)" if scale == 100 else ""), title=title)
    ax.legend(fontsize=8)
    save(fig, out)


def learning_rate_figure(curves: dict[str, list[tuple[float, list[float]]]], defaults: dict[str, float],
                         tolerance: float, title: str, out: Path) -> None:
    """Validation accuracy against the learning rate: per optimizer the mean over seeds with a band from
    the lowest to the highest seed, its default rate dotted, the floor of its good band (``tolerance``
    below its best) dashed, and diverged rates as crosses on the axis."""
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    lowest, top = 100.0, 0.0
    for i, (label, points) in enumerate(curves.items()):
        color = f"C{i}"
        finite = [(lr, [100 * v for v in vs]) for lr, vs in points if vs and not any(map(math.isnan, vs))]
        diverged = [lr for lr, vs in points if not vs or any(map(math.isnan, vs))]
        if finite:
            x = [lr for lr, _ in finite]
            mean = [statistics.mean(vs) for _, vs in finite]
            ax.plot(x, mean, "o-", color=color, label=label)
            ax.fill_between(x, [min(vs) for _, vs in finite], [max(vs) for _, vs in finite], color=color,
                            alpha=0.2)
            best = max(mean)
            ax.axhline(best - 100 * tolerance, color=color, lw=0.8, ls="--", alpha=0.6)
            lowest, top = min(lowest, *(min(vs) for _, vs in finite)), max(top, best)
        ax.axvline(defaults[label], color=color, lw=1, ls=":", alpha=0.8)
        if diverged:
            ax.plot(diverged, [0] * len(diverged), "x", color=color, ms=8, clip_on=False,
                    transform=ax.get_xaxis_transform(), label=f"{label}: diverged")
    ax.set_xscale("log")
    # The question is what lies near the top: rates more than 12 points below the best run off the axis.
    bottom = max(0.0, lowest - 1, top - 12)
    ax.set_ylim(bottom=bottom)
    ax.set(xlabel="learning rate (constant)", ylabel="validation accuracy (%)", title=title)
    note = "dotted: default rate; dashed: best - 1 point; band: min-max over seeds"
    if lowest < bottom:
        note += f"; points below {bottom:.0f}% are off the axis"
    ax.text(0.01, 0.01, note, transform=ax.transAxes, fontsize=7, color="0.3")
    ax.legend(fontsize=8)
    save(fig, out)


def loss_curves_figure(runs: dict[str, list[dict]], title: str, out: Path) -> None:
    """Training loss (running mean of the mini-batch loss) against the step, one line per label: the
    mean over its runs (seeds) with a min-max band. ``runs`` maps a label to result dicts with run_dir."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for i, (label, results) in enumerate(runs.items()):
        steps, per_step = logged_curves(results, "train", "loss")
        if not steps:
            continue
        steps = [s + 1 for s in steps]  # iterations done, counted from 1
        ax.plot(steps, [statistics.mean(v) for v in per_step], color=f"C{i}", label=label)
        ax.fill_between(steps, [min(v) for v in per_step], [max(v) for v in per_step], color=f"C{i}",
                        alpha=0.2)
    ax.set(xlabel="iteration", ylabel="training loss (negative log-likelihood)", yscale="log", title=title)
    ax.legend(fontsize=8)
    save(fig, out)


def _is_number(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return True


def attention_map(source: list[str], output: list[str], weights, title: str, out: Path) -> None:
    """Heat map of a translation's attention: row i is the distribution over the source subwords when
    output subword i was written (Bahdanau et al. 2015, Figure 3); ``weights`` is (output, source)."""
    fig, ax = plt.subplots(figsize=(0.45 * len(source) + 2.5, 0.45 * len(output) + 1.8))
    ax.imshow(weights, cmap="gray", vmin=0, vmax=1, aspect="equal")
    ax.set_xticks(range(len(source)), [t.replace("\u2581", "") for t in source], rotation=90)
    ax.set_yticks(range(len(output)), [t.replace("\u2581", "") for t in output])
    ax.xaxis.tick_top()
    ax.set_title(title, fontsize=9)
    save(fig, out)


def validation_curves(runs: dict[str, list[dict]], metric: str, x: str, title: str, out: Path) -> None:
    """Validation ``metric`` against the logged ``x`` (``train_seconds``: minutes on this machine;
    ``train_flops``: compute), one colour per label and one line per seed: how models compare at any
    equal budget, not only at the end."""
    scale, unit = {"train_seconds": (1 / 60, "training minutes (this machine)"),
                   "train_flops": (1e-15, "training PFLOPs")}.get(x, (1, x))
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for i, (label, results) in enumerate(runs.items()):
        for j, result in enumerate(r for r in results if r.get("run_dir")):
            val = [r for r in read_jsonl(Path(result["run_dir"]) / "metrics.jsonl")
                   if r["split"] == "val" and metric in r and x in r]
            ax.plot([scale * r[x] for r in val], [r[metric] for r in val], "o-", ms=3,
                    color=f"C{i}", alpha=0.8, label=label if j == 0 else None)
    ax.set(xlabel=unit, ylabel=f"validation {metric}", title=title)
    ax.legend(fontsize=8)
    save(fig, out)


def return_curves(runs: dict[str, list[dict]], title: str, out: Path) -> None:
    """Score per game against environment steps (logged as ``env_steps``): training games (running
    mean, exploring) as a line and the validation games as dots, one colour per label, the mean over
    seeds with a min-max band."""
    fig, ax = plt.subplots(figsize=(7.5, 4.5))
    for i, (label, results) in enumerate(runs.items()):
        curves = {split: logged_curves(results, split, "return", "env_steps") for split in ("train", "val")}
        if not any(steps for steps, _ in curves.values()):
            # A policy that never trains (the random floor): its test score as a level.
            scores = [r["test_return"] for r in results if "test_return" in r]
            if scores:
                ax.axhline(statistics.mean(scores), color=f"C{i}", ls=":", label=f"{label} (test)")
            continue
        for split, style in (("train", "-"), ("val", "o--")):
            steps, per_step = curves[split]
            if not steps:
                continue
            ax.plot(steps, [statistics.mean(v) for v in per_step], style, color=f"C{i}", ms=3,
                    label=f"{label} ({'training' if split == 'train' else 'validation'})")
            ax.fill_between(steps, [min(v) for v in per_step], [max(v) for v in per_step], color=f"C{i}",
                            alpha=0.15)
    ax.set(xlabel="environment steps", ylabel="score per game", title=title)
    ax.legend(fontsize=7)
    save(fig, out)
