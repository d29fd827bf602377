"""Models by name, so the training code builds whatever the config names.

An architecture registers its ``nn.Module`` class with an options dataclass;
``build_model`` checks the options (unknown keys and wrong types name the key)
and constructs the model with the input width, the target and the input
normalisation. Later architectures plug in by registering, without touching
the training code.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Callable
from typing import Any

import numpy as np
from torch import nn

_MODELS: dict[str, tuple[type, type]] = {}


def register_model(name: str, options: type) -> Callable[[type], type]:
    """Class decorator: ``@register_model("pointnet", PointNetOptions)``."""

    def wrap(cls: type) -> type:
        if name in _MODELS and _MODELS[name][0] is not cls:
            raise ValueError(f"model name '{name}' is already registered by {_MODELS[name][0].__name__}")
        _MODELS[name] = (cls, options)
        return cls

    return wrap


def model_names() -> list[str]:
    _load_builtin()
    return sorted(_MODELS)


def _load_builtin() -> None:
    import raypf.models.pointnet  # noqa: F401  (registers itself)


def parse_options(options_cls: type, values: dict[str, Any] | None, where: str = "model.options") -> Any:
    """Build an options dataclass from a mapping; unknown keys and wrong types raise ValueError naming the key."""
    values = dict(values or {})
    known = {f.name: f for f in dataclasses.fields(options_cls)}
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ValueError(f"{where}: unknown key(s) {unknown}; known: {sorted(known)}")
    hints = typing.get_type_hints(options_cls)
    out = {}
    for key, value in values.items():
        out[key] = _coerce(value, hints[key], f"{where}.{key}")
    return options_cls(**out)


def _coerce(value: Any, hint: Any, where: str) -> Any:
    origin = typing.get_origin(hint)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ValueError(f"{where}: expected a list, got {value!r}")
        (item,) = {a for a in typing.get_args(hint) if a is not Ellipsis}
        return tuple(_coerce(v, item, f"{where}.{i}") for i, v in enumerate(value))
    if hint is bool:
        if not isinstance(value, bool):
            raise ValueError(f"{where}: expected true or false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise ValueError(f"{where}: expected an integer, got {value!r}")
        return int(value)
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float, np.number)):
            raise ValueError(f"{where}: expected a number, got {value!r}")
        return float(value)
    return value


def check_options(name: str, options: dict[str, Any] | None, where: str = "model.options") -> None:
    """Raise ValueError naming the key when ``options`` do not suit model ``name`` (without building it)."""
    _load_builtin()
    if name not in _MODELS:
        raise ValueError(f"unknown model '{name}'; known: {', '.join(sorted(_MODELS))}")
    parse_options(_MODELS[name][1], options, where)


def option_names(name: str) -> list[str]:
    _load_builtin()
    return [f.name for f in dataclasses.fields(_MODELS[name][1])] if name in _MODELS else []


def build_model(
    name: str,
    options: dict[str, Any] | None,
    in_features: int,
    target: str,
    norm: tuple[np.ndarray, np.ndarray] | None = None,
) -> nn.Module:
    """The model ``name`` with ``options``, for ``in_features`` inputs, a ``target`` and per-type (mean, std)."""
    _load_builtin()
    if name not in _MODELS:
        raise ValueError(f"unknown model '{name}'; known: {', '.join(sorted(_MODELS))}")
    cls, options_cls = _MODELS[name]
    return cls(parse_options(options_cls, options), in_features=in_features, target=target, norm=norm)
