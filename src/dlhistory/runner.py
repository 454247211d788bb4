"""The runner: the one place for engineering.

It turns a recipe into a run: picks the device and precision, seeds everything, builds the four
components, then drives the algorithm's procedure step by step with a progress bar, evaluation at
intervals, ``metrics.jsonl`` and TensorBoard logs, atomic checkpoints, a NaN/Inf guard, resume and
data-parallel training under ``torchrun``. It counts every step's FLOPs, so a budget can be a number
of FLOPs and every run reports the compute it used. Components never see any of this.

A model component may build several named networks, and an algorithm may run in phases (pre-train,
then fine-tune): every phase but the last is stored under a key of what it depends on and reused by
every run that shares it. The loop, in :func:`train`, is meant to be read.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import sys
import time
from collections.abc import Hashable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch.utils.flop_counter import FlopCounterMode
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
from .records import (
    Logger,
    atomic_write_text,
    code_version,
    find_run,
    git_commit,
    hold,
    identity,
    new_run_dir,
    read_result,
    result_status,
    versions,
    write_json,
)
from .spec import Context, Milestone, Panel, Phase, Procedure, Recipe


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


# --------------------------------------------------------------------------------------------------
# Checkpoints and the NaN guard


def all_finite(procedure: Procedure) -> bool:
    for module in procedure.modules.values():
        if isinstance(module, torch.nn.Module) and not all(
                torch.isfinite(p).all() for p in module.parameters()):
            return False
    return True


def save_checkpoint(path: Path, procedure: Procedure, step: int, progress: dict[str, float]) -> None:
    """Everything needed to continue exactly after ``step``; ``progress`` holds seconds and FLOPs so far."""
    weights = {name: _unwrap(m).state_dict() for name, m in procedure.modules.items()
               if isinstance(m, torch.nn.Module)}
    checkpoint.save(path, {"step": step, "weights": weights, "procedure": procedure.state_dict(),
                           "rng": checkpoint.rng_state(), **progress})


def load_checkpoint(path: Path, procedure: Procedure) -> tuple[int, dict[str, float]]:
    """Restore a checkpoint into ``procedure``; returns (the step it was written after, its progress)."""
    state = checkpoint.load(path)
    for name, weights in state["weights"].items():
        _unwrap(procedure.modules[name]).load_state_dict(weights)
    procedure.load_state_dict(state["procedure"])
    checkpoint.set_rng_state(state["rng"])
    progress = {k: float(state.get(k, 0.0)) for k in ("train_seconds", "train_flops")}
    return int(state["step"]), progress


def _unwrap(module: Any) -> Any:
    return getattr(module, "module", module)  # DDP wraps the network it trains


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
    ended = result_status(run_dir)
    if ended is not None:
        raise UsageError(f"--resume {run_dir}: this run has ended ({ended}); start a new run instead")
    return dataclasses.replace(options, preset=saved["preset"], variant=saved["variant"], seed=saved["seed"],
                               overrides=tuple(saved["overrides"]), precision=saved["precision"]), run_dir


def run_config(milestone: Milestone, recipe: Recipe, variant: str, options: RunOptions, device: str,
               precision: str, world_size: int = 1) -> dict[str, Any]:
    """What ``config.json`` records, with the run's identity: the hash of everything that decides its
    result (recipe configs, seed, precision, device type, processes, code version). A review reuses a
    finished run with the same identity instead of repeating it."""
    config = {"milestone": milestone.key, "variant": variant, "preset": options.preset,
              "seed": options.seed, "overrides": list(options.overrides), "precision": precision,
              "device": device, "world_size": world_size, "code": code_version(milestone.key),
              "components": {k: {"name": c.name, "config": as_dict(c.config)}
                             for k, c in recipe.components().items()}}
    return {**config, "identity": identity(config)}


def _run(milestone: Milestone, recipe: Recipe, variant: str, options: RunOptions, hw: Hardware,
         resume_dir: Path | None, started: float) -> dict[str, Any]:
    torch.set_num_threads(int(os.environ.get("DLHISTORY_THREADS", torch.get_num_threads())))
    seed_everything(options.seed, options.deterministic)

    # The same seed everywhere up to here gives every process the same initial weights; from here
    # on each process draws its own augmentation and dropout.
    ctx = Context(seed=options.seed, rank=hw.rank, world_size=hw.world_size, data_dir=options.data_dir)
    data = recipe.data(ctx)
    if hasattr(data, "to"):
        data = data.to(hw.device)
    built = recipe.model(data)
    networks = {name: prepare_model(net, hw) for name, net in _named(built).items()}
    model = networks if isinstance(built, dict) else networks["model"]
    loss = recipe.loss()
    algorithm = recipe.algorithm(model, loss, data, ctx)
    phases = algorithm if isinstance(algorithm, tuple) else None
    torch.manual_seed(options.seed + 7919 * hw.rank)

    run_dir = resume_dir or _shared_run_dir(options, milestone.key, variant, hw)
    config = run_config(milestone, recipe, variant, options, hw.device.type, "bf16" if hw.bf16 else "fp32",
                        hw.world_size)
    with hold(run_dir) if hw.is_main else contextlib.nullcontext():
        if hw.is_main and resume_dir is None:
            write_json(run_dir / "config.json", config)
            for name, text in getattr(data, "artifacts", dict)().items():  # e.g. the learnt tokenizer
                atomic_write_text(run_dir / name, text)
        earlier: dict[str, dict] = {}
        try:  # a divergence in any phase ends the run as diverged
            if phases is not None:
                for index, phase in enumerate(phases[:-1]):
                    earlier[phase.name] = run_phase(milestone, config, phases, index, model, loss, data, ctx,
                                                    networks, hw, options)
                last = phases[-1]
                procedure = last.build(last.config, model, loss, data, ctx)
            else:
                procedure = algorithm
            stage = train_stage(procedure, hw, run_dir, options, resume=resume_dir is not None)
        except Diverged as e:
            e.run_dir = str(run_dir)
            if hw.is_main:
                write_json(run_dir / "result.json", {**config, "status": "diverged", "error": str(e)})
            raise
        result = {**config, "status": "complete", "run_dir": str(run_dir), "rank": hw.rank, **stage.metrics,
                  **{f"{name}_{k}": v for name, r in earlier.items() for k, v in r["metrics"].items()},
                  "train_seconds": round(stage.seconds, 2),
                  "wall_seconds": round(time.perf_counter() - started, 2),
                  "samples_per_s": round(stage.samples / max(stage.session_seconds, 1e-9), 1),
                  "steps": stage.steps, **_compute(stage, earlier, hw),
                  "parameters": sum(parameter_count(n) for n in networks.values()),
                  "versions": versions(), "commit": git_commit(), "threads": torch.get_num_threads(),
                  **getattr(procedure, "provenance", dict)()}
        if earlier:
            result["phases"] = {name: r["run_dir"] for name, r in earlier.items()}
        if hw.world_size > 1:
            result["ddp_identical_parameters"] = _ranks_agree(procedure)
        if hw.is_main:
            _save_networks(run_dir, procedure.modules)
            write_json(run_dir / "result.json", result)
            _training_figure(run_dir, getattr(procedure, "panels", ()))
    return result


def _named(built: Any) -> dict[str, Any]:
    """A model component's networks by name: one network is called ``model``."""
    return dict(built) if isinstance(built, dict) else {"model": built}


def _compute(stage: Stage, earlier: dict[str, dict], hw: Hardware) -> dict[str, float]:
    """Training FLOPs of this run (over every process, earlier phases included) and the FLOP/s achieved
    (of this run's own training)."""
    flops = stage.flops * hw.world_size
    before = sum(r["train_flops"] for r in earlier.values())
    if not flops + before:  # nothing torch could count (the scikit-learn SVM): no number, not a zero
        return {}
    return {"train_flops": flops + before, "flops_per_s": round(flops / max(stage.seconds, 1e-9))}


def _save_networks(directory: Path, modules: dict[str, Any]) -> None:
    for name, module in modules.items():
        if isinstance(module, torch.nn.Module):
            checkpoint.save_weights(directory / f"{name}.safetensors", _unwrap(module))


def _shared_run_dir(options: RunOptions, milestone: str, variant: str, hw: Hardware) -> Path:
    """Rank 0 creates the run directory and tells the other processes its name."""
    return Path(_broadcast(hw, lambda: str(new_run_dir(options.runs_dir, milestone, variant, options.preset,
                                                         options.seed, options.label))))


def _broadcast(hw: Hardware, make) -> Any:
    """``make()`` on the main process, its value on every process."""
    value = [make() if hw.is_main else None]
    if hw.world_size > 1:
        dist.broadcast_object_list(value, src=0)
    return value[0]


# --------------------------------------------------------------------------------------------------
# Phases: pre-train once, start from it many times


def phase_key(config: dict[str, Any], phases: tuple[Phase, ...], index: int) -> dict[str, Any]:
    """What phase ``index``'s result depends on: the data, model and loss configs, the configs of this
    phase and the ones before it (not of the later ones: a fine-tuning budget does not change the
    pre-training), the seed, precision, device, processes and code version."""
    components = config["components"]
    return {"milestone": config["milestone"], "seed": config["seed"], "precision": config["precision"],
            "device": config["device"], "world_size": config["world_size"], "code": config["code"],
            **{kind: components[kind] for kind in ("data", "model", "loss")},
            "phases": [{"name": p.name, "config": as_dict(p.config)} for p in phases[: index + 1]]}


def run_phase(milestone: Milestone, config: dict, phases: tuple[Phase, ...], index: int, model: Any,
              loss: Any, data: Any, ctx: Context, networks: dict[str, Any], hw: Hardware,
              options: RunOptions) -> dict:
    """Bring ``networks`` to the end of phase ``index``: load the stored result of an identical phase,
    or train it (resuming its own checkpoint, if an earlier attempt was interrupted) and store it."""
    phase = phases[index]
    key = phase_key(config, phases, index)
    directory = Path(options.runs_dir) / milestone.key / "phases" / f"{phase.name}-{identity(key)[:16]}"
    # Concurrent runs that need the same phase (a comparison in several workers) wait for each other.
    with hold(directory, wait=True) if hw.is_main else contextlib.nullcontext():
        stored = _broadcast(hw, lambda: read_result(directory))
        if stored is not None and stored.get("status") == "complete":
            for name, net in networks.items():
                if isinstance(net, torch.nn.Module):
                    _unwrap(net).load_state_dict(checkpoint.module_weights(directory / f"{name}.safetensors",
                                                                           name))
            return stored
        procedure = phase.build(phase.config, model, loss, data, ctx)
        resume = (directory / "config.json").exists()
        if hw.is_main and not resume:
            write_json(directory / "config.json", {**key, "identity": identity(key), "phase": phase.name})
        stage = train_stage(procedure, hw, directory, options, resume=resume)
        result = {"status": "complete", "phase": phase.name, "run_dir": str(directory),
                  "metrics": stage.metrics, "train_flops": stage.flops * hw.world_size,
                  "train_seconds": round(stage.seconds, 2), "steps": stage.steps}
        if hw.is_main:
            _save_networks(directory, {n: m for n, m in networks.items()})
            write_json(directory / "result.json", result)
            _training_figure(directory, getattr(procedure, "panels", ()))
        return result


# --------------------------------------------------------------------------------------------------
# Training one procedure


@dataclass
class Stage:
    """What training one procedure gave: final metrics per split, and what it cost."""

    metrics: dict[str, float]
    seconds: float
    session_seconds: float
    samples: int
    steps: int
    flops: float


def train_stage(procedure: Procedure, hw: Hardware, directory: Path, options: RunOptions,
                resume: bool) -> Stage:
    """Train ``procedure`` in ``directory`` (continuing its checkpoint when ``resume``), then evaluate
    the final weights on every split."""
    start, before = 0, {"train_seconds": 0.0, "train_flops": 0.0}
    ckpt = directory / "checkpoint.safetensors"
    if resume and ckpt.exists():
        step, before = load_checkpoint(ckpt, procedure)
        start = step + 1
        if hw.rank > 0:  # the checkpoint holds the main process's RNG; keep the others distinct
            torch.manual_seed(7919 * hw.rank + start)
    logger = Logger(directory if hw.is_main else None, start - 1 if resume else None)
    try:
        out = train(procedure, hw, logger, directory, start, options, before)
        # The loop ends with a validation pass on the final weights: reuse it rather than repeat it.
        evaluated = {"val": out.last_val} if out.last_val is not None else {}
        metrics = {f"{split}_{k}": v for split in ("train", "val", "test")
                   for k, v in (evaluated.get(split) or _evaluate(procedure, hw, split)).items()}
    finally:
        logger.close()
    session = out.seconds - before["train_seconds"]
    return Stage(metrics, out.seconds, session, out.samples, out.steps, out.flops)


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


class FlopCount:
    """Training FLOPs, counted by ``torch.utils.flop_counter`` (matrix products and convolutions,
    forward and backward: the convention of the papers' compute tables).

    Counting slows a step down, so a procedure with ``cost_key(step)`` has only the first step of each
    key counted, and its count reused for the others.
    """

    def __init__(self, procedure: Procedure, total: float = 0.0):
        self.key = getattr(procedure, "cost_key", None)
        self.known: dict[Hashable, int] = {}
        self.total = total

    @contextlib.contextmanager
    def step(self, step: int) -> Iterator[None]:
        key = self.key(step) if self.key is not None else None
        if key is not None and key in self.known:
            yield
            self.total += self.known[key]
            return
        with FlopCounterMode(display=False) as counter:
            yield
        flops = counter.get_total_flops()
        if key is not None:
            self.known[key] = flops
        self.total += flops


@dataclass
class Trained:
    seconds: float
    samples: int
    steps: int
    flops: float
    last_val: dict | None
    """The validation metrics of the final weights, or None when no step was left to take."""


def train(procedure: Procedure, hw: Hardware, logger: Logger, run_dir: Path, start: int,
          options: RunOptions, before: dict[str, float] | None = None) -> Trained:
    """The training loop: update, log, evaluate, checkpoint, until the budget is spent.

    The budget is ``procedure.total_steps``, or fewer where the procedure also has ``budget_flops``
    (training FLOPs) or ``budget_seconds`` (a user's time limit): the loop stops after the first step
    that reaches it. Evaluations are spread evenly over whichever budget applies.
    """
    before = before or {"train_seconds": 0.0, "train_flops": 0.0}
    total = procedure.total_steps
    budget = Spent(procedure, hw)
    eval_every = max(1, math.ceil(total / max(1, options.evals)))
    log_every = max(1, min(50, total // 100))
    ckpt_path = run_dir / "checkpoint.safetensors"
    sums: dict[str, Any] = {}
    counts: dict[str, int] = {}  # per metric: some appear only after a warm-up (DQN's loss)
    count, samples, logged_at = 0, 0, before["train_seconds"]
    clock = TrainingClock(before["train_seconds"])
    flops = FlopCount(procedure, before["train_flops"])
    next_eval = budget.next_mark(before["train_seconds"], before["train_flops"], options.evals)
    val = None
    # In a log file (not a terminal) redraw rarely, so the log stays readable.
    bar = tqdm(total=total, initial=start, disable=not (options.progress and hw.is_main),
               dynamic_ncols=True, leave=False, unit="step", mininterval=0.1 if sys.stderr.isatty() else 30)
    step = start - 1
    for step in range(start, total):
        with hw.autocast(), flops.step(step):
            metrics = procedure.update(step)
        for k, v in metrics.items():  # sum as tensors: no device sync until we log
            sums[k] = sums.get(k, 0.0) + (v.detach() if isinstance(v, torch.Tensor) else v)
            counts[k] = counts.get(k, 0) + 1
        count += 1
        samples += procedure.samples_per_step
        bar.update(1)
        spent = budget.fraction(clock.seconds, flops.total)
        last = step == total - 1 or budget.over(spent)
        if (step + 1) % log_every == 0 or last:
            means = {k: float(v) / counts[k] for k, v in sums.items()}  # float() syncs the device
            _guard(means, step, ckpt_path)
            now = clock.seconds
            means["samples_per_s"] = count * procedure.samples_per_step / max(now - logged_at, 1e-9)
            logger.log(step, "train", means)
            bar.set_postfix({k: f"{v:.3g}" for k, v in means.items() if k != "lr"}, refresh=False)
            sums, counts, count, logged_at = {}, {}, 0, now
        evaluate = last or (spent >= next_eval if budget.limited else (step + 1) % eval_every == 0)
        if evaluate:
            next_eval = (math.floor(spent * options.evals) + 1) / max(1, options.evals)
            seconds = clock.seconds  # training time so far: benchmarks read time-to-accuracy from it
            with clock.paused():
                val = _evaluate(procedure, hw, "val")
                logger.log(step, "val", {**val, "train_seconds": seconds, "train_flops": flops.total})
        checkpoint_now = (step + 1) % options.checkpoint_every == 0 if options.checkpoint_every else evaluate
        if hw.is_main and (checkpoint_now or last):
            with clock.paused():
                if not all_finite(procedure):
                    _guard({"weights": math.nan}, step, ckpt_path)
                save_checkpoint(ckpt_path, procedure, step,
                                {"train_seconds": clock.seconds, "train_flops": flops.total})
        if last:
            break
    bar.close()
    return Trained(clock.seconds, samples, step + 1, flops.total, val)


class Spent:
    """How much of a FLOP or time budget is spent, as a fraction; the same on every process."""

    def __init__(self, procedure: Procedure, hw: Hardware):
        self.flops = getattr(procedure, "budget_flops", None)
        self.seconds = getattr(procedure, "budget_seconds", None)
        self.hw = hw

    @property
    def limited(self) -> bool:
        return bool(self.flops or self.seconds)

    def fraction(self, seconds: float, flops: float) -> float:
        if not self.limited:
            return 0.0
        spent = self._local(seconds, flops)
        if self.hw.world_size > 1:  # under data parallelism every process stops at the same step
            flag = torch.tensor(spent, device=self.hw.device)
            dist.all_reduce(flag, op=dist.ReduceOp.MAX)
            spent = float(flag.item())
        return spent

    def over(self, fraction: float) -> bool:
        return self.limited and fraction >= 1.0

    def next_mark(self, seconds: float, flops: float, evals: int) -> float:
        """The fraction of the budget at which the next evaluation is due (after a resume too)."""
        if not self.limited:
            return math.inf
        return (math.floor(self._local(seconds, flops) * evals) + 1) / max(1, evals)

    def _local(self, seconds: float, flops: float) -> float:
        return max(flops / self.flops if self.flops else 0.0, seconds / self.seconds if self.seconds else 0.0)


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
    """Data parallelism must keep every process's parameters identical; check each network once at the end."""
    agree = True
    for module in procedure.modules.values():
        if not isinstance(module, torch.nn.Module) or not any(True for _ in module.parameters()):
            continue
        flat = torch.cat([p.detach().float().flatten().cpu() for p in module.parameters()])
        gathered = [torch.zeros_like(flat) for _ in range(dist.get_world_size())]
        dist.all_gather(gathered, flat)
        agree &= all(torch.equal(gathered[0], g) for g in gathered[1:])
    return agree


def _training_figure(run_dir: Path, panels: tuple[Panel, ...]) -> None:
    from .report.figures import training_curves

    training_curves(run_dir / "metrics.jsonl", panels, run_dir / "curves.png")
