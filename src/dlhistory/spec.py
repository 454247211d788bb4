"""The vocabulary of dlhistory: Component, Recipe, Claim, Milestone.

The lecture's first point is that every deep-learning method is four key components:

* **data**      -- what the problem gives you (a dataset with its splits, or an environment);
* **model**     -- what turns inputs into outputs;
* **loss**      -- a *proxy* for what we actually want (a falling loss does not guarantee the goal);
* **algorithm** -- how the parameters are updated to reduce the loss.

A :class:`Recipe` is exactly those four :class:`Component` s. A :class:`Milestone` is a recipe per
preset plus its history: the paper, the baselines it improved on (the same recipe with named components
swapped), which components it ``changes`` and the :class:`Claim` that is measured.

What the builders return is written down as typed protocols in :mod:`dlhistory.protocols`, and
re-exported here: the data object (:class:`Data`), the networks a model component builds
(:data:`Networks`), the training procedure an algorithm component builds (:class:`Procedure`, with its
:class:`Budget`) or the sequence of :class:`Phase` s it runs, and a milestone's own commands
(:class:`Tool`).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

# The protocols (what the builders return) have their own module; they are re-exported here so that the
# whole vocabulary is imported from one place.
from .protocols import (  # noqa: F401 (re-exported)
    AlgorithmBuilder,
    Budget,
    Data,
    ModelBuilder,
    Networks,
    Panel,
    Phase,
    Procedure,
    Tool,
)

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
    seeds: int | None = None
    """The first this many of the comparison's seeds (None: all), e.g. one run a scaling-law size."""

    def __post_init__(self) -> None:
        if self.seeds is not None and self.seeds < 1:
            raise ValueError(f"seeds {self.seeds}: a point needs at least one (None: all of them)")

    @property
    def name(self) -> str:
        return f"{self.variant} {self.label}".strip()


Outcome = Literal["holds", "FAILS", "not judged", "skipped"]


@dataclass(frozen=True)
class Verdict:
    """What a comparison says of its claim, and the sentence that says why.

    *holds* and *FAILS* are judgements; *not judged* means the comparison could not decide (fewer seeds
    than the claim states, the smoke preset, a missing baseline); *skipped* means it could not run
    (data unavailable; the reason says how to get it).
    """

    outcome: Outcome
    reason: str
    table: tuple[tuple[str, ...], tuple[tuple[str, ...], ...]] | None = None
    """The judge's own summary, (headers, rows), where the claim needs more than a sentence."""

    @classmethod
    def judged(cls, holds: bool, reason: str, table=None) -> Verdict:
        return cls("holds" if holds else "FAILS", reason, table)

    @property
    def holds(self) -> bool:
        return self.outcome == "holds"


@dataclass(frozen=True)
class Metric:
    """A column of a claim's table: a result key and how to print its mean and spread over seeds."""

    key: str
    """A key of the runs' results, e.g. ``test_accuracy``."""
    label: str = ""
    """The column's header (default: the key)."""
    digits: int = 4
    """Decimals shown (for a percentage: of the percentage)."""
    percent: bool = False
    """A fraction printed as a percentage."""
    scientific: bool = False
    """Printed as 1.23e+15 (FLOPs)."""

    @property
    def header(self) -> str:
        return self.label or self.key

    def format(self, mean: float, std: float, n: int | None = None, total: int | None = None) -> str:
        """'93.67 ± 0.08%'; '(n=2 of 3)' appended when only n of the total seeds reported it."""
        if math.isnan(mean):
            return "-"
        text = f"{self._number(mean)} ± {self._number(std)}{'%' if self.percent else ''}"
        if n is not None and total is not None and n < total:
            text += f" (n={n} of {total})"
        return text

    def value(self, value: float) -> str:
        """One value, as the column prints it."""
        return self._number(value) + ("%" if self.percent else "")

    def _number(self, value: float) -> str:
        if self.scientific:
            return f"{value:.{self.digits}e}"
        return f"{100 * value if self.percent else value:.{self.digits}f}"


@dataclass(frozen=True)
class Claim:
    """What the paper showed, as a measurable statement.

    ``metric`` of the milestone's main variant must reach ``thresholds[preset]`` (in ``direction``) and,
    by default, beat every baseline. Milestones whose claim is not "A beats B" (ResNet's degradation
    experiment) give their own ``points`` and ``judge``. A comparison judges the claim only when it ran
    the claim's ``seeds`` (or more) at a preset with a threshold or with baselines to beat, and never
    at the smoke preset.
    """

    statement: str
    metric: str
    direction: Literal["max", "min"]
    paper: str
    """The published reference numbers, as text, for the comparison table."""
    report: tuple[Metric, ...] = ()
    """The columns of the claim's table, the claim's metric first (default: the claim's metric only)."""
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
    seeds: int = 3
    """Seeds the claim is stated over: a comparison with fewer is not judged."""

    @property
    def columns(self) -> tuple[Metric, ...]:
        if any(m.key == self.metric for m in self.report):
            return self.report
        return (Metric(self.metric), *self.report)


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
    tools: tuple[Tool, ...] = ()
    """The milestone's own subcommands (``translate``, ``play``, ...), registered by the command line."""
    borrowed: Mapping[str, tuple[str, str]] = field(default_factory=dict)
    """Baselines that are another milestone's variant: name -> (milestone key, its variant). Where
    their recipes are equal, a comparison takes (or makes) that milestone's runs instead of repeating
    them (the Transformer's attention RNN is the 2014 milestone's)."""

    def __post_init__(self) -> None:
        missing = [p for p in PRESETS if p not in self.presets]
        if missing:
            raise ValueError(f"milestone {self.key!r} lacks presets {missing}")
        if not set(self.changes) <= set(KINDS):
            raise ValueError(f"milestone {self.key!r}: changes must be among {KINDS}")
        if self.variant in self.baselines:
            raise ValueError(f"milestone {self.key!r}: variant {self.variant!r} is also a baseline name")
        if not set(self.borrowed) <= set(self.baselines):
            raise ValueError(f"milestone {self.key!r}: only baselines can be borrowed")

    @property
    def variants(self) -> tuple[str, ...]:
        return (self.variant, *self.baselines)

    def recipe(self, preset: str, variant: str | None = None) -> Recipe:
        """The recipe of ``variant`` (default: the milestone itself) at ``preset``."""
        from .errors import UsageError, did_you_mean

        if preset not in self.presets:
            hint = did_you_mean(preset, self.presets)
            raise UsageError(f"unknown preset {preset[:80]!r} for {self.key}{hint}")
        recipe = self.presets[preset]
        if variant is None or variant == self.variant:
            return recipe
        if variant not in self.baselines:
            raise UsageError(
                f"{self.key} has no variant {variant[:80]!r}{did_you_mean(variant, self.variants)}"
            )
        return recipe.swap(**self.baselines[variant](preset))

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
