"""Many runs at once: a comparison's points and a sweep's grid.

With one worker the runs go one after another in this process, each with every core and a progress
bar. With more, they run in fresh worker processes that split the cores between them (small models use
two cores poorly, so two one-thread runs finish sooner than two two-thread runs in turn). A run that
diverges is a result, not a crash: at a too-large learning rate that is the finding. A run that has
already been made (same identity: recipe configs, seed, precision, code version) is reused, not
repeated, and one that was interrupted is continued from its checkpoint, unless ``reuse`` is off.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import multiprocessing
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from .hardware import resolve
from .records import find_finished, find_unfinished, runs_by_identity
from .runner import Diverged, RunOptions, load_recipe, run, run_config
from .spec import Milestone


def run_point(milestone: Milestone, options: RunOptions) -> dict[str, Any]:
    """``runner.run``, except that a diverged run returns ``{"status": "diverged", ...}``."""
    try:
        return run(milestone, options)
    except Diverged as e:
        return {"status": "diverged", "error": str(e), "variant": options.variant or milestone.variant,
                "seed": options.seed, "run_dir": getattr(e, "run_dir", None)}


def made_before(milestone: Milestone, options: RunOptions,
                made: dict[str, list[Path]]) -> tuple[dict | None, RunOptions]:
    """(the result of a run that already ran ``options`` to its end with this code, or None; the options
    to run otherwise: resuming an interrupted run of the same identity where there is one). ``made``
    is the variant's runs by identity (:func:`~dlhistory.records.runs_by_identity`)."""
    variant = options.variant or milestone.variant
    recipe = load_recipe(milestone, options.preset, variant, options.overrides)
    device, bf16 = resolve(options.device, options.precision)
    config = run_config(milestone, recipe, variant, options, device.type, "bf16" if bf16 else "fp32")
    candidates = made.get(config["identity"], [])
    found = find_finished(candidates)
    interrupted = None if found else find_unfinished(candidates)
    return found, dataclasses.replace(options, resume=str(interrupted)) if interrupted else options


def execute(milestone: Milestone, runs: list[RunOptions], workers: int = 1,
            log: Callable[[str], None] = print, names: list[str] | None = None, reuse: bool = True
            ) -> Iterator[tuple[int, dict[str, Any]]]:
    """Run every options set; yield ``(index, result)`` as each finishes (reused ones first).

    Every distinct recipe is built from its overrides first, so a bad key or value fails before any
    run starts (and not in a worker, halfway through).
    """
    for options in {(o.variant, o.overrides): o for o in runs}.values():
        load_recipe(milestone, options.preset, options.variant, options.overrides)
    names = names or [f"{o.variant or milestone.variant} {' '.join(o.overrides)} seed {o.seed}" for o in runs]
    todo = []
    runs = list(runs)
    made = {v: runs_by_identity(o.runs_dir, milestone.key, v)
            for v, o in {o.variant or milestone.variant: o for o in runs}.items()} if reuse else {}
    for i, options in enumerate(runs):
        if not reuse:
            todo.append(i)
            continue
        found, runs[i] = made_before(milestone, options, made[options.variant or milestone.variant])
        if found is None:
            todo.append(i)
            if runs[i].resume:
                log(f"[{milestone.key} {options.preset}] {names[i]}: continuing {runs[i].resume}")
            continue
        log(f"[{milestone.key} {options.preset}] {names[i]}: reused {found['run_dir']}")
        yield i, found
    if workers <= 1:
        for done, i in enumerate(todo, 1):
            log(f"[{milestone.key} {runs[i].preset}] {names[i]} ({done}/{len(todo)})")
            yield i, run_point(milestone, runs[i])
        return
    threads = max(1, (os.cpu_count() or 1) // workers)
    context = multiprocessing.get_context("spawn")  # a clean interpreter per worker, torch-safe
    pool = concurrent.futures.ProcessPoolExecutor(workers, mp_context=context, initializer=_limit_threads,
                                                  initargs=(threads,))
    try:
        futures = {pool.submit(_worker, milestone.key, dataclasses.replace(runs[i], progress=False)): i
                   for i in todo}
        for done, future in enumerate(concurrent.futures.as_completed(futures), 1):
            i = futures[future]
            result = future.result()
            log(f"[{milestone.key} {runs[i].preset}] done {names[i]} ({done}/{len(todo)})")
            yield i, result
    finally:
        pool.shutdown(wait=True, cancel_futures=True)  # on an error or Ctrl-C, queued runs never start


def _limit_threads(threads: int) -> None:
    current = int(os.environ.get("DLHISTORY_THREADS", threads))
    os.environ["DLHISTORY_THREADS"] = str(min(threads, current))


def _worker(milestone: str, options: RunOptions) -> dict[str, Any]:
    from . import catalogue

    return run_point(catalogue.get(milestone), options)
