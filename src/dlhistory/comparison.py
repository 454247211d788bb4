"""Compare a milestone with its baselines over several seeds and judge its claim.

``compare`` runs every point of the milestone's experiment (by default: the milestone and each
baseline) for ``seeds`` seeds, summarises each metric as mean +- std, and asks the claim whether it
holds. ``review`` does that for the whole timeline; a milestone whose data is unavailable is reported
as skipped with the reason, and the review goes on.
"""

from __future__ import annotations

import math
import os
import statistics
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import DataError
from .pool import execute
from .records import write_json
from .runner import RunOptions
from .spec import Milestone, Verdict

REPORTED = ("test_accuracy", "val_accuracy", "val_bleu", "test_perplexity", "test_return_last",
            "train_return", "train_loss", "train_seconds", "steps")


@dataclass
class Comparison:
    """The results of one milestone's experiment at one preset."""

    milestone: Milestone
    preset: str
    seeds: list[int]
    results: dict[str, list[dict]] = field(default_factory=dict)
    """Point name -> one result dict per seed."""
    overrides: tuple[str, ...] = ()
    """Overrides applied to every point (``dlhistory compare adam model.architecture=cnn``)."""
    verdict: Verdict | None = None
    seconds: float = 0.0

    def summary(self, metric: str, point: str) -> tuple[float, float]:
        """(mean, std) of ``metric`` over seeds at ``point`` (std 0 for a single seed)."""
        values = [r[metric] for r in self.results[point] if metric in r]
        if not values:
            return math.nan, math.nan
        return statistics.mean(values), statistics.stdev(values) if len(values) > 1 else 0.0

    def rows(self) -> list[list[str]]:
        metrics = _metrics(self)
        return [[point, *(format_mean_std(*self.summary(m, point), m) for m in metrics)]
                for point in self.results]

    def headers(self) -> list[str]:
        return ["variant", *(_metrics(self))]

    def _summary_json(self, point: str) -> dict[str, dict[str, float]]:
        """{metric: {mean, std}} at ``point``, leaving out metrics the point has none of (NaN is not JSON)."""
        stats = {k: self.summary(k, point) for k in _metrics(self)}
        return {k: {"mean": m, "std": s} for k, (m, s) in stats.items() if not math.isnan(m)}

    def to_json(self) -> dict[str, Any]:
        m = self.milestone
        return {"milestone": m.key, "year": m.year, "title": m.title, "preset": self.preset,
                "seeds": self.seeds, "overrides": list(self.overrides),
                "claim": m.claim.statement, "metric": m.claim.metric,
                "threshold": m.claim.thresholds.get(self.preset), "paper": m.claim.paper,
                "holds": self.verdict.holds if self.verdict else None,
                "reason": self.verdict.reason if self.verdict else None,
                "table": _table_json(self.verdict),
                "seconds": round(self.seconds, 1),
                "summary": {p: self._summary_json(p) for p in self.results},
                "runs": {p: [r.get("run_dir") for r in rs] for p, rs in self.results.items()}}


def _table_json(verdict: Verdict | None) -> list[dict[str, str]] | None:
    if verdict is None or verdict.table is None:
        return None
    headers, rows = verdict.table
    return [dict(zip(headers, row, strict=True)) for row in rows]


def _metrics(comparison: Comparison) -> list[str]:
    claim_metric = comparison.milestone.claim.metric
    seen = {k for rs in comparison.results.values() for r in rs for k in r}
    return [claim_metric, *(m for m in REPORTED if m != claim_metric and m in seen)]


def format_mean_std(mean: float, std: float, metric: str = "") -> str:
    if math.isnan(mean):
        return "-"
    if metric.endswith("accuracy"):
        return f"{100 * mean:.2f} ± {100 * std:.2f}%"
    if metric.endswith("seconds"):
        return f"{mean:.1f} ± {std:.1f}"
    if metric == "steps":
        return f"{mean:.0f} ± {std:.0f}"
    if metric.endswith(("bleu", "perplexity")):  # BLEU is published with two decimals at most
        return f"{mean:.2f} ± {std:.2f}"
    if "return" in metric:  # game scores
        return f"{mean:.1f} ± {std:.1f}"
    return f"{mean:.4f} ± {std:.4f}"


def _digits(metric: str) -> int:
    return 1 if "return" in metric else 2 if metric.endswith("bleu") else 4


def default_judge(milestone: Milestone, preset: str, results: Mapping[str, list[dict]]) -> Verdict:
    """The milestone's mean metric reaches the preset's threshold and beats every baseline's mean."""
    claim = milestone.claim
    sign = 1 if claim.direction == "max" else -1
    diverged = [p for p, runs in results.items() if any(claim.metric not in r for r in runs)]
    if diverged:
        return Verdict(False, f"runs of {', '.join(diverged)} diverged or reported no {claim.metric}")

    def mean(point: str) -> float:
        return statistics.mean(r[claim.metric] for r in results[point])

    ours, digits = mean(milestone.variant), _digits(claim.metric)
    reasons, holds = [], True
    threshold = claim.thresholds.get(preset)
    if threshold is not None:
        ok = sign * (ours - threshold) >= 0
        holds &= ok
        reasons.append(f"{claim.metric} {ours:.{digits}f} {'>=' if sign > 0 else '<='} {threshold} "
                       f"{'yes' if ok else 'NO'}")
    for baseline in (p for p in results if p != milestone.variant):
        ok = sign * (ours - mean(baseline)) > 0
        holds &= ok
        reasons.append(f"beats {baseline} ({mean(baseline):.{digits}f}) {'yes' if ok else 'NO'}")
    return Verdict(holds, "; ".join(reasons))


def compare(milestone: Milestone, preset: str = "cpu", seeds: int | None = None, first_seed: int = 0,
            log=print, workers: int | None = None, overrides: tuple[str, ...] = (),
            **options: Any) -> Comparison:
    """Run the milestone's experiment at ``preset`` for ``seeds`` seeds and judge the claim.

    ``overrides`` (dotted ``key=value``) change every point, before the point's own overrides: the
    same experiment with one component changed. ``seeds`` defaults to the claim's own. ``workers`` > 1
    runs the points in that many processes sharing the cores (:mod:`dlhistory.pool`); by default one,
    or one per core for an experiment of many small runs (``Claim.parallel``).
    """
    start = time.perf_counter()
    seeds = seeds or milestone.claim.seeds
    comparison = Comparison(milestone, preset, list(range(first_seed, first_seed + seeds)),
                            overrides=tuple(overrides))
    cells = [(point, seed) for point in milestone.points(preset) for seed in comparison.seeds]
    runs = [RunOptions(preset=preset, variant=point.variant, seed=seed,
                       overrides=(*overrides, *point.overrides),
                       label=point.label.replace("=", "").replace(" ", ""), **options)
            for point, seed in cells]
    if workers is None:
        workers = (os.cpu_count() or 1) if milestone.claim.parallel else 1
    names = [f"{point.name} seed {seed}" for point, seed in cells]
    finished = dict(execute(milestone, runs, workers, log=log, names=names,
                            isolated=milestone.claim.isolated))
    for i, (point, _) in enumerate(cells):  # in the experiment's order, whatever order they finished in
        comparison.results.setdefault(point.name, []).append(finished[i])
    judge = milestone.claim.judge or default_judge
    comparison.verdict = judge(milestone, preset, comparison.results)
    comparison.seconds = time.perf_counter() - start
    return comparison


def save(comparison: Comparison, out_dir: Path) -> dict[str, Path]:
    """Write summary.json, summary.md and the comparison figure into ``out_dir``."""
    from .report import figures, tables

    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"json": out_dir / "summary.json", "md": out_dir / "summary.md"}
    write_json(paths["json"], comparison.to_json())
    paths["md"].write_text(tables.comparison_markdown(comparison))
    draw = comparison.milestone.claim.figures
    if draw is not None:
        paths.update({f"figure{i or ''}": p for i, p in enumerate(draw(comparison, out_dir))})
    else:
        paths["figure"] = out_dir / f"{comparison.milestone.key}.png"
        figures.comparison_figure(comparison, paths["figure"])
    return paths


@dataclass
class ReviewEntry:
    milestone: Milestone
    comparison: Comparison | None = None
    skipped: str | None = None


def review(milestones: tuple[Milestone, ...], preset: str, seeds: int | None, log=print,
           **options: Any) -> list[ReviewEntry]:
    """Compare every milestone of the timeline; unavailable data skips an entry, never the review."""
    entries = []
    for m in milestones:
        try:
            entries.append(ReviewEntry(m, compare(m, preset, seeds, log=log, **options)))
        except DataError as e:
            log(f"[{m.key}] skipped: {e}")
            entries.append(ReviewEntry(m, skipped=str(e)))
    return entries
