"""*The loss is only a proxy*, shown with the review's own runs.

The lecture's point about the loss: it stands in for what we want, and a falling loss does not
guarantee it. Each lens below looks through the finished runs of a review for one way that shows, by
what the runs measured (never by milestone name), and says it with the numbers it found:

* equal loss, unequal goal: two models with nearly the same validation perplexity (or loss) whose goal
  metric (BLEU, accuracy) differs widely;
* rising loss, improving goal: a classifier whose validation loss climbs from its minimum while its
  validation accuracy still improves (over-confidence costs log-loss, not accuracy);
* a game's losses: an adversarial pair whose losses do not fall while the sample quality (a Fréchet
  distance) improves by a factor.
"""

from __future__ import annotations

import functools
import hashlib
import math
from dataclasses import dataclass
from pathlib import Path

from ..records import read_jsonl


@dataclass(frozen=True)
class Lens:
    """One way the loss proved a proxy: its ``kind`` (a key of :data:`~.i18n.LENSES`), the numbers
    that its sentence is written with (already formatted), and a figure where it has one."""

    kind: str
    values: dict[str, str]
    figure: Path | None = None


def lenses(comparisons, out_dir: Path) -> list[Lens]:
    """Every lens that the runs of ``comparisons`` can show, each with its numbers (and a figure)."""
    found = [equal_loss(comparisons), rising_loss(comparisons, out_dir),
             game_losses(comparisons, out_dir)]
    return [lens for lens in found if lens is not None]


# --------------------------------------------------------------------------------------------------
# Reading the runs


def _first_runs(comparison) -> dict[str, dict]:
    """Each point's first finished run (the one with a run directory)."""
    first = {}
    for point, runs in comparison.results.items():
        run = next((r for r in runs if r.get("run_dir")), None)
        if run is not None:
            first[point] = run
    return first


def _records(run: dict, split: str) -> list[dict]:
    path = Path(run["run_dir"]) / "metrics.jsonl"
    if not path.is_file():
        return []
    return [r for r in _read(path, path.stat().st_mtime_ns) if r.get("split") == split]


@functools.lru_cache(maxsize=256)
def _read(path: Path, mtime_ns: int) -> list[dict]:
    """A run's records, read once while the file is unchanged: every lens reads the same runs, and the
    page is rewritten after every milestone."""
    return read_jsonl(path)


def _goal_key(comparison) -> str:
    """The claim's metric as the validation records name it: ``test_bleu`` -> ``bleu``."""
    metric = comparison.milestone.claim.metric
    return metric.split("_", 1)[1] if metric.startswith(("test_", "val_")) else metric


# --------------------------------------------------------------------------------------------------
# Equal loss, unequal goal


def equal_loss(comparisons, tolerance: float = 0.05) -> Lens | None:
    """The widest goal gap between a milestone's own runs and a baseline's, at validation records
    whose loss (perplexity where recorded) is within ``tolerance`` (relative) of each other."""
    best = None
    for c in comparisons:
        goal, runs = _goal_key(c), _first_runs(c)
        ours = c.milestone.variant
        for b in (p for p in runs if p in c.milestone.baselines and ours in runs):  # the paper's contest
            found = _closest_loss(_trained(runs[ours]), _trained(runs[b]), goal, tolerance)
            if found and (best is None or found[0] > best[0]):
                best = (found[0], c, ours, b, *found[1:])
    if best is None:
        return None
    _, c, a, b, key, ra, rb, goal = best
    return Lens("equal_loss", {"milestone": f"{c.milestone.year} {c.milestone.title}", "a": a, "b": b,
                               "step_a": str(ra["step"]), "step_b": str(rb["step"]), "loss": key,
                               "loss_a": f"{ra[key]:.2f}", "loss_b": f"{rb[key]:.2f}", "goal": goal,
                               "goal_a": _show(ra[goal]), "goal_b": _show(rb[goal])})


def _trained(run: dict) -> list[dict]:
    """A run's validation records past its first third: early records differ in everything at once."""
    val = _records(run, "val")
    return val[len(val) // 3:]


def _closest_loss(ra: list[dict], rb: list[dict], goal: str, tolerance: float):
    """(goal gap, loss key, record a, record b, goal) of the pair with equal loss and the widest gap."""
    key = "perplexity" if any("perplexity" in r for r in ra) else "loss"
    best = None
    for x in ra:
        for y in rb:
            if not all(k in r for r in (x, y) for k in (key, goal)):
                continue
            if abs(x[key] - y[key]) > tolerance * min(x[key], y[key]):
                continue
            low = min(abs(x[goal]), abs(y[goal]))
            gap = abs(x[goal] - y[goal]) / low if low else 0.0
            if gap > 0.15 and (best is None or gap > best[0]):
                best = (gap, key, x, y, goal)
    return best


def _show(value: float) -> str:
    return f"{value:.1%}" if 0 <= value <= 1 else f"{value:.1f}"


# --------------------------------------------------------------------------------------------------
# Rising loss, improving goal


def rising_loss(comparisons, out_dir: Path, rise: float = 0.05) -> Lens | None:
    """The run whose validation loss rose most (at least ``rise``, relative) after its minimum while
    its validation accuracy went on improving, with a figure of both."""
    best = None
    for c in comparisons:
        for point, run in _first_runs(c).items():
            val = [r for r in _records(run, "val") if "loss" in r and "accuracy" in r]
            if len(val) < 3:
                continue
            low = min(range(len(val)), key=lambda i: val[i]["loss"])
            later = val[low + 1:]
            if not later:
                continue
            top = max(later, key=lambda r: r["accuracy"])
            up = later[-1]["loss"] / val[low]["loss"] - 1
            if up >= rise and top["accuracy"] > val[low]["accuracy"] and (best is None or up > best[0]):
                best = (up, c, point, run, val, val[low], top)
    if best is None:
        return None
    _, c, point, run, val, low, top = best
    figure = _figure_path(out_dir, "rising-loss", run)
    if not figure.is_file():
        _two_axes(figure, [r["step"] for r in val], [r["loss"] for r in val], "validation loss",
                  [100 * r["accuracy"] for r in val], "validation accuracy (%)",
                  f"{c.milestone.title} ({point}, seed {run.get('seed', 0)})")
    return Lens("rising_loss", {"milestone": f"{c.milestone.year} {c.milestone.title}", "run": point,
                                "seed": str(run.get("seed", 0)), "step": str(low["step"]),
                                "low": f"{low['loss']:.3f}", "end": f"{val[-1]['loss']:.3f}",
                                "from": f"{low['accuracy']:.2%}", "to": f"{top['accuracy']:.2%}",
                                "top_step": str(top["step"])}, figure)


# --------------------------------------------------------------------------------------------------
# A game's losses


def game_losses(comparisons, out_dir: Path) -> Lens | None:
    """A run with two or more training losses (``loss_*``, an adversarial game) and a Fréchet distance
    on validation: the losses against the distance it reached."""
    for c in comparisons:
        for point, run in _first_runs(c).items():
            train = _records(run, "train")
            names = sorted({k for r in train for k in r if k.startswith("loss_")})
            val = _records(run, "val")
            fd = next((k for r in val for k in r if k.startswith(("fd", "fid"))), None)
            if len(names) < 2 or fd is None or len(val) < 2:
                continue
            return _game_lens(c, point, run, train, names, [r for r in val if fd in r], fd, out_dir)
    return None


def _game_lens(c, point, run, train, names, val, fd, out_dir) -> Lens:
    figure = _figure_path(out_dir, "game", run)
    if not figure.is_file():
        _game_figure(figure, c, point, run, train, names, val, fd)
    ends = "; ".join(f"{n.replace('_', ' ')} {_mean_near(train, n, 0):.2f} -> {_mean_near(train, n, -1):.2f}"
                     for n in names)
    return Lens("game", {"milestone": f"{c.milestone.year} {c.milestone.title}", "run": point,
                         "distance": fd.replace("_", " "), "first": f"{val[0][fd]:.1f}",
                         "last": f"{val[-1][fd]:.1f}", "factor": f"{val[0][fd] / max(val[-1][fd], 1e-9):.1f}",
                         "losses": ends}, figure)


def _figure_path(out_dir: Path, lens: str, run: dict) -> Path:
    """A lens's figure, named by the run it draws: the page is rewritten after every milestone, and
    a figure already drawn for the same run is kept."""
    digest = hashlib.sha256(str(run["run_dir"]).encode()).hexdigest()[:8]
    return out_dir / f"proxy-{lens}-{digest}.png"


def _game_figure(figure: Path, c, point, run, train, names, val, fd) -> None:
    import matplotlib.pyplot as plt

    from .figures import save

    fig, ax = plt.subplots(figsize=(6.4, 3.4))
    for name in names:
        points = [r for r in train if name in r]
        ax.plot([r["step"] for r in points], [r[name] for r in points], lw=1, label=name.replace("_", " "))
    ax.set(xlabel="step", ylabel="training loss")
    other = ax.twinx()
    other.plot([r["step"] for r in val], [r[fd] for r in val], "ko-", ms=3, label=fd.replace("_", " "))
    other.set_ylabel(fd.replace("_", " ") + " (lower is better)")
    ax.legend(loc="upper left", fontsize=8)
    other.legend(loc="upper right", fontsize=8)
    ax.set_title(f"{c.milestone.title} ({point}, seed {run.get('seed', 0)})", fontsize=10)
    save(fig, figure)


def _mean_near(records: list[dict], key: str, end: int, span: int = 5) -> float:
    """The mean of ``key`` over the first (end 0) or last (end -1) ``span`` records that have it."""
    values = [r[key] for r in records if key in r]
    part = values[:span] if end == 0 else values[-span:]
    return sum(part) / len(part) if part else math.nan


def _two_axes(path: Path, x, left, left_label, right, right_label, title) -> None:
    import matplotlib.pyplot as plt

    from .figures import save

    fig, ax = plt.subplots(figsize=(6.4, 3.4))
    ax.plot(x, left, "o-", ms=3, color="C3", label=left_label)
    ax.set(xlabel="step", ylabel=left_label)
    other = ax.twinx()
    other.plot(x, right, "s-", ms=3, color="C0", label=right_label)
    other.set_ylabel(right_label)
    ax.set_title(title, fontsize=10)
    ax.legend(loc="upper center", fontsize=8)
    other.legend(loc="lower center", fontsize=8)
    save(fig, path)
