"""The runner: the one place for engineering.

It turns a recipe into a run: picks the device and precision, seeds everything, builds the four
components, then drives the algorithm's procedure step by step with a progress bar, evaluation at
intervals, ``metrics.jsonl`` and TensorBoard logs, atomic checkpoints, a NaN/Inf guard, resume and
data-parallel training under ``torchrun``. Components never see any of this.

The loop, in :func:`train`, is meant to be read.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from tqdm import tqdm

from . import checkpoint
from .config import apply_overrides, as_dict
from .errors import UsageError
from .hardware import (
    Hardware,
    keep_freed_memory,
    parameter_count,
    prepare_model,
    seed_everything,
    setup_hardware,
)
from .records import Logger, find_run, git_commit, new_run_dir, versions, write_json
from .spec import Context, Milestone, Procedure, Recipe


class Diverged(UsageError):
    """The loss or the weights became NaN/Inf; the last good checkpoint is kept."""


@dataclass(frozen=True)
class RunOptions:
    """How to run a recipe; none of this changes what is learned (except ``seed`` and ``precision``)."""

    preset: str = "cpu"
    variant: str | None = None
    seed: int = 0
    overrides: tuple[str, ...] = ()
    device: str = "auto"
    precision: str = "auto"
    """'auto' (bf16 where the hardware has it), 'bf16' or 'fp32'."""
    runs_dir: str = "runs"
    data_dir: str | None = None
    resume: str | None = None
    """A run directory to continue, or 'latest' for the newest run of this milestone and variant."""
    evals: int = 10
    """Evaluations on the validation split during training (each also writes a checkpoint)."""
    checkpoint_every: int | None = None
    """Steps between checkpoints (default: at each evaluation)."""
    deterministic: bool = False
    progress: bool = True
    label: str = ""
    """Extra text in the run directory's name (used by compare to tell points apart)."""
    save_replay: bool = False
    """Checkpoints also hold a replay memory (DQN), so a resume continues exactly (--save-buffer)."""


# --------------------------------------------------------------------------------------------------
# Checkpoints and the NaN guard


def all_finite(procedure: Procedure) -> bool:
    for module in procedure.modules.values():
        if isinstance(module, torch.nn.Module) and not all(
                torch.isfinite(p).all() for p in module.parameters()):
            return False
    return True


def save_checkpoint(path: Path, procedure: Procedure, step: int, train_seconds: float = 0.0) -> None:
    """Everything needed to continue exactly after ``step``."""
    weights = {name: getattr(m, "module", m).state_dict() for name, m in procedure.modules.items()
               if isinstance(m, torch.nn.Module)}
    checkpoint.save(path, {"step": step, "weights": weights, "procedure": procedure.state_dict(),
                           "rng": checkpoint.rng_state(), "train_seconds": train_seconds})


def load_checkpoint(path: Path, procedure: Procedure) -> tuple[int, float]:
    """Restore a checkpoint into ``procedure``; returns (the step it was written after, seconds so far)."""
    state = checkpoint.load(path)
    for name, weights in state["weights"].items():
        getattr(procedure.modules[name], "module", procedure.modules[name]).load_state_dict(weights)
    procedure.load_state_dict(state["procedure"])
    checkpoint.set_rng_state(state["rng"])
    return int(state["step"]), float(state.get("train_seconds", 0.0))


# --------------------------------------------------------------------------------------------------
# The run


def load_recipe(milestone: Milestone, preset: str, variant: str | None, overrides: tuple[str, ...]) -> Recipe:
    """The recipe of ``variant`` at ``preset`` with the dotted ``overrides`` applied."""
    return apply_overrides(milestone.recipe(preset, variant), overrides)


def run(milestone: Milestone, options: RunOptions) -> dict[str, Any]:
    """Run one recipe of ``milestone`` and return its result (also written to ``result.json``)."""
    started = time.perf_counter()
    options, resume_dir = resolve_resume(milestone, options)
    variant = options.variant or milestone.variant
    recipe = load_recipe(milestone, options.preset, variant, options.overrides)
    hw = setup_hardware(options.device, options.precision)
    keep_freed_memory()
    # Values below 1e-38 (denormals) take the x86 slow path: Adam's momentum of a dead ReLU unit decays
    # into them, which made runs up to 1.8x slower. Flushed to zero during the run, results are unchanged.
    flush = hw.device.type == "cpu" and torch.set_flush_denormal(True)
    try:
        return _run(milestone, recipe, variant, options, hw, resume_dir, started)
    finally:
        if flush:
            torch.set_flush_denormal(False)  # the process's default again, for whatever runs next
        if hw.world_size > 1 and dist.is_initialized():
            # Tear the group down explicitly: gloo can abort at interpreter exit otherwise.
            dist.barrier()
            dist.destroy_process_group()


def resolve_resume(milestone: Milestone, options: RunOptions) -> tuple[RunOptions, Path | None]:
    """For ``--resume``, the options the interrupted run was started with, and its directory."""
    if not options.resume:
        return options, None
    run_dir = find_run(options.runs_dir, milestone.key, options.variant or milestone.variant, options.resume)
    saved = json.loads((run_dir / "config.json").read_text())
    if saved["milestone"] != milestone.key:
        raise UsageError(f"--resume {run_dir} is a run of {saved['milestone']!r}, not {milestone.key!r}")
    if options.overrides and list(options.overrides) != saved["overrides"]:
        raise UsageError("--resume continues a run as it was configured; drop the overrides")
    return dataclasses.replace(options, preset=saved["preset"], variant=saved["variant"], seed=saved["seed"],
                               overrides=tuple(saved["overrides"]), precision=saved["precision"],
                               save_replay=options.save_replay or saved.get("save_replay", False)), run_dir


def _run(milestone: Milestone, recipe: Recipe, variant: str, options: RunOptions, hw: Hardware,
         resume_dir: Path | None, started: float) -> dict[str, Any]:
    torch.set_num_threads(int(os.environ.get("DLHISTORY_THREADS", torch.get_num_threads())))
    seed_everything(options.seed, options.deterministic)

    # The same seed everywhere up to here gives every process the same initial weights; from here
    # on each process draws its own augmentation and dropout.
    ctx = Context(seed=options.seed, rank=hw.rank, world_size=hw.world_size, data_dir=options.data_dir,
                  save_replay=options.save_replay)
    data = recipe.data(ctx)
    if hasattr(data, "to"):
        data = data.to(hw.device)
    model = prepare_model(recipe.model(data), hw)
    procedure = recipe.algorithm(model, recipe.loss(), data, ctx)
    torch.manual_seed(options.seed + 7919 * hw.rank)

    run_dir = resume_dir or _shared_run_dir(options, milestone.key, variant, hw)
    config = {"milestone": milestone.key, "variant": variant, "preset": options.preset,
              "seed": options.seed, "overrides": list(options.overrides),
              **({"save_replay": True} if options.save_replay else {}),
              "precision": "bf16" if hw.bf16 else "fp32", "device": str(hw.device),
              "world_size": hw.world_size,
              "components": {k: {"name": c.name, "config": as_dict(c.config)}
                             for k, c in recipe.components().items()}}
    if hw.is_main and resume_dir is None:
        write_json(run_dir / "config.json", config)
        for name, text in getattr(data, "artifacts", dict)().items():  # e.g. the learnt tokenizer
            (run_dir / name).write_text(text)
    start, seconds_before = 0, 0.0
    if resume_dir is not None and (run_dir / "checkpoint.safetensors").exists():
        step, seconds_before = load_checkpoint(run_dir / "checkpoint.safetensors", procedure)
        start = step + 1
        if hw.rank > 0:  # the checkpoint holds the main process's RNG; keep the others distinct
            torch.manual_seed(options.seed + 7919 * hw.rank + start)

    logger = Logger(run_dir if hw.is_main else None, start - 1 if resume_dir is not None else None)
    try:
        train_seconds, samples, steps, last_val = train(procedure, hw, logger, run_dir, start, options,
                                                        seconds_before)
        # The loop ends with a validation pass on the final weights: reuse it rather than repeat it.
        evaluated = {"val": last_val} if last_val is not None else {}
        final = {f"{split}_{k}": v for split in ("train", "val", "test")
                 for k, v in (evaluated.get(split) or _evaluate(procedure, hw, split)).items()}
    except Diverged as e:
        e.run_dir = str(run_dir)
        if hw.is_main:
            write_json(run_dir / "result.json", {**config, "status": "diverged", "error": str(e)})
        raise
    finally:
        logger.close()

    result = {**config, "status": "complete", "run_dir": str(run_dir), "rank": hw.rank, **final,
              "train_seconds": round(train_seconds, 2),
              "wall_seconds": round(time.perf_counter() - started, 2),
              "samples_per_s": round(samples / max(train_seconds - seconds_before, 1e-9), 1),
              "steps": steps, "parameters": parameter_count(model),
              "versions": versions(), "commit": git_commit(), "threads": torch.get_num_threads()}
    if hw.world_size > 1:
        result["ddp_identical_parameters"] = _ranks_agree(procedure)
    if hw.is_main:
        for name, module in procedure.modules.items():
            if isinstance(module, torch.nn.Module):
                checkpoint.save_weights(run_dir / f"{name}.safetensors", getattr(module, "module", module))
        write_json(run_dir / "result.json", result)
        _training_figure(run_dir)
    return result


def _shared_run_dir(options: RunOptions, milestone: str, variant: str, hw: Hardware) -> Path:
    """Rank 0 creates the run directory and tells the other processes its name."""
    path = [None]
    if hw.is_main:
        path = [str(new_run_dir(options.runs_dir, milestone, variant, options.preset, options.seed,
                                options.label))]
    if hw.world_size > 1:
        dist.broadcast_object_list(path, src=0)
    return Path(path[0])


def _evaluate(procedure: Procedure, hw: Hardware, split: str) -> dict[str, float]:
    with hw.autocast():
        return procedure.evaluate(split)


class TrainingClock:
    """Seconds spent training: evaluation and checkpoint writing are paused out."""

    def __init__(self, already: float = 0.0):
        self.start, self.paused_total = time.perf_counter() - already, 0.0

    @property
    def seconds(self) -> float:
        return time.perf_counter() - self.start - self.paused_total

    @contextlib.contextmanager
    def paused(self):
        t = time.perf_counter()
        try:
            yield
        finally:
            self.paused_total += time.perf_counter() - t


def train(procedure: Procedure, hw: Hardware, logger: Logger, run_dir: Path, start: int,
          options: RunOptions, seconds_before: float = 0.0) -> tuple[float, int, int, dict | None]:
    """The training loop: update, log, evaluate, checkpoint. Returns (training seconds, samples, steps,
    the validation metrics of the final weights, or None when no step was left to take).

    A procedure with a ``budget_seconds`` stops at the first step that ends past that much training
    time (its evaluations and checkpoints are paused out of the clock), however many steps remain.
    """
    total = procedure.total_steps
    budget = getattr(procedure, "budget_seconds", None)
    eval_every = max(1, math.ceil(total / max(1, options.evals)))
    # Under a time budget the evaluations are spread over its seconds instead of the steps.
    eval_seconds = budget / max(1, options.evals) if budget else math.inf
    next_eval = (math.floor(seconds_before / eval_seconds) + 1) * eval_seconds
    log_every = max(1, min(50, total // 100))
    ckpt_path = run_dir / "checkpoint.safetensors"
    sums: dict[str, Any] = {}
    counts: dict[str, int] = {}  # per metric: some appear only after a warm-up (DQN's loss)
    count, samples, logged_at = 0, 0, seconds_before
    clock = TrainingClock(seconds_before)
    val = None
    # In a log file (not a terminal) redraw rarely, so the log stays readable.
    bar = tqdm(total=total, initial=start, disable=not (options.progress and hw.is_main),
               dynamic_ncols=True, leave=False, unit="step", mininterval=0.1 if sys.stderr.isatty() else 30)
    for step in range(start, total):
        with hw.autocast():
            metrics = procedure.update(step)
        for k, v in metrics.items():  # sum as tensors: no device sync until we log
            sums[k] = sums.get(k, 0.0) + (v.detach() if isinstance(v, torch.Tensor) else v)
            counts[k] = counts.get(k, 0) + 1
        count += 1
        samples += procedure.samples_per_step
        bar.update(1)
        last = step == total - 1 or _out_of_time(clock.seconds, budget, hw)
        if (step + 1) % log_every == 0 or last:
            means = {k: float(v) / counts[k] for k, v in sums.items()}  # float() syncs the device
            _guard(means, step, ckpt_path)
            now = clock.seconds
            means["samples_per_s"] = count * procedure.samples_per_step / max(now - logged_at, 1e-9)
            logger.log(step, "train", means)
            bar.set_postfix({k: f"{v:.3g}" for k, v in means.items() if k != "lr"}, refresh=False)
            sums, counts, count, logged_at = {}, {}, 0, now
        seconds = clock.seconds  # training time so far: benchmarks read time-to-accuracy from it
        evaluate = last or (seconds >= next_eval if budget else (step + 1) % eval_every == 0)
        if evaluate:
            next_eval = (math.floor(seconds / eval_seconds) + 1) * eval_seconds
            with clock.paused():
                val = _evaluate(procedure, hw, "val")
                logger.log(step, "val", {**val, "train_seconds": seconds})
        checkpoint_now = (step + 1) % options.checkpoint_every == 0 if options.checkpoint_every else evaluate
        if hw.is_main and (checkpoint_now or last):
            with clock.paused():
                if not all_finite(procedure):
                    _guard({"weights": math.nan}, step, ckpt_path)
                save_checkpoint(ckpt_path, procedure, step, clock.seconds)
        if last:
            break
    bar.close()
    return clock.seconds, samples, step + 1 if total > start else start, val


def _out_of_time(seconds: float, budget: float | None, hw: Hardware) -> bool:
    """Whether the training budget is spent; under data parallelism all processes stop together."""
    if budget is None:
        return False
    spent = seconds >= budget
    if hw.world_size > 1:
        flag = torch.tensor(float(spent), device=hw.device)
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        spent = bool(flag.item())
    return spent


def _guard(metrics: dict[str, float], step: int, ckpt_path: Path) -> None:
    """Stop at the first NaN/Inf, before it can reach a checkpoint."""
    bad = [k for k, v in metrics.items() if isinstance(v, float) and not math.isfinite(v)]
    if not bad:
        return
    kept = (f"the last good checkpoint is kept at {ckpt_path}" if ckpt_path.exists()
            else "no checkpoint had been written yet")
    raise Diverged(f"{', '.join(bad)} became NaN/Inf by step {step}; stopped, {kept}; "
                   "lower algorithm.lr (or, under bf16, try --precision fp32)")


def _ranks_agree(procedure: Procedure) -> bool:
    """Data parallelism must keep every process's parameters identical; check it once at the end."""
    module = procedure.modules["model"]
    flat = torch.cat([p.detach().float().flatten().cpu() for p in module.parameters()])
    gathered = [torch.zeros_like(flat) for _ in range(dist.get_world_size())]
    dist.all_gather(gathered, flat)
    return all(torch.equal(gathered[0], g) for g in gathered[1:])


def _training_figure(run_dir: Path) -> None:
    from .report.figures import training_curves

    training_curves(run_dir / "metrics.jsonl", run_dir / "curves.png")
