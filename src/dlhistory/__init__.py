"""dlhistory: deep learning's history, runnable.

Every milestone is a recipe of four components -- data, model, loss, algorithm -- that runs with one
command, is compared with the baseline it improved on, and has its claim measured.

>>> import dlhistory
>>> result = dlhistory.run("resnet", preset="smoke", overrides={"model.n": 2})  # doctest: +SKIP
>>> result["test_accuracy"]  # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"


def run(milestone: str, preset: str = "cpu", variant: str | None = None, seed: int = 0,
        overrides: dict[str, Any] | list[str] | None = None, **options: Any) -> dict[str, Any]:
    """Run one milestone (or one of its baselines) and return its result dict.

    ``overrides`` maps dotted keys to values, e.g. ``{"model.n": 5, "algorithm.lr": 0.05}``; other
    keyword arguments are :class:`~dlhistory.runner.RunOptions` fields (``device``, ``precision``,
    ``runs_dir``, ``resume``, ``progress`` ...).
    """
    from . import catalogue, runner

    if isinstance(overrides, dict):
        items = tuple(f"{k}={_format(v)}" for k, v in overrides.items())
    else:  # already "key=value" words, as the command line gives them
        items = tuple(overrides or ())
    opts = runner.RunOptions(preset=preset, variant=variant, seed=seed, overrides=items, **options)
    return runner.run(catalogue.get(milestone), opts)


def compare(milestone: str, preset: str = "cpu", seeds: int | None = None, **options: Any):
    """Run a milestone and its baselines over ``seeds`` seeds (default: its claim's, usually 3), judge its
    claim, and write summary.md, summary.json and the figures (``comparison.paths``).

    ``overrides`` (a tuple of ``"key=value"``) change every run; ``reuse=False`` runs again what this
    code already ran; other keyword arguments are :func:`~dlhistory.comparison.compare`'s and
    :class:`~dlhistory.runner.RunOptions`'.
    """
    from . import catalogue
    from . import comparison as _comparison

    return _comparison.compare(catalogue.get(milestone), preset, seeds, **options)


def sweep(milestone: str, items: list[str], preset: str = "cpu", seeds: int = 1, **options: Any):
    """Run a grid of overrides (``["algorithm.lr=1e-4:1e-1:7", "model.n=1,3"]``) over seeds, resumably,
    and write results.csv and sweep.png (``sweep.paths``); ``sweep.rows`` holds the table."""
    from . import catalogue, grid

    return grid.sweep(catalogue.get(milestone), list(items), preset, seeds, **options)


def review(preset: str = "cpu", seeds: int | None = None, only: list[str] | None = None, **options: Any):
    """Compare every milestone of the timeline (or ``only`` these) and write the review's summaries
    (``review.paths``). Finished runs of this code are reused, so an interrupted review continues."""
    from . import catalogue
    from . import comparison as _comparison

    milestones = tuple(catalogue.get(k) for k in only) if only else catalogue.CATALOGUE
    return _comparison.review(milestones, preset, seeds, **options)


def _format(value: Any) -> str:
    if isinstance(value, (tuple, list)):
        return ",".join(map(str, value))
    return str(value)
