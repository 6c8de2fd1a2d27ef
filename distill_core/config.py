"""Stage configurations: frozen dataclasses with YAML round trip and validation.

Precedence is defaults < YAML < CLI/UI: `resolve_config(cls, yaml_path, overrides)` applies it.
Every field is declared with `knob(default, help)`: the help text states the unit and a typical
value, and is what `--help` and the app's tooltips show. Unknown keys are an error, never ignored.
Stage configs live in the module of their stage (e.g. `teacher.TeacherConfig`); this module holds
the machinery they share.
"""
from __future__ import annotations

import dataclasses
import math
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

C = TypeVar("C")

DEVICES = ("auto", "cpu", "cuda")


def knob(default: Any, help: str, choices: tuple | None = None, label: str | None = None,
         advanced: bool = False) -> Any:
    """A config field with its help text (unit + typical value) and optional allowed values.

    label: the name a form shows (default: made from the field name); advanced: forms put the field
    in their "advanced" group (settings most runs leave at the default)."""
    meta = {"help": help, "choices": choices, "label": label, "advanced": advanced}
    if isinstance(default, (dict, list)):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def field_help(cls: type, name: str) -> str:
    """The help text of field `name` of config class `cls`."""
    return next(f.metadata.get("help", "") for f in dataclasses.fields(cls) if f.name == name)


# ---------------------------------------------------------------------------------------------
# validation helpers, called from each config's __post_init__


def check_finite(name: str, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}; set it to e.g. 0.1")


def check_positive(name: str, value: float, allow_zero: bool = False) -> None:
    check_finite(name, value)
    if value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be {bound}, got {value!r}")


def check_int(name: str, value: int, minimum: int = 1) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")


def check_range(name: str, pair: tuple, low: float, high: float) -> None:
    if len(pair) != 2:
        raise ValueError(f"{name} must be two numbers (min, max), got {pair!r}")
    for v in pair:
        check_finite(name, v)
    if not (low <= pair[0] <= pair[1] <= high):
        raise ValueError(f"{name} must satisfy {low} <= min <= max <= {high}, got {tuple(pair)!r}")


def check_choices(cfg: Any) -> None:
    """Check every field declared with `choices` holds one of them."""
    for f in dataclasses.fields(cfg):
        choices = f.metadata.get("choices")
        if choices and getattr(cfg, f.name) not in choices:
            raise ValueError(
                f"{f.name} must be one of {', '.join(map(str, choices))}; got {getattr(cfg, f.name)!r}"
            )


# ---------------------------------------------------------------------------------------------
# dict / YAML round trip


def config_to_dict(cfg: Any) -> dict:
    """Plain dict of a config (tuples become lists) for YAML/JSON."""
    def plain(v: Any) -> Any:
        if isinstance(v, tuple):
            return [plain(x) for x in v]
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        return v

    return {f.name: plain(getattr(cfg, f.name)) for f in dataclasses.fields(cfg)}


def _coerce(value: Any, annotation: Any) -> Any:
    """Turn YAML/CLI values into the field's declared type (lists -> tuples, ints -> floats)."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if value is None:
        return None
    if origin is typing.Union or str(origin) == "<class 'types.UnionType'>":
        inner = [a for a in args if a is not type(None)]
        return _coerce(value, inner[0]) if len(inner) == 1 else value
    if origin is tuple and isinstance(value, (list, tuple)):
        item = args[0] if args else Any
        return tuple(_coerce(v, item) for v in value)
    if annotation is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if annotation is float and isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def config_from_dict(cls: type[C], data: dict, base: C | None = None) -> C:
    """Build `cls` from `data` on top of `base` (or the defaults). Unknown keys raise ValueError."""
    if not isinstance(data, dict):
        raise ValueError(f"a {cls.__name__} must be a mapping of field: value, got {type(data).__name__}")
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ValueError(
            f"unknown {cls.__name__} key(s): {', '.join(unknown)}; valid keys: {', '.join(sorted(names))}"
        )
    hints = typing.get_type_hints(cls)
    values = config_to_dict(base) if base is not None else {}
    values.update({k: v for k, v in data.items()})
    coerced = {k: _coerce(v, hints[k]) for k, v in values.items()}
    return cls(**coerced)


def load_yaml(path: str | Path) -> dict:
    """Read a YAML mapping (safe_load) with a clear error for a missing or malformed file."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"config file not found: {path}")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ValueError(f"config file {path} is not valid YAML: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ValueError(f"config file {path} must hold a mapping of field: value")
    return data


def dump_yaml(cfg: Any) -> str:
    return yaml.safe_dump(config_to_dict(cfg), sort_keys=False)


def resolve_config(cls: type[C], yaml_path: str | Path | None = None, overrides: dict | None = None) -> C:
    """defaults < YAML file < overrides (CLI flags or UI widgets)."""
    cfg = config_from_dict(cls, load_yaml(yaml_path)) if yaml_path else cls()
    return config_from_dict(cls, overrides or {}, base=cfg) if overrides else cfg
