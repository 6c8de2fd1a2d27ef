"""Stage configurations: frozen dataclasses with YAML round trip and validation.

Precedence is defaults < YAML < CLI/UI: `resolve_config(cls, yaml_path, overrides)` applies it.
Every field is declared with `knob(default, help)`: the help text states the unit and a typical
value, and is what `--help` and the app's tooltips show. Unknown keys are an error, never ignored.
Stage configs live in the module of their stage (e.g. `teacher.TeacherConfig`); this module holds
the machinery they share.

A field whose type is itself a config dataclass (`nested(...)`, e.g. the sweep's `relabel:
RelabelConfig`) is a nested YAML mapping, checked when the outer config loads: a typo in it is one
error naming the valid keys. Over a base config, a nested mapping changes only the keys it names.
A config may declare `LEGACY_VALUES = {field: {old value: new value}}` for values that files written
by older versions hold (they are translated on load), and a method `derived_fields() -> {field: why}`
naming the fields it computed from others (e.g. those a preset set): `dump_yaml` writes the why as a
comment on the field's line, and a config built over it derives them afresh.
"""
from __future__ import annotations

import dataclasses
import math
import typing
from pathlib import Path
from typing import Any, TypeVar

C = TypeVar("C")

def knob(default: Any, help: str, choices: tuple | None = None, label: str | None = None,
         advanced: bool = False) -> Any:
    """A config field with its help text (unit + typical value) and optional allowed values.

    label: the name a form shows (default: made from the field name); advanced: forms put the field
    in their "advanced" group (settings most runs leave at the default)."""
    meta = {"help": help, "choices": choices, "label": label, "advanced": advanced}
    if isinstance(default, (dict, list)):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def nested(cls: type, help: str) -> Any:
    """A config field holding a whole config of class `cls` (a nested YAML mapping); default `cls()`."""
    return dataclasses.field(default_factory=cls, metadata={"help": help, "choices": None})


def nested_class(annotation: Any) -> type | None:
    """The config dataclass a field annotation names, or None for any other type."""
    return annotation if isinstance(annotation, type) and dataclasses.is_dataclass(annotation) else None


def build_nested(cfg: Any) -> None:
    """From a config's __post_init__: turn a nested field given as a mapping (in code) into its config
    class, with the field's name on any error, as `config_from_dict` does for YAML."""
    hints = typing.get_type_hints(type(cfg))
    for f in dataclasses.fields(cfg):
        sub, value = nested_class(hints[f.name]), getattr(cfg, f.name)
        if sub is None or isinstance(value, sub):
            continue
        if not isinstance(value, dict):
            raise ValueError(f"{f.name} must be a mapping of {sub.__name__} fields, got {type(value).__name__}")
        try:
            object.__setattr__(cfg, f.name, config_from_dict(sub, value))
        except ValueError as exc:
            raise ValueError(f"{f.name}: {exc}") from None


def field_default(f: dataclasses.Field) -> Any:
    return f.default if f.default is not dataclasses.MISSING else f.default_factory()


def changed_fields(cfg: Any) -> dict:
    """The fields of `cfg` that differ from their defaults, as plain values (what a user set)."""
    plain = config_to_dict(cfg)
    out = {}
    for f in dataclasses.fields(cfg):
        default = field_default(f)
        default = config_to_dict(default) if dataclasses.is_dataclass(default) else _plain(default)
        if plain[f.name] != default:
            out[f.name] = plain[f.name]
    return out


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


def check_teacher_epoch(value: int | None, name: str = "teacher_epoch") -> None:
    """A teacher checkpoint epoch: None (the final teacher) or an epoch >= 1 (checkpoints count from 1)."""
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise ValueError(f"{name} must be a checkpoint epoch >= 1, or None (empty) for the final teacher; "
                         f"got {value!r}")


# configs written before teacher_epoch had one meaning stored 0 for "the final teacher"
FINAL_TEACHER_LEGACY = {0: None}


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


def _plain(v: Any) -> Any:
    if dataclasses.is_dataclass(v) and not isinstance(v, type):
        return config_to_dict(v)
    if isinstance(v, tuple):
        return [_plain(x) for x in v]
    if isinstance(v, dict):
        return {k: _plain(x) for k, x in v.items()}
    return v


def config_to_dict(cfg: Any) -> dict:
    """Plain dict of a config (tuples become lists, nested configs dicts) for YAML/JSON."""
    return {f.name: _plain(getattr(cfg, f.name)) for f in dataclasses.fields(cfg)}


def _coerce(value: Any, annotation: Any) -> Any:
    """Turn YAML/CLI values into the field's declared type (lists -> tuples, ints -> floats)."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if value is None:
        return None
    sub = nested_class(annotation)
    if sub is not None and isinstance(value, dict):
        return config_from_dict(sub, value)
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
    """Build `cls` from `data` on top of `base` (or the defaults). Unknown keys raise ValueError.

    A nested config field takes a mapping, merged key by key over the base's; an error inside it
    names the field (e.g. "relabel: unknown RelabelConfig key(s): epocs; valid keys: ...").
    """
    if not isinstance(data, dict):
        raise ValueError(f"a {cls.__name__} must be a mapping of field: value, got {type(data).__name__}")
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise ValueError(
            f"unknown {cls.__name__} key(s): {', '.join(unknown)}; valid keys: {', '.join(sorted(names))}"
        )
    hints = typing.get_type_hints(cls)
    legacy = getattr(cls, "LEGACY_VALUES", {})
    values = config_to_dict(base) if base is not None else {}
    for k in _derived(base):  # e.g. what the base's preset set: the new values derive them again
        values.pop(k, None)
    for k, v in data.items():
        if k in legacy and _hashable(v) and v in legacy[k] and not isinstance(v, bool):
            v = legacy[k][v]
        if nested_class(hints[k]) is not None and isinstance(v, dict) and isinstance(values.get(k), dict):
            v = {**values[k], **v}
        values[k] = v
    coerced = {}
    for k, v in values.items():
        try:
            coerced[k] = _coerce(v, hints[k])
        except ValueError as exc:
            if nested_class(hints[k]) is None:
                raise
            raise ValueError(f"{k}: {exc}") from None
    return cls(**coerced)


def _derived(cfg: Any) -> dict[str, str]:
    return cfg.derived_fields() if cfg is not None and hasattr(cfg, "derived_fields") else {}


def _hashable(v: Any) -> bool:
    try:
        hash(v)
    except TypeError:
        return False
    return True


def load_yaml(path: str | Path) -> dict:
    """Read a YAML mapping (safe_load) with a clear error for a missing or malformed file."""
    import yaml  # here, not at the top: the stages' loops (and bench/gpu.py) need only torch and torchvision

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
    """The config as YAML; its `derived_fields()` (if any) say on their lines where their values came from."""
    import yaml

    text = yaml.safe_dump(config_to_dict(cfg), sort_keys=False)
    notes = _derived(cfg)
    if not notes:
        return text
    lines = text.splitlines()
    for i, line in enumerate(lines):
        key = line.split(":", 1)[0]
        if not line.startswith(" ") and key in notes:
            lines[i] = f"{line}  # {notes[key]}"
    return "\n".join(lines) + "\n"


def resolve_config(cls: type[C], yaml_path: str | Path | None = None, overrides: dict | None = None) -> C:
    """defaults < YAML file < overrides (CLI flags or UI widgets)."""
    cfg = config_from_dict(cls, load_yaml(yaml_path)) if yaml_path else cls()
    return config_from_dict(cls, overrides or {}, base=cfg) if overrides else cfg
