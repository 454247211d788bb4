"""The training loop: one procedure trained step by step, with evaluation at intervals, logs,
atomic checkpoints, the NaN/Inf guard and FLOP counting; budgets in steps, FLOPs or (a user's option)
seconds. The runner (:mod:`dlhistory.runner`) builds what it trains and decides where it is written.
"""

from __future__ import annotations

import contextlib
import math
import sys
import time
from collections.abc import Hashable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.distributed as dist
from torch.utils.flop_counter import FlopCounterMode
from tqdm import tqdm

from . import checkpoint
from .errors import UsageError
from .hardware import Hardware
from .records import Logger
from .spec import Panel, Procedure

if TYPE_CHECKING:
    from .runner import RunOptions


class Diverged(UsageError):
    """The loss or the weights became NaN/Inf; the last good checkpoint is kept."""


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
    weights = {name: unwrap(m).state_dict() for name, m in procedure.modules.items()
               if isinstance(m, torch.nn.Module)}
    checkpoint.save(path, {"step": step, "weights": weights, "procedure": procedure.state_dict(),
                           "rng": checkpoint.rng_state(), **progress})


def load_checkpoint(path: Path, procedure: Procedure) -> tuple[int, dict[str, float]]:
    """Restore a checkpoint into ``procedure``; returns (the step it was written after, its progress)."""
    state = checkpoint.load(path)
    try:
        for name, weights in state["weights"].items():
            unwrap(procedure.modules[name]).load_state_dict(weights)
        procedure.load_state_dict(state["procedure"])
    except (KeyError, ValueError, RuntimeError) as e:  # another model's, or another size's, checkpoint
        said = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UsageError(f"{path} does not fit this run's networks ({said[:200]}); it is another "
                         "model's checkpoint: start a new run instead of resuming") from None
    checkpoint.set_rng_state(state["rng"])
    progress = {k: float(state.get(k, 0.0)) for k in ("train_seconds", "train_flops")}
    return int(state["step"]), progress


def unwrap(module: Any) -> Any:
    return getattr(module, "module", module)  # DDP wraps the network it trains


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


def training_figure(run_dir: Path, panels: tuple[Panel, ...]) -> None:
    from .report.figures import training_curves

    training_curves(run_dir / "metrics.jsonl", panels, run_dir / "curves.png")
