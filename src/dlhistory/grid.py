"""Sweep a grid of overrides over seeds, for any milestone: ``dlhistory sweep adam algorithm.lr=1e-4:1e-1:7``.

A grid item is ``key=low:high:n`` (n log-spaced values from low to high, both included),
``key=a,b,c`` (a list) or ``key=value`` (fixed). Points run in parallel worker processes that share
the cores (:mod:`dlhistory.pool`), and every finished (or diverged) run is appended to
``results.jsonl`` in the sweep's directory, whose name is derived from the command; running the same
command again skips the points already done.
"""

from __future__ import annotations

import csv
import hashlib
import itertools
import json
import math
import os
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .config import shorten
from .errors import UsageError
from .pool import execute
from .records import atomic_write, read_jsonl
from .runner import RunOptions, load_recipe
from .spec import Milestone


@dataclass(frozen=True)
class Axis:
    """One swept key and its values, as the strings the override parser takes."""

    key: str
    values: tuple[str, ...]
    log: bool = False


MAX_POINTS = 1000
"""A grid larger than this is almost surely a typo (``lr=1e-3:1e-1:1000000``)."""


def parse_axis(item: str) -> Axis:
    """``key=low:high:n`` -> n log-spaced values; ``key=a,b`` -> a list; ``key=v`` -> one value."""
    key, sep, spec = item.partition("=")
    said = shorten(item)
    if not sep or not key or not spec:
        raise UsageError(f"sweep item {said!r} is not key=low:high:n, key=a,b,c or key=value")
    if spec.count(":") == 2:
        low, high, n = spec.split(":")
        try:
            low_f, high_f, count = float(low), float(high), int(n)
        except ValueError:
            raise UsageError(f"sweep item {said!r}: low:high:n needs two numbers and a count") from None
        if not (math.isfinite(low_f) and math.isfinite(high_f)) or low_f <= 0 or high_f <= 0 or count < 2:
            raise UsageError(f"sweep item {said!r}: a log grid needs finite positive ends and n >= 2")
        if count > MAX_POINTS:
            raise UsageError(f"sweep item {said!r}: {count} points; a grid takes at most {MAX_POINTS}")
        step = (math.log10(high_f) - math.log10(low_f)) / (count - 1)
        values = tuple(f"{10 ** (math.log10(low_f) + i * step):.6g}" for i in range(count))
        return Axis(key, values, log=True)
    values = tuple(v for v in spec.split(",") if v)
    if not values:
        raise UsageError(f"sweep item {said!r} lists no values, e.g. {key}=1,2,3")
    return Axis(key, values)


@dataclass(frozen=True)
class Job:
    variant: str | None
    overrides: tuple[str, ...]
    seed: int

    @property
    def point(self) -> dict[str, str]:
        """The overrides as {key: value}."""
        return dict(o.split("=", 1) for o in self.overrides)

    @property
    def key(self) -> str:
        return json.dumps([self.variant, list(self.overrides), self.seed])


def jobs(axes: list[Axis], variants: list[str | None], seeds: int) -> list[Job]:
    """Every (variant, grid point, seed), the grid being the product of the axes."""
    grid = list(itertools.product(*[[f"{a.key}={v}" for v in a.values] for a in axes]))
    return [Job(variant, point, seed) for variant in variants for point in grid for seed in range(seeds)]


def sweep_dir(runs_dir: str, milestone: str, preset: str, items: list[str], variants: list) -> Path:
    """The same command always maps to the same directory, which is what makes a sweep resumable."""
    digest = hashlib.sha256(json.dumps([preset, items, variants]).encode()).hexdigest()[:10]
    return Path(runs_dir) / milestone / f"sweep-{preset}-{digest}"


@dataclass
class Sweep:
    """A finished sweep: one row per (variant, grid point) with ``metric``'s mean and std over seeds."""

    milestone: Milestone
    preset: str
    seeds: int
    metric: str
    axes: list[Axis]
    rows: list[dict[str, Any]]
    paths: dict[str, Path]


def sweep(milestone: Milestone, items: list[str], preset: str = "cpu", seeds: int = 1,
          variants: list[str] | None = None, workers: int | None = None, metric: str | None = None,
          log=print, **options: Any) -> Sweep:
    """Run the grid (resuming the same command's earlier work), then write ``results.csv`` and
    ``sweep.png`` into the sweep's directory. ``metric`` defaults to the claim's, on the validation
    split: selection happens on validation data, so a test-set claim metric is swept on its val_ twin."""
    from .report.figures import sweep_figure

    if seeds < 1:
        raise UsageError(f"--seeds {seeds}: need at least 1 seed")
    if not items:
        raise UsageError("sweep needs at least one grid item, e.g. algorithm.lr=1e-4:1e-1:7")
    metric = metric or milestone.claim.metric.replace("test_", "val_")
    out, axes, records = run_sweep(milestone, items, preset, seeds, variants, workers, log=log, **options)
    rows = summarize(axes, records, metric)
    if not rows:
        raise UsageError(f"no run reported {metric!r}; pick another with --metric")
    paths = {"csv": out / "results.csv", "figure": out / "sweep.png"}
    write_csv(paths["csv"], rows)
    title = f"{milestone.year} {milestone.title}: {metric} ({preset}, {seeds} seeds)"
    sweep_figure(axes, rows, metric, title, paths["figure"])
    return Sweep(milestone, preset, seeds, metric, axes, rows, paths)


def run_sweep(milestone: Milestone, items: list[str], preset: str = "cpu", seeds: int = 1,
              variants: list[str] | None = None, workers: int | None = None, log=print,
              **options: Any) -> tuple[Path, list[Axis], list[dict]]:
    """Run every point of the grid not yet in the sweep's results.jsonl; return (dir, axes, records)."""
    axes = [parse_axis(item) for item in items]
    names = variants or [None]
    todo_all = jobs(axes, names, seeds)
    if len(todo_all) > MAX_POINTS:
        raise UsageError(f"the sweep has {len(todo_all)} runs; at most {MAX_POINTS}: fewer values or seeds")
    for variant, overrides in {(j.variant, j.overrides) for j in todo_all}:
        load_recipe(milestone, preset, variant, overrides)  # a bad key or value fails before any work
    out = sweep_dir(options.get("runs_dir", "runs"), milestone.key, preset, items, names)
    out.mkdir(parents=True, exist_ok=True)
    results_path = out / "results.jsonl"
    records = read_jsonl(results_path)  # lines cut short by an interruption are simply redone
    done = {r["job"] for r in records}
    todo = [j for j in todo_all if j.key not in done]
    log(f"sweep {out}: {len(todo_all)} runs, {len(todo_all) - len(todo)} already done")
    runs = [RunOptions(preset=preset, variant=j.variant, seed=j.seed, overrides=j.overrides, progress=False,
                       **options) for j in todo]
    workers = max(1, min(workers or os.cpu_count() or 1, len(todo) or 1))
    for i, result in execute(milestone, runs, workers, log=log):
        job = todo[i]
        record = {"job": job.key, "variant": job.variant or milestone.variant, "seed": job.seed,
                  **job.point, "status": result["status"],
                  **{k: v for k, v in result.items() if isinstance(v, (int, float)) and k != "rank"},
                  "run_dir": result["run_dir"]}
        with results_path.open("a") as f:  # one line per finished run: the resume record
            f.write(json.dumps(record) + "\n")
        records.append(record)
    wanted = {j.key for j in todo_all}
    return out, axes, [r for r in records if r["job"] in wanted]


def summarize(axes: list[Axis], records: list[dict], metric: str) -> list[dict[str, Any]]:
    """One row per (variant, grid point): mean and std of ``metric`` over seeds, and how many diverged."""
    groups: dict[tuple, list[float]] = {}
    diverged: dict[tuple, int] = {}
    for r in records:
        key = (r["variant"], *(r[a.key] for a in axes))
        groups.setdefault(key, [])
        if metric in r:
            groups[key].append(r[metric])
        elif r.get("status") == "diverged":
            diverged[key] = diverged.get(key, 0) + 1
    rows = []
    for key, values in groups.items():
        if not values and not diverged.get(key):
            continue
        row = {"variant": key[0], **{a.key: v for a, v in zip(axes, key[1:], strict=True)}}
        row.update({f"{metric}_mean": statistics.mean(values) if values else math.nan,
                    f"{metric}_std": statistics.stdev(values) if len(values) > 1 else 0.0,
                    "seeds": len(values), "diverged": diverged.get(key, 0)})
        rows.append(row)
    return sorted(rows, key=lambda r: [r["variant"], *(_as_number(r[a.key]) for a in axes)])


def _as_number(value: str) -> Any:
    try:
        return float(value)
    except ValueError:
        return value


def write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    def write(tmp: Path) -> None:
        with tmp.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)

    if rows:
        atomic_write(path, write)
