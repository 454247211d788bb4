"""Many runs at once: a comparison's points and a sweep's grid.

With one worker the runs go one after another in this process, each with every core and a progress
bar. With more, they run in fresh worker processes that split the cores between them (small models use
two cores poorly, so two one-thread runs finish sooner than two two-thread runs in turn). A run that
diverges is a result, not a crash: at a too-large learning rate that is the finding.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import multiprocessing
import os
from collections.abc import Callable, Iterator
from typing import Any

from .runner import Diverged, RunOptions, load_recipe, run
from .spec import Milestone


def run_point(milestone: Milestone, options: RunOptions) -> dict[str, Any]:
    """``runner.run``, except that a diverged run returns ``{"status": "diverged", ...}``."""
    try:
        return run(milestone, options)
    except Diverged as e:
        return {"status": "diverged", "error": str(e), "variant": options.variant or milestone.variant,
                "seed": options.seed, "run_dir": getattr(e, "run_dir", None)}


def execute(milestone: Milestone, runs: list[RunOptions], workers: int = 1,
            log: Callable[[str], None] = print, names: list[str] | None = None, isolated: bool = False
            ) -> Iterator[tuple[int, dict[str, Any]]]:
    """Run every options set; yield ``(index, result)`` as each finishes.

    Every distinct recipe is built from its overrides first, so a bad key or value fails before any
    run starts (and not in a worker, halfway through). ``isolated`` runs each one, in turn, in a fresh
    process of its own: runs compared at equal wall-clock time must all start from the same state.
    """
    for options in {(o.variant, o.overrides): o for o in runs}.values():
        load_recipe(milestone, options.preset, options.variant, options.overrides)
    names = names or [f"{o.variant or milestone.variant} {' '.join(o.overrides)} seed {o.seed}" for o in runs]
    if workers <= 1:
        for i, options in enumerate(runs):
            log(f"[{milestone.key} {options.preset}] {names[i]} ({i + 1}/{len(runs)})")
            yield i, _in_fresh_process(milestone, options) if isolated else run_point(milestone, options)
        return
    threads = max(1, (os.cpu_count() or 1) // workers)
    context = multiprocessing.get_context("spawn")  # a clean interpreter per worker, torch-safe
    pool = concurrent.futures.ProcessPoolExecutor(workers, mp_context=context, initializer=_limit_threads,
                                                  initargs=(threads,))
    try:
        futures = {pool.submit(_worker, milestone.key, dataclasses.replace(o, progress=False)): i
                   for i, o in enumerate(runs)}
        for done, future in enumerate(concurrent.futures.as_completed(futures), 1):
            i = futures[future]
            result = future.result()
            log(f"[{milestone.key} {runs[i].preset}] done {names[i]} ({done}/{len(runs)})")
            yield i, result
    finally:
        pool.shutdown(wait=True, cancel_futures=True)  # on an error or Ctrl-C, queued runs never start


def _in_fresh_process(milestone: Milestone, options: RunOptions) -> dict[str, Any]:
    """One run in a new interpreter with every core. Measured: in a process that had already trained
    six or more translation models, a step took about 25% longer than in a fresh one, which a time
    budget turns into fewer steps, and an order effect between the variants."""
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=context) as pool:
        return pool.submit(_worker, milestone.key, options).result()


def _limit_threads(threads: int) -> None:
    current = int(os.environ.get("DLHISTORY_THREADS", threads))
    os.environ["DLHISTORY_THREADS"] = str(min(threads, current))


def _worker(milestone: str, options: RunOptions) -> dict[str, Any]:
    from . import catalogue

    return run_point(catalogue.get(milestone), options)
