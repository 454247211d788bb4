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
        overrides: dict[str, Any] | None = None, **options: Any) -> dict[str, Any]:
    """Run one milestone (or one of its baselines) and return its result dict.

    ``overrides`` maps dotted keys to values, e.g. ``{"model.n": 5, "algorithm.lr": 0.05}``; other
    keyword arguments are :class:`~dlhistory.runner.RunOptions` fields (``device``, ``precision``,
    ``runs_dir``, ``resume``, ``progress`` ...).
    """
    from . import catalogue, runner

    items = tuple(f"{k}={_format(v)}" for k, v in (overrides or {}).items())
    opts = runner.RunOptions(preset=preset, variant=variant, seed=seed, overrides=items, **options)
    return runner.run(catalogue.get(milestone), opts)


def compare(milestone: str, preset: str = "cpu", seeds: int | None = None, **options: Any):
    """Run a milestone and its baselines over ``seeds`` seeds (default: its claim's, usually 3) and judge
    its claim."""
    from . import catalogue
    from . import comparison as _compare

    return _compare.compare(catalogue.get(milestone), preset, seeds, **options)


def _format(value: Any) -> str:
    if isinstance(value, (tuple, list)):
        return ",".join(map(str, value))
    return str(value)
