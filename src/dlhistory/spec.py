"""The vocabulary of dlhistory: Component, Recipe, Claim, Milestone.

The lecture's first point is that every deep-learning method is four key components:

* **data**      -- what the problem gives you (a dataset with its splits, or an environment);
* **model**     -- what turns inputs into outputs;
* **loss**      -- a *proxy* for what we actually want (a falling loss does not guarantee the goal);
* **algorithm** -- how the parameters are updated to reduce the loss.

A :class:`Recipe` is exactly those four :class:`Component` s. A :class:`Milestone` is a recipe per
preset plus its history: the paper, the baselines it improved on (the same recipe with named components
swapped), which components it ``changes`` and the :class:`Claim` that is measured.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

KINDS = ("data", "model", "loss", "algorithm")
PRESETS = ("smoke", "cpu", "full")


@dataclass(frozen=True)
class Component:
    """A named builder plus its typed, frozen configuration.

    Two components are identical when they have the same name, builder and config; that is what the
    lineage test compares between a milestone and its baseline.
    """

    name: str
    build: Callable[..., Any] = field(repr=False)
    config: Any

    def __post_init__(self) -> None:
        config = self.config
        if isinstance(config, type) or not (dataclasses.is_dataclass(config)
                                            and config.__dataclass_params__.frozen):
            raise TypeError(f"component {self.name!r}: config must be a frozen dataclass instance")

    def with_config(self, config: Any) -> Component:
        return dataclasses.replace(self, config=config)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Build the component: ``build(config, *args)``. Nothing is built before a run asks for it."""
        return self.build(self.config, *args, **kwargs)


@dataclass(frozen=True)
class Recipe:
    """The four key components of one method, in the lecture's order."""

    data: Component
    model: Component
    loss: Component
    algorithm: Component

    def components(self) -> dict[str, Component]:
        return {kind: getattr(self, kind) for kind in KINDS}

    @property
    def environment(self) -> str | None:
        """The environment the data component is (dqn: 'cartpole', 'breakout'); None for a dataset."""
        return getattr(self.data.config, "env", None)

    def swap(self, **components: Component) -> Recipe:
        """The same recipe with the named components replaced (how a baseline is defined)."""
        unknown = set(components) - set(KINDS)
        if unknown:
            raise KeyError(f"not a component kind: {sorted(unknown)}; kinds are {KINDS}")
        return dataclasses.replace(self, **components)

    def differs_from(self, other: Recipe) -> tuple[str, ...]:
        """The kinds whose component (name, builder or config) differ from ``other``'s."""
        return tuple(kind for kind in KINDS if getattr(self, kind) != getattr(other, kind))


@dataclass(frozen=True)
class Point:
    """One cell of a milestone's comparison: a variant, optionally with overrides (e.g. a depth)."""

    variant: str
    label: str = ""
    overrides: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return f"{self.variant} {self.label}".strip()


@dataclass(frozen=True)
class Verdict:
    """Whether a claim holds at a preset, and the sentence that says why."""

    holds: bool
    reason: str
    table: tuple[tuple[str, ...], tuple[tuple[str, ...], ...]] | None = None
    """The judge's own summary, (headers, rows), where the claim needs more than a sentence."""


@dataclass(frozen=True)
class Claim:
    """What the paper showed, as a measurable statement.

    ``metric`` of the milestone's main variant must reach ``thresholds[preset]`` (in ``direction``) and,
    by default, beat every baseline. Milestones whose claim is not "A beats B" (ResNet's degradation
    experiment) give their own ``points`` and ``judge``.
    """

    statement: str
    metric: str
    direction: Literal["max", "min"]
    paper: str
    """The published reference numbers, as text, for the comparison table."""
    thresholds: Mapping[str, float] = field(default_factory=dict)
    """Per preset, the value ``metric`` must reach (none: only the comparison counts)."""
    points: Callable[[Milestone, str], list[Point]] | None = None
    """Which runs the comparison needs at a preset; default: the main variant and every baseline."""
    judge: Callable[[Milestone, str, Mapping[str, list[dict]]], Verdict] | None = None
    """Decides the verdict from ``{point name: [result per seed]}``; default: threshold and baselines."""
    figures: Callable[[Any, Path], list[Path]] | None = None
    """Draws the experiment's figures from a Comparison into a folder; default: one bar or curve chart."""
    parallel: bool = False
    """The experiment is many small runs (a grid): compare runs them in one process per core."""
    isolated: bool = False
    """Each run in turn in a fresh process: runs compared at equal wall-clock time (a training budget
    in minutes) must each start from the same state, whatever ran before them."""
    seeds: int = 3
    """Seeds a comparison runs by default (a claim stated over 4 of 5 seeds needs 5)."""


@dataclass(frozen=True)
class Milestone:
    """A recipe plus history: the paper, its baselines, what changed and the claim."""

    key: str
    year: int
    title: str
    citation: str
    url: str
    showed: str
    """What the paper showed, in one sentence (the lecture's words)."""
    variant: str
    """Name of the milestone's own variant, e.g. ``cnn`` or ``residual``."""
    presets: Mapping[str, Recipe]
    baselines: Mapping[str, Callable[[str], Mapping[str, Component]]]
    """Baseline name -> (preset -> the components it swaps)."""
    changes: tuple[str, ...]
    claim: Claim

    def __post_init__(self) -> None:
        missing = [p for p in PRESETS if p not in self.presets]
        if missing:
            raise ValueError(f"milestone {self.key!r} lacks presets {missing}")
        if not set(self.changes) <= set(KINDS):
            raise ValueError(f"milestone {self.key!r}: changes must be among {KINDS}")
        if self.variant in self.baselines:
            raise ValueError(f"milestone {self.key!r}: variant {self.variant!r} is also a baseline name")

    @property
    def variants(self) -> tuple[str, ...]:
        return (self.variant, *self.baselines)

    def recipe(self, preset: str, variant: str | None = None) -> Recipe:
        """The recipe of ``variant`` (default: the milestone itself) at ``preset``."""
        from .errors import UsageError, did_you_mean

        if preset not in self.presets:
            raise UsageError(f"unknown preset {preset!r}{did_you_mean(preset, self.presets)}")
        recipe = self.presets[preset]
        if variant is None or variant == self.variant:
            return recipe
        if variant not in self.baselines:
            raise UsageError(
                f"{self.key} has no variant {variant!r}{did_you_mean(variant, self.variants)}"
            )
        return recipe.swap(**self.baselines[variant](preset))

    def preset_for(self, preset: str, env: str | None) -> str:
        """The preset that runs ``preset`` on environment ``env``: ``preset`` itself when its data is that
        environment, else ``preset-env`` (dqn: cpu is CartPole, cpu-breakout is Breakout)."""
        from .errors import UsageError

        if env is None:
            return preset
        for key in (preset, f"{preset}-{env}"):
            if key in self.presets and self.presets[key].environment == env:
                return key
        envs = sorted({r.environment for r in self.presets.values() if r.environment})
        if not envs:
            raise UsageError(f"{self.key} has no environments to choose; drop --env")
        raise UsageError(f"{self.key} has no {preset!r} preset for --env {env} (environments: "
                         f"{', '.join(envs)}; presets: {', '.join(self.presets)})")

    def points(self, preset: str) -> list[Point]:
        self.recipe(preset)  # an unknown preset fails here, with suggestions
        if self.claim.points is not None:
            return self.claim.points(self, preset)
        return [Point(v) for v in self.variants]


@dataclass(frozen=True)
class Context:
    """What the runner tells the builders about this run. Research code reads only seeds and shards."""

    seed: int = 0
    rank: int = 0
    world_size: int = 1
    data_dir: str | None = None
    save_replay: bool = False
    """Checkpoints also hold a reinforcement learner's replay memory, so a resume is exact (--save-buffer)."""


class Procedure(Protocol):
    """What an algorithm component builds: the training procedure, one step at a time.

    The runner owns the loop (devices, precision, progress, logging, checkpoints) and calls ``update``
    ``total_steps`` times; the procedure owns what a step *is*: a mini-batch SGD step, a DQN step with
    replay and a target network, or an alternating GAN step.
    """

    total_steps: int
    samples_per_step: int
    modules: dict[str, Any]
    """The networks, by name, whose weights are checkpointed."""
    # Optional: ``budget_seconds`` (float or None), a wall-clock training budget; the runner then stops
    # at the first step past it, before ``total_steps`` (the translation milestones compare at equal time).

    def update(self, step: int) -> dict[str, Any]:
        """Do step ``step``; return metrics (tensors or floats), e.g. ``{"loss": ..., "accuracy": ...}``."""

    def evaluate(self, split: str) -> dict[str, float]:
        """Metrics on ``split`` ('train', 'val' or 'test'), with the model in evaluation mode."""

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...
