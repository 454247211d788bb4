"""Experiments over label budgets (BERT, SimCLR): each variant's mean test accuracy per budget, and the
figure of accuracy against the number of labels."""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path


def accuracies(runs: list[dict]) -> list[float] | None:
    """Each run's test accuracy, or None when a run is missing one (it diverged or did not finish)."""
    values = [r.get("test_accuracy") for r in runs]
    return None if not values or any(v is None or not math.isfinite(v) for v in values) else values


def means_by_budget(results: Mapping[str, list[dict]], variants: Iterable[str],
                    budgets: list[str]) -> dict[str, dict[str, float]] | str:
    """{budget: {variant: mean test accuracy}} from points named '<variant> <budget>', or the reason
    it cannot be had (the first point without complete runs)."""
    means: dict[str, dict[str, float]] = {}
    for budget in budgets:
        for variant in variants:
            values = accuracies(results.get(f"{variant} {budget}", []))
            if values is None:
                return f"no complete runs of {variant} at {budget}"
            means.setdefault(budget, {})[variant] = statistics.mean(values)
    return means


def accuracy_by_labels(comparison, budgets: Iterable[int | None], label: Callable[[int | None], str],
                       size: Callable[[int | None], int], xlabel: str, title: str, out: Path) -> None:
    """Test accuracy against the number of labels (log scale): each variant's mean and seed range."""
    from .figures import plt, save

    fig, ax = plt.subplots(figsize=(6, 4))
    budgets = list(budgets)
    for variant, colour in zip(comparison.milestone.variants, ("C0", "C7", "C2"), strict=False):
        xs, mean, low, high = [], [], [], []
        for n in budgets:
            values = accuracies(comparison.results.get(f"{variant} {label(n)}", []))
            if values:
                xs.append(size(n))
                mean.append(100 * statistics.mean(values))
                low.append(100 * min(values))
                high.append(100 * max(values))
        if xs:
            ax.plot(xs, mean, "o-", color=colour, label=variant)
            ax.fill_between(xs, low, high, color=colour, alpha=0.2)
    ax.set(xscale="log", xlabel=xlabel, ylabel="test accuracy (%)", title=title)
    ax.legend()
    save(fig, out)
