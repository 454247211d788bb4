"""Many runs at once: a comparison's points, a sweep's grid, a review's milestones.

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


@dataclasses.dataclass
class Batch:
    """One milestone's runs (with their names in the log) among the several that :func:`execute_all`
    shares the workers between. A run may belong to another milestone (``owners``): a baseline that
    is that milestone's variant, run and reused there."""

    milestone: Milestone
    runs: list[RunOptions]
    names: list[str] | None = None
    owners: list[Milestone] | None = None
    """Whose run each is (None: all ``milestone``'s)."""

    def name(self, i: int) -> str:
        if self.names:
            return self.names[i]
        o = self.runs[i]
        return f"{o.variant or self.owner(i).variant} {' '.join(o.overrides)} seed {o.seed}"

    def owner(self, i: int) -> Milestone:
        return self.owners[i] if self.owners else self.milestone


def execute(milestone: Milestone, runs: list[RunOptions], workers: int = 1,
            log: Callable[[str], None] = print, names: list[str] | None = None, reuse: bool = True
            ) -> Iterator[tuple[int, dict[str, Any]]]:
    """Run every options set; yield ``(index, result)`` as each finishes (reused ones first).

    Every distinct recipe is built from its overrides first, so a bad key or value fails before any
    run starts (and not in a worker, halfway through).
    """
    for _, i, result in execute_all([Batch(milestone, list(runs), names)], workers, log, reuse):
        if isinstance(result, BaseException):
            raise result
        yield i, result


def execute_all(batches: list[Batch], workers: int = 1, log: Callable[[str], None] = print,
                reuse: bool = True) -> Iterator[tuple[int, int, dict[str, Any] | Exception]]:
    """The runs of several milestones in one set of workers: yield ``(batch, index, result)`` as each
    finishes (reused ones first), so that no worker waits for the slowest run of one milestone while
    the next milestone's runs are ready. A run that raises (its data could not be had, a bad override)
    yields its exception as the result, and the batch's runs that have not started are cancelled.
    A run that two batches need (a borrowed baseline and its owner's own point) runs once."""
    todo, twins = [], {}
    for k, batch in enumerate(batches):
        for i in {(batch.owner(i).key, o.variant, o.overrides): i for i, o in enumerate(batch.runs)}.values():
            options = batch.runs[i]
            load_recipe(batch.owner(i), options.preset, options.variant, options.overrides)
        for i, result in _reused(batch, reuse, log):
            if result is not None:
                yield k, i, result
                continue
            same = twins.setdefault(_same_run(batch, i), [])
            if not same:
                todo.append((k, i))
            same.append((k, i))
    finished = _in_turn(batches, todo, log) if workers <= 1 else _in_workers(batches, todo, workers, log)
    for k, i, result in finished:
        for twin in twins[_same_run(batches[k], i)]:
            yield *twin, result


def _same_run(batch: Batch, i: int) -> tuple[str, str]:
    """What makes two batches' runs the same run: its owner and its options but the label."""
    return batch.owner(i).key, repr(dataclasses.replace(batch.runs[i], label=""))


def _reused(batch: Batch, reuse: bool, log: Callable[[str], None]) -> Iterator[tuple[int, dict | None]]:
    """(index, the finished run of this code) for each run of ``batch``, None for those still to run
    (made to resume an interrupted run of the same identity where there is one)."""
    made: dict[tuple[str, str], dict] = {}
    for i, options in enumerate(batch.runs):
        if not reuse:
            yield i, None
            continue
        owner = batch.owner(i)
        variant = options.variant or owner.variant
        if (owner.key, variant) not in made:
            made[owner.key, variant] = runs_by_identity(options.runs_dir, owner.key, variant)
        found, batch.runs[i] = made_before(owner, options, made[owner.key, variant])
        prefix = f"[{batch.milestone.key} {options.preset}] {batch.name(i)}"
        if found is None:
            if batch.runs[i].resume:
                log(f"{prefix}: continuing {batch.runs[i].resume}")
            yield i, None
            continue
        log(f"{prefix}: reused {found['run_dir']}")
        yield i, found


def _in_turn(batches: list[Batch], todo: list[tuple[int, int]], log: Callable[[str], None]
             ) -> Iterator[tuple[int, int, dict[str, Any] | Exception]]:
    """One run after another in this process, each with every core."""
    failed = set()
    for done, (k, i) in enumerate(todo, 1):
        if k in failed:
            continue
        batch = batches[k]
        log(f"[{batch.milestone.key} {batch.runs[i].preset}] {batch.name(i)} ({done}/{len(todo)})")
        try:
            result = run_point(batch.owner(i), batch.runs[i])
        except Exception as e:  # the caller decides: one milestone's failure is not the others'
            failed.add(k)
            result = e
        yield k, i, result


def _in_workers(batches: list[Batch], todo: list[tuple[int, int]], workers: int,
                log: Callable[[str], None]) -> Iterator[tuple[int, int, dict[str, Any] | Exception]]:
    """The runs in ``workers`` fresh processes that split the cores, in the order given."""
    threads = max(1, (os.cpu_count() or 1) // workers)
    context = multiprocessing.get_context("spawn")  # a clean interpreter per worker, torch-safe
    pool = concurrent.futures.ProcessPoolExecutor(workers, mp_context=context, initializer=_limit_threads,
                                                  initargs=(threads,))
    try:
        futures = {pool.submit(_worker, batches[k].owner(i).key,
                               dataclasses.replace(batches[k].runs[i], progress=False)): (k, i)
                   for k, i in todo}
        finished = concurrent.futures.as_completed(futures)
        for done, future in enumerate(finished, 1):
            k, i = futures[future]
            batch = batches[k]
            try:
                result = future.result()
            except concurrent.futures.CancelledError:
                continue
            except Exception as e:  # as in _in_turn
                result = e
                for other, (k2, _) in futures.items():
                    if k2 == k:
                        other.cancel()  # only those not started yet
            log(f"[{batch.milestone.key} {batch.runs[i].preset}] done {batch.name(i)} ({done}/{len(todo)})")
            yield k, i, result
    finally:
        pool.shutdown(wait=True, cancel_futures=True)  # on an error or Ctrl-C, queued runs never start


def _limit_threads(threads: int) -> None:
    current = int(os.environ.get("DLHISTORY_THREADS", threads))
    os.environ["DLHISTORY_THREADS"] = str(min(threads, current))


def _worker(milestone: str, options: RunOptions) -> dict[str, Any]:
    from . import catalogue

    return run_point(catalogue.get(milestone), options)
