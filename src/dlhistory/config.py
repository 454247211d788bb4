"""Dotted overrides on typed, frozen dataclass configs.

``model.depth=56 algorithm.lr=0.1 data.train_size=10000`` replaces fields of a recipe's component
configs. Values are parsed by the field's annotation; an unknown key or a value of the wrong type raises
:class:`~dlhistory.errors.UsageError` with one line naming it and the closest valid keys. No ``eval``.
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing
from collections.abc import Iterable
from typing import Any

from .errors import UsageError, did_you_mean
from .spec import KINDS, Recipe

_TRUE = {"true", "yes", "1", "on"}
_FALSE = {"false", "no", "0", "off"}


def apply_overrides(recipe: Recipe, overrides: Iterable[str]) -> Recipe:
    """Return ``recipe`` with every ``kind.field[.sub]=value`` override applied.

    Each key and value is checked on its own first (the key exists, the value parses as the field's
    type); then each changed config is rebuilt once with all its new values, so its checks see them
    together (``data.source=en data.target=de`` swaps the languages in either order). A later override
    of the same key wins.
    """
    changes: dict[str, dict] = {}
    items = list(overrides)
    for item in items:
        key, sep, raw = item.partition("=")
        said = shorten(item)
        if not sep or not key:
            raise UsageError(f"override {said!r} is not of the form key=value (e.g. algorithm.lr=0.1)")
        kind, _, path = key.partition(".")
        if kind not in KINDS:
            raise UsageError(f"unknown component {shorten(kind)!r} in {said!r}{did_you_mean(kind, KINDS)}")
        if not path:
            fields = [k for k in keys(recipe) if k.startswith(f"{kind}.")]
            listed = ", ".join(fields[:6]) + (", ..." if len(fields) > 6 else "")
            raise UsageError(f"override {said!r} names no field, e.g. {listed} ('dlhistory show' lists all)")
        parsed = _parse(getattr(recipe, kind).config, path.split("."), raw, prefix=kind, valid=keys(recipe))
        _nest(changes.setdefault(kind, {}), path.split("."), parsed)
    for kind, fields in changes.items():
        component = getattr(recipe, kind)
        mentioned = " ".join(shorten(i, 60) for i in items if i.startswith(f"{kind}."))
        try:  # a config's __post_init__ rejects values of the right type but out of range
            config = _replace(component.config, fields)
        except ValueError as e:
            raise UsageError(f"{mentioned}: {e}") from None
        recipe = recipe.swap(**{kind: component.with_config(config)})
    return recipe


def shorten(text: str, limit: int = 80) -> str:
    """``text``, cut to ``limit`` characters: a long value is named, not echoed whole."""
    return text if len(text) <= limit else f"{text[: limit - 15]}... ({len(text)} chars)"


def _nest(tree: dict, path: list[str], value: Any) -> None:
    for name in path[:-1]:
        tree = tree.setdefault(name, {})
    tree[path[-1]] = value


def _replace(config: Any, fields: dict[str, Any]) -> Any:
    """``config`` with ``fields`` (nested dicts for nested configs) replaced, each level rebuilt once."""
    values = {name: _replace(getattr(config, name), v) if isinstance(v, dict) else v
              for name, v in fields.items()}
    return dataclasses.replace(config, **values)


def keys(recipe: Recipe) -> list[str]:
    """Every overridable dotted key of a recipe, e.g. ``model.depth``."""
    return [f"{kind}.{k}" for kind in KINDS for k in _field_keys(getattr(recipe, kind).config)]


def as_dict(config: Any) -> dict[str, Any]:
    """A JSON-friendly dict of a (nested) config dataclass."""
    return dataclasses.asdict(config)


def flat_items(config: Any) -> list[tuple[str, Any]]:
    """(dotted key, value) of every leaf field of a (nested) config, e.g. ``("cnn.width", 16)``."""
    out = []
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if dataclasses.is_dataclass(value):
            out += [(f"{f.name}.{k}", v) for k, v in flat_items(value)]
        else:
            out.append((f.name, value))
    return out


def _field_keys(config: Any) -> list[str]:
    out = []
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if dataclasses.is_dataclass(value):
            out += [f"{f.name}.{k}" for k in _field_keys(value)]
        else:
            out.append(f.name)
    return out


def _parse(config: Any, path: list[str], raw: str, prefix: str, valid: list[str]) -> Any:
    """The value of ``raw`` for the field at ``path`` in ``config``, checked against the field's type."""
    name, rest = path[0], path[1:]
    fields = {f.name: f for f in dataclasses.fields(config)}
    full = f"{prefix}.{name}"
    if name not in fields:
        raise UsageError(f"unknown key {shorten('.'.join([prefix, *path]))!r}{did_you_mean(full, valid)}")
    current = getattr(config, name)
    if rest:
        if not dataclasses.is_dataclass(current):
            raise UsageError(f"{full} is a value, not a group; use {full}=VALUE")
        return _parse(current, rest, raw, full, valid)
    if dataclasses.is_dataclass(current):
        raise UsageError(f"{full} is a group; set one of its fields, e.g. {_field_keys(current)[0]}")
    return parse_value(raw, typing.get_type_hints(type(config))[name], full)


def parse_value(raw: str, hint: Any, key: str) -> Any:
    """Parse ``raw`` as a value of type ``hint`` (int, float, bool, str, Literal, Optional, tuple)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if raw.lower() in ("none", "null") and type(None) in args:
            return None
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return parse_value(raw, arg, key)
            except UsageError as e:
                errors.append(str(e))
        raise UsageError(errors[0] if errors else f"{key}: cannot parse {shorten(raw)!r}")
    if origin is typing.Literal:
        for option in args:
            if str(option) == raw:
                return option
        raise UsageError(f"{key}={shorten(raw)!r} is not one of {', '.join(map(str, args))}")
    if origin is tuple:
        items = [s for s in raw.split(",") if s] if raw else []
        if not items:
            raise UsageError(f"{key}={shorten(raw)!r}: expected a comma-separated list, e.g. {key}=16,32,64")
        inner = args[0] if args else str
        return tuple(parse_value(s, inner, key) for s in items)
    if hint is bool:
        if raw.lower() in _TRUE | _FALSE:
            return raw.lower() in _TRUE
        raise UsageError(f"{key}={shorten(raw)!r}: expected a boolean (true/false)")
    if hint is int:
        try:
            return int(raw.replace("_", ""))
        except ValueError:
            try:
                as_float = float(raw)  # accept 1e4 where it is a whole number
            except ValueError:
                as_float = None
            if as_float is not None and as_float.is_integer():
                return int(as_float)
            raise UsageError(f"{key}={shorten(raw)!r}: expected an integer") from None
    if hint is float:
        try:
            value = float(raw)
        except ValueError:
            raise UsageError(f"{key}={shorten(raw)!r}: expected a number") from None
        if not math.isfinite(value):
            raise UsageError(f"{key}={raw}: expected a finite number")
        return value
    if hint is str:
        return raw
    raise UsageError(f"{key}: fields of type {hint} cannot be set from the command line")
