"""Compare a milestone with its baselines over several seeds and judge its claim.

``compare`` runs every point of the milestone's experiment (by default: the milestone and each
baseline) for ``seeds`` seeds, summarises the claim's columns as mean +- std, asks the claim's judge
and writes ``summary.md``, ``summary.json`` and the figures. ``review`` does that for the whole
timeline; a milestone whose data is unavailable is *skipped* with the reason, and the review goes on.
Runs already made by the same code with the same configs and seeds are reused, so an interrupted
review continues where it stopped and a repeated one runs nothing new.

A verdict says only what was measured: *holds* or *FAILS* when the comparison ran the claim's seeds
at a preset that can show it; *not judged* (with the reason) at the smoke preset, with fewer seeds or
without a baseline; *skipped* when the data could not be had.
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

from .errors import DataError, UsageError
from .pool import Batch, execute_all
from .records import atomic_write_text, write_json
from .runner import RunOptions
from .spec import Metric, Milestone, Point, Verdict


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
    paths: dict[str, Path] = field(default_factory=dict)
    """Where :func:`save` wrote the summaries and figures."""

    def summary(self, metric: str, point: str) -> tuple[float, float, int]:
        """(mean, std, n) of ``metric`` over the seeds at ``point`` that reported it (std 0 for one)."""
        values = [r[metric] for r in self.results[point] if metric in r]
        if not values:
            return math.nan, math.nan, 0
        return statistics.mean(values), statistics.stdev(values) if len(values) > 1 else 0.0, len(values)

    def columns(self) -> tuple[Metric, ...]:
        return self.milestone.claim.columns

    def headers(self) -> list[str]:
        return ["variant", *(m.header for m in self.columns())]

    def rows(self) -> list[list[str]]:
        """One row per point: each column's mean ± std, with n where some seeds did not report it."""
        return [[point, *(m.format(*self.summary(m.key, point), len(runs)) for m in self.columns())]
                for point, runs in self.results.items()]

    @property
    def command(self) -> str:
        """The command that reproduces this comparison."""
        return " ".join(["dlhistory compare", self.milestone.key, *self.overrides, "--preset", self.preset,
                         "--seeds", str(len(self.seeds))])

    def to_json(self) -> dict[str, Any]:
        m = self.milestone
        return {"milestone": m.key, "year": m.year, "title": m.title, "preset": self.preset,
                "seeds": self.seeds, "overrides": list(self.overrides), "command": self.command,
                "claim": m.claim.statement, "metric": m.claim.metric, "claim_seeds": m.claim.seeds,
                "threshold": m.claim.thresholds.get(self.preset), "paper": m.claim.paper,
                "outcome": self.verdict.outcome if self.verdict else None,
                "reason": self.verdict.reason if self.verdict else None,
                "table": _table_json(self.verdict),
                "seconds": round(self.seconds, 1),
                "summary": {p: self._summary_json(p) for p in self.results},
                "runs": {p: [r.get("run_dir") for r in rs] for p, rs in self.results.items()}}

    def _summary_json(self, point: str) -> dict[str, dict[str, float]]:
        """{metric: {mean, std, n}} at ``point``, leaving out metrics no seed reported (NaN is not JSON)."""
        stats = {m.key: self.summary(m.key, point) for m in self.columns()}
        return {k: {"mean": mean, "std": std, "n": n} for k, (mean, std, n) in stats.items() if n}


def _table_json(verdict: Verdict | None) -> list[dict[str, str]] | None:
    if verdict is None or verdict.table is None:
        return None
    headers, rows = verdict.table
    return [dict(zip(headers, row, strict=True)) for row in rows]


# --------------------------------------------------------------------------------------------------
# Judging


def diverged(results: Mapping[str, list[dict]], metric: str) -> list[str]:
    """The points where some seed diverged or did not report ``metric``."""
    return [p for p, runs in results.items() if any(metric not in r for r in runs)]


def missing(milestone: Milestone, preset: str, results: Mapping[str, list[dict]]) -> list[str]:
    """The points of the experiment that have no runs in ``results``."""
    return [p.name for p in milestone.points(preset) if not results.get(p.name)]


def default_judge(milestone: Milestone, preset: str, results: Mapping[str, list[dict]]) -> Verdict:
    """The milestone's mean metric reaches the preset's threshold and beats every baseline's mean."""
    claim = milestone.claim
    absent = missing(milestone, preset, results)
    if absent:
        return Verdict("not judged", f"no runs of {', '.join(absent)} to compare with")
    bad = diverged(results, claim.metric)
    if bad:
        return Verdict.judged(False, f"runs of {', '.join(bad)} diverged or reported no {claim.metric}")
    threshold = claim.thresholds.get(preset)
    baselines = [p for p in results if p != milestone.variant]
    if threshold is None and not baselines:
        return Verdict("not judged", f"the claim states no threshold at {preset} and there is no baseline")
    sign = 1 if claim.direction == "max" else -1
    column = next(m for m in claim.columns if m.key == claim.metric)

    def mean(point: str) -> float:
        return statistics.mean(r[claim.metric] for r in results[point])

    ours = mean(milestone.variant)
    reasons, holds = [], True
    if threshold is not None:
        ok = sign * (ours - threshold) >= 0
        holds &= ok
        reasons.append(f"{claim.metric} {column.value(ours)} {'>=' if sign > 0 else '<='} "
                       f"{column.value(threshold)} {'yes' if ok else 'NO'}")
    for baseline in baselines:
        ok = sign * (ours - mean(baseline)) > 0
        holds &= ok
        reasons.append(f"beats {baseline} ({column.value(mean(baseline))}) {'yes' if ok else 'NO'}")
    return Verdict.judged(holds, "; ".join(reasons))


def decide(milestone: Milestone, preset: str, seeds: int, results: Mapping[str, list[dict]]) -> Verdict:
    """The claim's judge, but only where the comparison can say anything: never at the smoke preset
    (which only proves the code runs) nor with fewer seeds than the claim is stated over."""
    judged = (milestone.claim.judge or default_judge)(milestone, preset, results)
    why = None
    if preset.startswith("smoke"):
        why = "smoke only proves the code runs"
    elif seeds < milestone.claim.seeds:
        why = f"{seeds} of {milestone.claim.seeds} seeds"
    if why is None or judged.outcome == "not judged":
        return judged
    return Verdict("not judged", f"{why}; measured: {judged.reason}", judged.table)


# --------------------------------------------------------------------------------------------------
# Running


def compare(milestone: Milestone, preset: str = "cpu", seeds: int | None = None, first_seed: int = 0,
            log=print, workers: int | None = None, overrides: tuple[str, ...] = (), reuse: bool = True,
            out_dir: str | Path | None = None, **options: Any) -> Comparison:
    """Run the milestone's experiment at ``preset`` for ``seeds`` seeds, judge the claim and save the
    summaries and figures (into ``out_dir``; default ``runs/<milestone>/compare-<preset>-<time>``).

    ``overrides`` (dotted ``key=value``) change every point, before the point's own overrides: the
    same experiment with one component changed. ``seeds`` defaults to the claim's own. ``workers`` > 1
    runs the points in that many processes sharing the cores (:mod:`dlhistory.pool`); by default one,
    or one per core for an experiment of many small runs (``Claim.parallel``). ``reuse`` takes runs
    already made by this code with the same configs and seeds instead of repeating them.
    """
    experiment = Experiment.plan(milestone, preset, seeds, first_seed, tuple(overrides), options)
    if workers is None:
        workers = (os.cpu_count() or 1) if milestone.claim.parallel else 1
    finished = {}
    for _, i, result in execute_all([experiment.batch], workers, log, reuse):
        if isinstance(result, BaseException):
            raise result
        finished[i] = result
    return experiment.conclude(finished, out_dir, options)


def run_owner(milestone: Milestone, preset: str, variant: str,
              overrides: tuple[str, ...]) -> tuple[Milestone, str]:
    """Whose run a point's is: (the milestone, its variant). A borrowed baseline is the other
    milestone's variant where their recipes (with ``overrides``) are equal, and its runs are made and
    reused there; otherwise, or where the overrides do not apply to the other milestone, it is ours."""
    from . import catalogue
    from .runner import load_recipe

    if variant not in milestone.borrowed:
        return milestone, variant
    key, theirs = milestone.borrowed[variant]
    other = catalogue.get(key)
    ours = load_recipe(milestone, preset, variant, overrides)
    try:
        same = load_recipe(other, preset, theirs, overrides) == ours
    except UsageError:  # an override that only our recipe has a key for: the recipes differ anyway
        same = False
    return (other, theirs) if same else (milestone, variant)


@dataclass
class Experiment:
    """A comparison being made: its cells (point, seed), the runs that fill them, and when it began."""

    comparison: Comparison
    cells: list[tuple[Point, int]]
    batch: Batch
    start: float

    @classmethod
    def plan(cls, milestone: Milestone, preset: str, seeds: int | None, first_seed: int,
             overrides: tuple[str, ...], options: dict[str, Any]) -> Experiment:
        start = time.perf_counter()
        seeds = seeds or milestone.claim.seeds
        comparison = Comparison(milestone, preset, list(range(first_seed, first_seed + seeds)),
                                overrides=overrides)
        cells = [(point, seed) for point in milestone.points(preset)
                 for seed in comparison.seeds[:point.seeds]]  # None: every seed
        # Per point, not per variant: a point's own overrides can make its recipe differ from the owner's.
        owners = {p: run_owner(milestone, preset, p.variant, (*overrides, *p.overrides)) for p, _ in cells}
        runs = [RunOptions(preset=preset, variant=owners[point][1], seed=seed,
                           overrides=(*overrides, *point.overrides),
                           label=point.label.replace("=", "").replace(" ", ""), **options)
                for point, seed in cells]
        names = [f"{point.name} seed {seed}" for point, seed in cells]
        batch = Batch(milestone, runs, names, [owners[point][0] for point, _ in cells])
        return cls(comparison, cells, batch, start)

    def conclude(self, finished: Mapping[int, dict], out_dir: str | Path | None,
                 options: Mapping[str, Any]) -> Comparison:
        """The results in the experiment's order (whatever order they finished in), the verdict, and
        the summaries and figures saved."""
        comparison, milestone = self.comparison, self.comparison.milestone
        for i, (point, _) in enumerate(self.cells):
            comparison.results.setdefault(point.name, []).append(finished[i])
        comparison.verdict = decide(milestone, comparison.preset, len(comparison.seeds), comparison.results)
        comparison.seconds = time.perf_counter() - self.start
        runs_dir = Path(options.get("runs_dir", "runs"))
        out = Path(out_dir) if out_dir else runs_dir / milestone.key / f"compare-{_stamp(comparison.preset)}"
        save(comparison, out)
        return comparison


def save(comparison: Comparison, out_dir: Path) -> dict[str, Path]:
    """Write summary.json, summary.md and the comparison's figures into ``out_dir``."""
    from .report import figures, tables

    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"json": out_dir / "summary.json", "md": out_dir / "summary.md"}
    write_json(paths["json"], comparison.to_json())
    atomic_write_text(paths["md"], tables.comparison_markdown(comparison))
    draw = comparison.milestone.claim.figures
    if draw is not None:
        paths.update({f"figure{i or ''}": p for i, p in enumerate(draw(comparison, out_dir))})
    else:
        paths["figure"] = out_dir / f"{comparison.milestone.key}.png"
        figures.comparison_figure(comparison, paths["figure"])
    comparison.paths = paths
    return paths


@dataclass
class ReviewEntry:
    milestone: Milestone
    comparison: Comparison | None = None
    skipped: str | None = None
    """Why the milestone could not run (its data), with how to get it."""

    @property
    def verdict(self) -> Verdict:
        if self.comparison is None:
            return Verdict("skipped", self.skipped or "")
        return self.comparison.verdict


@dataclass
class Review:
    """The timeline's comparisons at one preset."""

    preset: str
    seeds: int | None
    entries: list[ReviewEntry]
    seconds: float = 0.0
    paths: dict[str, Path] = field(default_factory=dict)
    lang: str = "en"
    """The page's language (``en`` or ``ko``)."""

    @property
    def command(self) -> str:
        return (f"dlhistory review --preset {self.preset}" + (f" --seeds {self.seeds}" if self.seeds else "")
                + (f" --lang {self.lang}" if self.lang != "en" else ""))

    def to_json(self) -> dict[str, Any]:
        return {"preset": self.preset, "seeds": self.seeds, "seconds": round(self.seconds, 1),
                "command": self.command,
                "milestones": [e.comparison.to_json() if e.comparison else
                               {"milestone": e.milestone.key, "year": e.milestone.year,
                                "outcome": "skipped", "reason": e.skipped}
                               for e in self.entries]}


def review(milestones: tuple[Milestone, ...], preset: str = "cpu", seeds: int | None = None, log=print,
           out_dir: str | Path | None = None, lang: str = "en", workers: int | None = None,
           reuse: bool = True, **options: Any) -> Review:
    """Compare every milestone of the timeline and write the review's summaries and its page (into
    ``out_dir``; default ``runs/review/<preset>-<time>``), rewritten after each milestone so that a long
    review shows its results as they come. Unavailable data skips an entry, never the review; a run
    that fails otherwise (a bug, a value torch refuses) stops its own milestone, the others go on, and
    the review raises that error once every other milestone is done and written.

    Every milestone's runs share one set of ``workers`` (default: one per core on the CPU, each with
    one thread, as small models use two threads poorly; one on a GPU), in the timeline's order, so no
    worker waits for the slowest run of one milestone while the next milestone's runs are ready."""
    start = time.perf_counter()
    for m in milestones:  # an unknown preset fails before anything is written (it names the folder)
        m.recipe(preset)
    runs_dir = options.get("runs_dir", "runs")
    out = Path(out_dir) if out_dir else Path(runs_dir) / "review" / _stamp(preset)
    result = Review(preset, seeds, [], lang=lang)
    _save_review(result, out, pending=milestones)  # the page exists from the start: every entry pending
    experiments = [Experiment.plan(m, preset, seeds, 0, (), options) for m in milestones]
    finished: list[dict[int, dict]] = [{} for _ in milestones]
    entries: dict[int, ReviewEntry] = {}
    failures: list[BaseException] = []
    if workers is None:
        workers = review_workers(options.get("device", "auto"))
    for k, i, outcome in execute_all([e.batch for e in experiments], workers, log, reuse):
        m = milestones[k]
        if k in entries:  # skipped already: a run that was under way when another failed
            continue
        if isinstance(outcome, DataError):
            log(f"[{m.key}] skipped: {_short(outcome)}")
            entries[k] = ReviewEntry(m, skipped=str(outcome))
        elif isinstance(outcome, BaseException):  # an hour of other milestones' runs is not lost to it
            error = f"{type(outcome).__name__}: {outcome}"
            log(f"[{m.key}] FAILED: {error}")
            entries[k] = ReviewEntry(m, skipped=f"a run failed: {error}")
            failures.append(outcome)
        else:
            finished[k][i] = outcome
            if len(finished[k]) < len(experiments[k].cells):
                continue
            entries[k] = ReviewEntry(m, experiments[k].conclude(finished[k], out / m.key, options))
        result.entries = [entries[j] for j in sorted(entries)]
        result.seconds = time.perf_counter() - start
        _save_review(result, out, pending=tuple(m for j, m in enumerate(milestones) if j not in entries))
    if failures:
        raise failures[0]
    return result


def review_workers(device: str) -> int:
    """A review's default workers: one per core on the CPU, one on a GPU."""
    from .hardware import resolve

    return 1 if resolve(device, "auto")[0].type != "cpu" else (os.cpu_count() or 1)


def _short(error: Exception) -> str:
    from .report.page import short_reason

    what, fix = short_reason(str(error))
    return f"{what}; fix: {fix}"


def _save_review(result: Review, out: Path, pending: tuple[Milestone, ...] = ()) -> None:
    from .report import page, tables

    out.mkdir(parents=True, exist_ok=True)
    result.paths = {"md": out / "summary.md", "json": out / "summary.json", "html": out / "index.html"}
    atomic_write_text(result.paths["md"], tables.review_markdown(result))
    write_json(result.paths["json"], result.to_json())
    page.write_page(result, out, result.lang, pending)


def _stamp(preset: str) -> str:
    return f"{preset}-{time.strftime('%Y%m%d-%H%M%S')}"
