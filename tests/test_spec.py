"""Tests of the vocabulary (Component, Recipe, Milestone) and of the catalogue, the timeline.

The lineage test is the project's principle 3 ("inherit what did not change"): every component a
milestone does not list in ``changes`` is identical to its baselines', and every kind it lists does
differ from at least one baseline; across the timeline, a component equal to an earlier milestone's
is that milestone's very object, imported by name, never a re-declared copy.
"""

from __future__ import annotations

import dataclasses
import importlib
from dataclasses import dataclass

import pytest

from dlhistory import catalogue
from dlhistory.errors import UsageError
from dlhistory.milestones import alexnet, resnet
from dlhistory.spec import KINDS, PRESETS, Component, Milestone, Point, Recipe


@dataclass(frozen=True)
class FrozenConfig:
    size: int = 1


@dataclass
class MutableConfig:
    size: int = 1


def build(config, *args):
    return ("built", config, args)


def other_build(config, *args):
    return ("other", config, args)


def make_recipe() -> Recipe:
    return Recipe(*(Component(kind, build, FrozenConfig()) for kind in KINDS))


# ------------------------------------------------------------------------------------------------
# Component


@pytest.mark.parametrize("config", [MutableConfig(), {"size": 1}, 3, None], ids=repr)
def test_component_rejects_a_config_that_is_not_a_frozen_dataclass(config):
    with pytest.raises(TypeError, match="frozen dataclass"):
        Component("bad", build, config)


def test_component_rejects_a_frozen_dataclass_class_instead_of_an_instance():
    with pytest.raises(TypeError, match="frozen dataclass"):
        Component("bad", build, FrozenConfig)


def test_component_builds_lazily_with_its_config():
    component = Component("c", build, FrozenConfig(size=4))
    assert component("x", 1) == ("built", FrozenConfig(size=4), ("x", 1))


def test_component_with_config_returns_a_new_component():
    component = Component("c", build, FrozenConfig(size=1))
    changed = component.with_config(FrozenConfig(size=2))
    assert changed.config == FrozenConfig(size=2)
    assert changed.name == "c" and changed.build is build
    assert component.config == FrozenConfig(size=1)


def test_components_are_equal_by_name_builder_and_config():
    a = Component("c", build, FrozenConfig(size=1))
    assert a == Component("c", build, FrozenConfig(size=1))
    assert a != Component("d", build, FrozenConfig(size=1))
    assert a != Component("c", other_build, FrozenConfig(size=1))
    assert a != Component("c", build, FrozenConfig(size=2))


# ------------------------------------------------------------------------------------------------
# Recipe


def test_recipe_components_are_in_the_lectures_order():
    assert tuple(make_recipe().components()) == KINDS == ("data", "model", "loss", "algorithm")


def test_recipe_swap_replaces_only_the_named_components():
    recipe = make_recipe()
    new_model = Component("model2", build, FrozenConfig())
    swapped = recipe.swap(model=new_model)
    assert swapped.model is new_model
    assert (swapped.data, swapped.loss, swapped.algorithm) == (recipe.data, recipe.loss, recipe.algorithm)
    assert recipe.model.name == "model"  # the original is untouched


def test_recipe_swap_rejects_an_unknown_kind():
    with pytest.raises(KeyError, match="optimizer"):
        make_recipe().swap(optimizer=Component("sgd", build, FrozenConfig()))


def test_recipe_is_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        make_recipe().model = Component("m", build, FrozenConfig())  # type: ignore[misc]


def test_differs_from_names_the_changed_kinds_in_order():
    recipe = make_recipe()
    assert recipe.differs_from(make_recipe()) == ()
    other = recipe.swap(algorithm=recipe.algorithm.with_config(FrozenConfig(size=9)),
                        data=Component("data2", build, FrozenConfig()))
    assert other.differs_from(recipe) == ("data", "algorithm")
    assert recipe.differs_from(other) == ("data", "algorithm")


def test_differs_from_sees_a_changed_builder():
    recipe = make_recipe()
    other = recipe.swap(loss=Component("loss", other_build, FrozenConfig()))
    assert other.differs_from(recipe) == ("loss",)


# ------------------------------------------------------------------------------------------------
# Milestone


def make_milestone(**changes) -> Milestone:
    recipe = make_recipe()
    fields = dict(key="toy", year=2000, title="Toy", citation="A. Author. Toy. 2000.", url="https://x.org",
                  showed="nothing", variant="main",
                  presets={p: recipe for p in PRESETS},
                  baselines={"base": lambda preset: {"model": Component("m0", build, FrozenConfig())}},
                  changes=("model",), claim=alexnet.MILESTONE.claim)
    return Milestone(**{**fields, **changes})


def test_milestone_requires_all_presets():
    with pytest.raises(ValueError, match="presets"):
        make_milestone(presets={"smoke": make_recipe()})


def test_milestone_changes_must_be_kinds():
    with pytest.raises(ValueError, match="changes"):
        make_milestone(changes=("optimizer",))


def test_milestone_variant_must_not_be_a_baseline_name():
    with pytest.raises(ValueError, match="also a baseline"):
        make_milestone(variant="base")


def test_milestone_recipe_of_a_baseline_swaps_its_components():
    m = make_milestone()
    assert m.recipe("smoke") is m.recipe("smoke", "main") is m.recipe("smoke", None)
    assert m.recipe("smoke", "base").differs_from(m.recipe("smoke")) == ("model",)
    assert m.variants == ("main", "base")


@pytest.mark.parametrize("preset", ["smok", "huge", ""])
def test_milestone_recipe_rejects_an_unknown_preset(preset):
    with pytest.raises(UsageError, match=f"unknown preset {preset!r}") as info:
        resnet.MILESTONE.recipe(preset)
    assert "smoke" in str(info.value)


def test_milestone_recipe_suggests_the_closest_preset():
    with pytest.raises(UsageError, match=r"did you mean: smoke\?"):
        resnet.MILESTONE.recipe("smok")


def test_milestone_recipe_suggests_the_closest_variant():
    with pytest.raises(UsageError, match=r"no variant 'plian'.*did you mean: plain\?"):
        resnet.MILESTONE.recipe("smoke", "plian")


def test_default_points_are_the_milestone_and_every_baseline():
    assert alexnet.MILESTONE.points("smoke") == [Point("cnn"), Point("svm"), Point("hog-svm")]


def test_resnet_points_are_plain_and_residual_at_every_depth():
    points = resnet.MILESTONE.points("smoke")
    assert [p.name for p in points] == ["plain n=1", "plain n=2", "residual n=1", "residual n=2"]
    assert points[0].overrides == ("model.n=1",)


# ------------------------------------------------------------------------------------------------
# The lineage test: what a milestone does not list in `changes` is inherited unchanged.

LINEAGE = [(m, baseline, preset) for m in catalogue.CATALOGUE for baseline in m.baselines
           for preset in m.presets]  # the required presets and any extra (dqn's cpu-breakout)


@pytest.mark.parametrize(("milestone", "baseline", "preset"), LINEAGE,
                         ids=[f"{m.key}-{b}-{p}" for m, b, p in LINEAGE])
def test_unchanged_components_are_identical_to_the_baselines(milestone, baseline, preset):
    ours, theirs = milestone.recipe(preset), milestone.recipe(preset, baseline)
    for kind in KINDS:
        if kind not in milestone.changes:
            assert getattr(ours, kind) == getattr(theirs, kind), (
                f"{milestone.key} @ {preset}: {kind} is not in changes {milestone.changes} "
                f"but differs from baseline {baseline!r}")


def declared_components() -> list[tuple[int, str, str, Component]]:
    """(position in the timeline, module, name, component) of every module-level component of the
    milestones, and of every component their presets use."""
    found = []
    for position, m in enumerate(catalogue.CATALOGUE):
        module = importlib.import_module(f"dlhistory.milestones.{m.key}")
        found += [(position, m.key, name, value) for name, value in vars(module).items()
                  if isinstance(value, Component)]
    return found


def test_a_component_equal_to_an_earlier_milestones_is_imported_from_it():
    """Across the timeline, not only against a milestone's own baselines: equal means the same object."""
    declared = declared_components()
    copies = [f"{later_key}.{later_name} re-declares {key}.{name}"
              for position, key, name, component in declared
              for later, later_key, later_name, later_component in declared
              if later > position and later_key != key and later_component == component
              and later_component is not component]
    assert not copies, "; ".join(sorted(set(copies)))


def test_the_timeline_inherits_by_name():
    from dlhistory.milestones import adam, seq2seq, transformer

    assert resnet.DATA is adam.DATA and resnet.LOSS is alexnet.LOSS
    assert transformer.DATA is seq2seq.DATA


CHANGES = [(m, preset) for m in catalogue.CATALOGUE for preset in m.presets]


@pytest.mark.parametrize(("milestone", "preset"), CHANGES, ids=[f"{m.key}-{p}" for m, p in CHANGES])
def test_every_listed_change_differs_from_some_baseline(milestone, preset):
    assert milestone.baselines, f"{milestone.key} has no baseline to compare with"
    ours = milestone.recipe(preset)
    differing = {kind for b in milestone.baselines for kind in milestone.recipe(preset, b).differs_from(ours)}
    overclaimed = set(milestone.changes) - differing
    assert not overclaimed, f"{milestone.key} @ {preset} lists {sorted(overclaimed)} as changed, but no " \
                            "baseline differs there"


# ------------------------------------------------------------------------------------------------
# The catalogue


def test_catalogue_is_chronological():
    years = [m.year for m in catalogue.CATALOGUE]
    assert years == sorted(years)


def test_catalogue_keys_are_unique_and_indexed():
    keys = [m.key for m in catalogue.CATALOGUE]
    assert len(keys) == len(set(keys))
    assert list(catalogue.BY_KEY) == keys
    assert all(catalogue.get(m.key) is m for m in catalogue.CATALOGUE)


def test_catalogue_holds_the_implemented_milestones_in_order():
    keys = [m.key for m in catalogue.CATALOGUE]
    assert keys == ["alexnet", "dqn", "seq2seq", "adam", "gan", "resnet", "transformer", "bert", "gpt",
                    "simclr"]


def test_index_rejects_a_duplicate_key():
    twin = dataclasses.replace(catalogue.CATALOGUE[-1], title="A twin")
    with pytest.raises(ValueError, match=f"duplicate milestone key {twin.key!r}"):
        catalogue._index((*catalogue.CATALOGUE, twin))


def test_index_rejects_an_unordered_timeline():
    with pytest.raises(ValueError, match="chronological"):
        catalogue._index(tuple(reversed(catalogue.CATALOGUE)))


def test_get_suggests_the_closest_milestone_on_one_line():
    with pytest.raises(UsageError) as info:
        catalogue.get("resnt")
    message = str(info.value)
    assert "'resnt'" in message and "resnet" in message
    assert "\n" not in message


def test_get_of_an_unrelated_name_still_lists_milestones():
    with pytest.raises(UsageError, match="alexnet"):
        catalogue.get("zzzzzz")


# ------------------------------------------------------------------------------------------------
# Every milestone is complete

MILESTONES = pytest.mark.parametrize("milestone", catalogue.CATALOGUE, ids=lambda m: m.key)


@MILESTONES
def test_milestone_has_every_preset(milestone):
    assert set(PRESETS) <= set(milestone.presets)
    assert all(isinstance(r, Recipe) for r in milestone.presets.values())


@MILESTONES
def test_milestone_has_history(milestone):
    assert milestone.key and milestone.key == milestone.key.lower()
    assert milestone.title and milestone.showed
    assert len(milestone.citation) > 20  # authors, title, venue
    assert milestone.url.startswith("https://")
    assert 1940 < milestone.year < 2100


@MILESTONES
def test_claim_metric_is_a_result_key(milestone):
    claim = milestone.claim
    split, _, name = claim.metric.partition("_")
    assert split in ("train", "val", "test"), claim.metric
    assert name.endswith(("accuracy", "loss", "loss_per_char", "bleu", "return", "fid")), claim.metric
    # Accuracy, BLEU and return are maximised, loss and FID (a distance) minimised: a wrong direction
    # would judge backwards.
    assert claim.direction == ("min" if "loss" in name or name == "fid" else "max")
    assert claim.statement and claim.paper


@MILESTONES
def test_claim_thresholds_are_for_known_presets(milestone):
    assert set(milestone.claim.thresholds) <= set(milestone.presets)


@MILESTONES
def test_every_variant_has_a_recipe_at_every_preset(milestone):
    for preset in milestone.presets:
        for variant in milestone.variants:
            recipe = milestone.recipe(preset, variant)
            assert all(isinstance(c, Component) for c in recipe.components().values())


@MILESTONES
def test_every_point_names_a_variant(milestone):
    for preset in milestone.presets:
        points = milestone.points(preset)
        assert points
        assert {p.variant for p in points} <= set(milestone.variants)
        assert len({p.name for p in points}) == len(points)


@pytest.mark.parametrize("milestone", catalogue.CATALOGUE, ids=lambda m: m.key)
def test_full_preset_models_build_and_run_forward(milestone):
    """The paper-scale presets cannot be trained here, but their networks must build and run."""
    import torch

    class Shapes:  # what a model builder reads from the data component
        shape, num_classes, vocab_size = (1, 28, 28), 10, 100
        frame_shape, stack, n_actions = (84, 84), 4, 4  # an Atari environment
        block_size = 16  # a language model's context
        config = type("Config", (), {"max_length": 12})  # sentences for BERT

    for variant in milestone.variants:
        model = milestone.recipe("full", variant).model(Shapes())
        if milestone.recipe("full", variant).data.name == "multi30k":  # translation: ids in, logits out
            with torch.no_grad():
                source, target_in = torch.randint(4, 100, (2, 7)), torch.randint(4, 100, (2, 5))
                assert model.eval()(source, target_in).shape == (2, 5, 100)
        elif milestone.recipe("full", variant).data.name == "tinyshakespeare":  # ids in, next-token logits
            if isinstance(model, torch.nn.Module):
                with torch.no_grad():
                    assert model.eval()(torch.randint(100, (2, 16))).shape == (2, 16, 100)
        elif isinstance(model, dict) and "mlm_head" in model:  # BERT: ids in, MLM and class logits out
            with torch.no_grad():
                hidden = model["encoder"].eval()(torch.randint(100, (2, 12)))
                assert model["mlm_head"](hidden).shape == (2, 12, 100)
                assert model["classifier"].eval()(hidden).shape == (2, 10)
        elif isinstance(model, dict) and "generator" in model:  # GAN, VAE: noise in, images out
            with torch.no_grad():
                generator = model["generator"].eval()
                make = getattr(generator, "generate", generator)
                images = make(torch.randn(2, generator.latent))
                assert images.shape == (2, 1, 28, 28)
                if "discriminator" in model:
                    assert model["discriminator"].eval()(images).shape == (2,)
        elif isinstance(model, dict) and "projection" in model:  # SimCLR: images in, features, projections
            with torch.no_grad():
                h = model["encoder"].eval()(torch.zeros(2, 1, 28, 28))
                assert model["projection"](h).shape[0] == model["head"](h).shape[0] == 2
        elif milestone.recipe("full", variant).data.name == "atari":  # stacked frames in, Q-values out
            with torch.no_grad():
                assert model.eval()(torch.zeros(2, 4, 84, 84, dtype=torch.uint8)).shape == (2, 4)
        elif isinstance(model, torch.nn.Module):
            with torch.no_grad():
                assert model.eval()(torch.zeros(2, 1, 28, 28)).shape == (2, 10)


def test_a_point_with_fewer_seeds_runs_only_the_first_of_them(monkeypatch):
    """A scaling law's sizes run one seed each while the claim's own points run all of them."""
    from dlhistory import comparison

    milestone = catalogue.get("resnet")
    two_points = dataclasses.replace(milestone, claim=dataclasses.replace(
        milestone.claim, points=lambda m, preset: [Point("residual"), Point("plain", "one", seeds=1)]))
    asked = []

    def execute_all(batches, workers, log, reuse):
        (batch,) = batches
        asked.extend((o.variant, o.seed) for o in batch.runs)
        return [(0, i, {"test_accuracy": 0.5}) for i in range(len(batch.runs))]

    monkeypatch.setattr(comparison, "execute_all", execute_all)
    monkeypatch.setattr(comparison, "save", lambda c, out: {})
    c = comparison.compare(two_points, "smoke", 3, first_seed=5, log=lambda _: None)
    assert asked == [("residual", 5), ("residual", 6), ("residual", 7), ("plain", 5)]
    assert [len(runs) for runs in c.results.values()] == [3, 1]


def test_a_point_needs_at_least_one_seed():
    with pytest.raises(ValueError, match="seeds"):
        Point("residual", seeds=0)
