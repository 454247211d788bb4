"""Tests of dotted overrides: values parsed by the field's annotation, one-line errors naming the key."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from dlhistory.config import apply_overrides, as_dict, keys, parse_value
from dlhistory.errors import UsageError
from dlhistory.milestones import alexnet, resnet

RESNET = resnet.MILESTONE.recipe("smoke")
ALEXNET = alexnet.MILESTONE.recipe("smoke")
SVM = alexnet.MILESTONE.recipe("smoke", "svm")


# ------------------------------------------------------------------------------------------------
# Parsing by annotation


@pytest.mark.parametrize(("raw", "expected"), [("5", 5), ("12", 12), ("1_000", 1000), ("1e2", 100)])
def test_int_field(raw, expected):
    n = apply_overrides(RESNET, [f"model.n={raw}"]).model.config.n
    assert n == expected and type(n) is int


@pytest.mark.parametrize(("raw", "expected"), [("0.2", 0.2), ("1e-3", 1e-3), ("3", 3.0), ("0", 0.0)])
def test_float_field(raw, expected):
    lr = apply_overrides(RESNET, [f"algorithm.lr={raw}"]).algorithm.config.lr
    assert lr == expected and type(lr) is float


@pytest.mark.parametrize(("raw", "expected"), [("true", True), ("True", True), ("yes", True), ("1", True),
                                                ("false", False), ("FALSE", False), ("no", False),
                                                ("0", False)])
def test_bool_field(raw, expected):
    assert apply_overrides(RESNET, [f"algorithm.nesterov={raw}"]).algorithm.config.nesterov is expected


@pytest.mark.parametrize(("recipe", "key", "value"), [(RESNET, "algorithm.schedule", "cosine"),
                                                      (RESNET, "data.augment", "flip+crop"),
                                                      (SVM, "model.features", "hog")])
def test_literal_field(recipe, key, value):
    recipe = apply_overrides(recipe, [f"{key}={value}"])
    kind, name = key.split(".")
    assert getattr(getattr(recipe, kind).config, name) == value


def test_optional_int_field_accepts_none_and_a_number():
    assert apply_overrides(RESNET, ["data.train_size=none"]).data.config.train_size is None
    assert apply_overrides(RESNET, ["data.train_size=None"]).data.config.train_size is None
    assert apply_overrides(RESNET, ["data.train_size=100"]).data.config.train_size == 100


def test_optional_float_field_accepts_none_and_a_number():
    assert apply_overrides(SVM, ["model.gamma=0.5"]).model.config.gamma == 0.5
    assert apply_overrides(SVM, ["model.gamma=null"]).model.config.gamma is None


def test_optional_field_rejects_a_wrong_type_naming_the_key():
    with pytest.raises(UsageError, match=r"data\.train_size='many': expected an integer"):
        apply_overrides(RESNET, ["data.train_size=many"])


def test_tuple_field():
    widths = apply_overrides(RESNET, ["model.widths=8,16,32"]).model.config.widths
    assert widths == (8, 16, 32) and all(type(w) is int for w in widths)


def test_str_field_and_unsupported_types():
    assert parse_value("abc", str, "k") == "abc"
    with pytest.raises(UsageError, match="cannot be set from the command line"):
        parse_value("1", dict, "k")


def test_overrides_make_a_new_recipe_and_leave_the_old_one_unchanged():
    before = as_dict(RESNET.model.config)
    new = apply_overrides(RESNET, ["model.n=5", "algorithm.lr=0.01"])
    assert new is not RESNET
    assert (new.model.config.n, new.algorithm.config.lr) == (5, 0.01)
    assert as_dict(RESNET.model.config) == before
    assert RESNET.algorithm.config.lr == 0.1
    with pytest.raises(dataclasses.FrozenInstanceError):
        new.model.config.n = 7


def test_overrides_change_only_the_named_components():
    new = apply_overrides(RESNET, ["model.n=5"])
    assert new.differs_from(RESNET) == ("model",)
    assert new.model.name == RESNET.model.name and new.model.build is RESNET.model.build


def test_overrides_apply_in_order():
    assert apply_overrides(RESNET, ["model.n=2", "model.n=4"]).model.config.n == 4


def test_no_overrides_is_the_same_recipe():
    assert apply_overrides(RESNET, []) == RESNET


def test_keys_lists_every_field_of_every_kind():
    found = keys(RESNET)
    expected = {"model.n", "model.widths", "algorithm.lr", "data.train_size", "loss.label_smoothing"}
    assert expected <= set(found)
    assert all(k.split(".")[0] in ("data", "model", "loss", "algorithm") for k in found)


# ------------------------------------------------------------------------------------------------
# Errors: one line, naming the key, and where possible the closest valid keys


def usage_error(recipe, override: str) -> str:
    with pytest.raises(UsageError) as info:
        apply_overrides(recipe, [override])
    message = str(info.value)
    assert "\n" not in message, message
    return message


def test_unknown_component_suggests_model():
    message = usage_error(RESNET, "modle.n=3")
    assert "'modle'" in message and "did you mean: model?" in message


def test_unknown_field_names_it_and_suggests_valid_keys():
    message = usage_error(RESNET, "model.depht=5")
    assert "model.depht" in message and "did you mean" in message
    assert "model.n" in message or "model.widths" in message


@pytest.mark.parametrize(("override", "expected"), [
    ("model.n=abc", "model.n='abc': expected an integer"),
    ("model.n=2.5", "model.n='2.5': expected an integer"),
    ("algorithm.lr=fast", "algorithm.lr='fast': expected a number"),
    ("algorithm.nesterov=maybe", "algorithm.nesterov='maybe': expected a boolean"),
    ("model.widths=8,x,32", "model.widths='x': expected an integer"),
])
def test_wrong_type_names_the_key(override, expected):
    assert expected in usage_error(RESNET, override)


def test_bad_literal_lists_the_valid_options():
    message = usage_error(RESNET, "algorithm.schedule=linear")
    assert "algorithm.schedule='linear'" in message
    assert all(option in message for option in ("constant", "onecycle", "cosine", "step"))


@pytest.mark.parametrize("override", ["model.n", "=3", ""])
def test_missing_equals_or_key(override):
    assert "key=value" in usage_error(RESNET, override)


def test_missing_equals_names_the_override():
    assert "'model.n'" in usage_error(RESNET, "model.n")


def test_a_kind_without_a_field_lists_valid_keys():
    message = usage_error(RESNET, "model=3")
    assert "names no field" in message and "model.n" in message


def test_a_value_is_not_a_group():
    assert "model.n is a value" in usage_error(RESNET, "model.n.x=3")


def test_errors_leave_nothing_half_applied():
    with pytest.raises(UsageError):
        apply_overrides(RESNET, ["model.n=5", "model.n=abc"])
    assert RESNET.model.config.n == 3


# ------------------------------------------------------------------------------------------------
# Properties: values round-trip exactly through their text


@pytest.mark.parametrize("item", ["model.n=0", "model.n=-3", "algorithm.lr=-0.5", "algorithm.epochs=0",
                                  "model.widths=16,32", "data.val_size=60000",
                                  # sizes beyond the data are refused, not silently cut
                                  "data.train_size=0", "data.train_size=10000000", "data.test_size=10001"])
def test_out_of_range_values_are_usage_errors(item):
    key = item.partition("=")[0]
    with pytest.raises(UsageError, match=key.replace(".", r"\.")) as e:
        apply_overrides(RESNET, [item])
    assert "\n" not in str(e.value)


@given(st.floats(min_value=0, allow_nan=False, allow_infinity=False))
def test_float_round_trips_exactly(x):
    lr = apply_overrides(RESNET, [f"algorithm.lr={x!r}"]).algorithm.config.lr
    assert repr(lr) == repr(x)  # repr, so -0.0 and the last bit both count


@given(st.integers(min_value=1))
def test_int_round_trips_exactly(n):
    assert apply_overrides(RESNET, [f"model.n={n}"]).model.config.n == n


@given(st.lists(st.integers(min_value=1, max_value=10**6), min_size=3, max_size=3))
def test_int_tuple_round_trips(widths):
    text = ",".join(map(str, widths))
    assert apply_overrides(RESNET, [f"model.widths={text}"]).model.config.widths == tuple(widths)


@given(st.text(alphabet=st.characters(categories=["L", "N"]), min_size=1).filter(
    lambda s: s.lower() not in {"true", "yes", "1", "on", "false", "no", "0", "off"}))
def test_anything_else_is_not_a_bool(raw):
    with pytest.raises(UsageError, match=r"algorithm\.nesterov"):
        apply_overrides(RESNET, [f"algorithm.nesterov={raw}"])


# ------------------------------------------------------------------------------------------------
# A config is checked once, with all its overrides


def test_overrides_that_are_only_valid_together_work_in_either_order():
    from dlhistory.milestones import seq2seq

    recipe = seq2seq.MILESTONE.recipe("smoke")
    for order in (["data.source=en", "data.target=de"], ["data.target=de", "data.source=en"]):
        config = apply_overrides(recipe, order).data.config
        assert (config.source, config.target) == ("en", "de")


def test_an_invalid_combination_names_the_overrides():
    from dlhistory.milestones import seq2seq

    with pytest.raises(UsageError, match=r"data\.source=en data\.target=en: "):
        apply_overrides(seq2seq.MILESTONE.recipe("smoke"), ["data.source=en", "data.target=en"])


def test_the_last_override_of_a_key_wins():
    assert apply_overrides(RESNET, ["model.n=2", "model.n=4"]).model.config.n == 4


@pytest.mark.parametrize("raw", ["nan", "inf", "-inf", "NaN", "1e999"])
def test_a_number_must_be_finite(raw):
    with pytest.raises(UsageError, match="expected a finite number"):
        apply_overrides(RESNET, [f"algorithm.lr={raw}"])


def test_a_long_value_is_named_not_echoed():
    with pytest.raises(UsageError) as info:
        apply_overrides(RESNET, ["algorithm.lr=" + "x" * 100_000])
    assert len(str(info.value)) < 300 and "(100000 chars)" in str(info.value)


@pytest.mark.parametrize("item", ["data.train_size=29001", "data.val_size=0", "data.test_size=1001"])
def test_translation_sizes_beyond_multi30k_are_usage_errors(item):
    from dlhistory.milestones import seq2seq

    with pytest.raises(UsageError, match=r"Multi30k's|positive sizes") as e:
        apply_overrides(seq2seq.MILESTONE.recipe("cpu"), [item])
    assert "\n" not in str(e.value)
