"""The protocols of dlhistory: what the builders of the four components return.

A data component builds a :class:`Data`; a model component the :data:`Networks`; an algorithm
component a :class:`Procedure` (with its :class:`Budget`) or the sequence of :class:`Phase` s it runs;
a milestone's own commands are :class:`Tool` s. :mod:`dlhistory.spec` re-exports every name here, so
the vocabulary is imported from one place.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, Union, runtime_checkable

if TYPE_CHECKING:
    import torch

    from .spec import Context, Milestone


@runtime_checkable
class Data(Protocol):
    """What a data component builds: datasets with their splits, or an environment.

    Both methods are optional; the runner calls them where they exist.
    """

    def to(self, device: Any) -> Data:
        """Move the tensors to the run's device once (small datasets live there and are indexed)."""

    def artifacts(self) -> dict[str, str]:
        """Text files the run directory keeps, e.g. a learnt tokenizer: {file name: contents}."""


Networks = Union["torch.nn.Module", Mapping[str, "torch.nn.Module"]]
"""What a model component builds: one ``nn.Module`` (the runner calls it ``model``), or a dict of named
modules (a GAN's ``{"generator": G, "discriminator": D}``). The runner prepares each network (device,
memory format, data parallelism), checkpoints each and writes ``<name>.safetensors`` for each; the
algorithm's builder receives them as built (the one module, or the dict)."""


class ModelBuilder(Protocol):
    """A model component's builder: the networks, sized for the data."""

    def __call__(self, config: Any, data: Data) -> Networks: ...


class AlgorithmBuilder(Protocol):
    """An algorithm component's builder: a procedure, or the phases of one (see :class:`Phase`)."""

    def __call__(self, config: Any, networks: Networks, loss: Any, data: Data,
                 ctx: Context) -> Procedure | tuple[Phase, ...]: ...


@dataclass(frozen=True)
class Panel:
    """One panel of a run's curves figure: ``key`` as logged on ``splits`` against ``x``."""

    key: str
    splits: tuple[str, ...] = ("val",)
    """'train' records are running means of the steps in between; 'val' are evaluations."""
    label: str = ""
    """Axis label (default: the key)."""
    percent: bool = False
    x: str = "step"
    """The logged key on the horizontal axis: the step, or e.g. ``env_steps``."""


class Budget(Protocol):
    """How long a procedure trains: a number of steps, counted by the runner, and optionally a number of
    training FLOPs. Never minutes: the same seed must give the same result on any machine."""

    total_steps: int
    """Steps to take (the step budget, derived from epochs, tokens or environment steps)."""
    # Optional: ``budget_flops`` (float or None). The runner counts each step's FLOPs
    # (``torch.utils.flop_counter``) and stops after the first step at which the total reaches it:
    # models that differ in cost per step are then compared at equal training compute.
    # Optional: ``budget_seconds`` (float or None), a wall-clock limit a *user* may set; no claim uses it.


@runtime_checkable
class Procedure(Budget, Protocol):
    """What an algorithm component builds: the training procedure, one step at a time.

    The runner owns the loop (devices, precision, progress, logging, checkpoints) and calls ``update``
    until the budget is spent; the procedure owns what a step *is*: a mini-batch SGD step, a DQN step
    with replay and a target network, or an alternating GAN step.
    """

    samples_per_step: int
    modules: dict[str, Any]
    """Every network whose weights are checkpointed, by name: the model component's networks and the
    procedure's own (a DQN's target network)."""
    # Optional: ``panels`` (tuple[Panel, ...]), the curves its run figure draws besides the loss.
    # Optional: ``cost_key(step) -> Hashable``: steps with equal keys cost the same FLOPs, so the
    # runner counts only the first of each (counting costs time); without it, every step is counted.
    # Optional: ``provenance() -> dict[str, str]``, recorded in the result (e.g. the BLEU signature).
    # Optional: ``snapshot(directory, step)``: a picture after each evaluation (the GAN's samples). Not
    # called yet: that changes every milestone's code version, so it lands with the loop's next change.

    def update(self, step: int) -> dict[str, Any]:
        """Do step ``step``; return metrics (tensors or floats), e.g. ``{"loss": ..., "accuracy": ...}``."""

    def evaluate(self, split: str) -> dict[str, float]:
        """Metrics on ``split`` ('train', 'val' or 'test'), with the networks in evaluation mode."""

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


@dataclass(frozen=True)
class Phase:
    """One stage of an algorithm that runs in stages: pre-train, then fine-tune or probe.

    An algorithm component whose builder returns a tuple of phases runs them in order on the same
    networks. Each phase has its own config (its budget), builds its own procedure (which picks its
    view of the data) and logs under its name. Every phase but the last is *reused*: its result is
    stored under a key made of the recipe's data, model and loss configs, the configs of this phase
    and the ones before it, the seed, the precision and the code version, and every later run with
    the same key starts from it instead of repeating it (pre-train once per seed, fine-tune at three
    label budgets).
    """

    name: str
    config: Any
    """This phase's own config (a frozen dataclass); a field of the algorithm component's config."""
    build: Callable[..., Procedure] = field(repr=False)
    """``build(config, networks, loss, data, ctx) -> Procedure``."""


@dataclass(frozen=True)
class Tool:
    """A milestone's own subcommand (``dlhistory translate``, ``play``, ...): ``arguments(parser)`` adds
    its options to an ``argparse`` parser; ``main(milestone, args)`` does the work and prints. Two
    milestones may share a tool (the Transformer imports the 2014 translate)."""

    name: str
    help: str
    arguments: Callable[[Any], None] = field(repr=False)
    main: Callable[[Milestone, Any], None] = field(repr=False)
    sample: Callable[[Milestone, Path, Path], Path | str] | None = field(default=None, repr=False)
    """``(milestone, run_dir, out_dir) ->`` the review page's picture (a PNG path) or text of a run."""
