"""The runner: the one place for engineering.

It turns a recipe into a run: picks the device and precision, seeds everything, builds the four
components, then drives the algorithm's procedure step by step with a progress bar, evaluation at
intervals, ``metrics.jsonl`` and TensorBoard logs, atomic checkpoints, a NaN/Inf guard, resume and
data-parallel training under ``torchrun``. It counts every step's FLOPs, so a budget can be a number
of FLOPs and every run reports the compute it used. Components never see any of this.

A model component may build several named networks, and an algorithm may run in phases (pre-train,
then fine-tune): every phase but the last is stored under a key of what it depends on and reused by
every run that shares it. The loop itself, in :mod:`dlhistory.loop`, is meant to be read.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from . import checkpoint
from .config import apply_overrides, as_dict, shorten
from .errors import UsageError
from .hardware import (
    Hardware,
    keep_freed_memory,
    parameter_count,
    prepare_model,
    seed_everything,
    setup_hardware,
)
from .loop import Diverged, Stage, train_stage, training_figure, unwrap
from .records import (
    atomic_write_text,
    code_version,
    find_run,
    git_commit,
    hold,
    identity,
    new_run_dir,
    read_result,
    result_status,
    run_config_of,
    versions,
    write_json,
)
from .spec import Context, Milestone, Phase, Procedure, Recipe


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
    saved = run_config_of(run_dir)
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
    with refused(milestone):
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
            with refused(milestone, run_dir, hw):
                if phases is not None:
                    for index, phase in enumerate(phases[:-1]):
                        earlier[phase.name] = run_phase(milestone, config, phases, index, model, loss, data,
                                                        ctx, networks, hw, options)
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
            training_figure(run_dir, getattr(procedure, "panels", ()))
    return result


REFUSED = (ValueError, RuntimeError, TypeError, IndexError)
"""What torch raises for a value it cannot use; an allocation that fails is a RuntimeError too."""


@contextlib.contextmanager
def refused(milestone: Milestone, run_dir: Path | None = None, hw: Hardware | None = None) -> Iterator[None]:
    """A value that passed the config check but that torch refuses (a dropout of 1.5, a label smoothing
    of 2, a width whose weights cannot be allocated) ends in one line, not a traceback. A run directory
    that holds no checkpoint yet is removed with it: nothing is left that looks like a run to resume.

    Once a checkpoint exists the failure is not the config's (the same steps ran before): it keeps its
    traceback, except for memory, which a resumed run can be short of. ``DLHISTORY_DEBUG=1`` always
    shows the traceback (from here a bug in a component looks the same as a bad value)."""
    try:
        yield
    except REFUSED as e:
        started = run_dir is not None and (run_dir / "checkpoint.safetensors").exists()
        memory = isinstance(e, torch.OutOfMemoryError) or "can't allocate memory" in str(e)
        if os.environ.get("DLHISTORY_DEBUG") or (started and not memory):
            raise
        said = shorten(str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__, 200)
        if started:
            raise UsageError(f"{milestone.key} ran out of memory ({said}); the last checkpoint is kept "
                             f"in {run_dir}: close other programs and continue with --resume") from None
        if run_dir is not None and hw is not None and hw.is_main:
            shutil.rmtree(run_dir, ignore_errors=True)
        if memory:
            raise UsageError(f"{milestone.key} does not fit in memory ({said}); lower the model's sizes "
                             "or algorithm.batch_size") from None
        show = f"dlhistory show {milestone.key}"
        raise UsageError(f"{milestone.key}: torch refused a value of this config: {said}; change the "
                         f"override that set it ('{show}' lists the values)") from None


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
            checkpoint.save_weights(directory / f"{name}.safetensors", unwrap(module))


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
                    unwrap(net).load_state_dict(checkpoint.module_weights(directory / f"{name}.safetensors",
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
            training_figure(directory, getattr(procedure, "panels", ()))
        return result


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
