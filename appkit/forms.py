"""Widgets generated from a stage's config dataclass: one input per field, its help text as tooltip.

The CLI's flags come from the same fields (distill_core.cli), so the app, YAML files and the
command line share one definition of every knob. Each widget's name is the knob's `label`
(`config.knob(..., label=...)`) or one made from the field name; knobs marked `advanced` go into
a collapsed "advanced settings" group below the basic ones. Any page calls `config_form`.
"""
from __future__ import annotations

import dataclasses
import json
import typing
from typing import Any

import streamlit as st


def _kind(annotation: Any) -> tuple[Any, bool]:
    """(inner type, optional) of a field annotation."""
    args = typing.get_args(annotation)
    if type(None) in args:
        inner = [a for a in args if a is not type(None)]
        return (inner[0] if len(inner) == 1 else str), True
    return annotation, False


WORDS = {"ipc": "IPC", "bn": "BN", "ce": "CE", "lr": "learning rate", "kd": "KD", "amp": "mixed precision",
         "std": "std", "id": "ID", "idx": "index", "num": "number of", "args": "arguments", "fp16": "fp16",
         "topk": "top-k", "k": "k"}


def field_label(f: dataclasses.Field) -> str:
    """The human name of a config field: its knob's label, else its name in words ("bn_weight" -> "BN weight")."""
    if f.metadata.get("label"):
        return str(f.metadata["label"])
    words = [WORDS.get(w, w) for w in f.name.split("_")]
    text = " ".join(words)
    return text[:1].upper() + text[1:]


def _flow(value: Any) -> str:
    """One value of a mapping as YAML flow text (nested mappings in braces), so _parse reads it back."""
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_flow(v)}" for k, v in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_flow(v) for v in value) + "]"
    return "null" if value is None else str(value).lower() if isinstance(value, bool) else str(value)


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (tuple, list)):
        return ", ".join(str(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k}: {_flow(v)}" for k, v in value.items())
    if dataclasses.is_dataclass(value):  # a nested config: the fields set away from its defaults
        from distill_core.config import changed_fields

        return _text(changed_fields(value))
    return str(value)


def _parse(text: str, kind: Any, optional: bool) -> Any:
    text = text.strip()
    if optional and text == "":
        return None
    origin = typing.get_origin(kind)
    # a mapping or a nested config: "width: 64, depth: 3" (YAML flow mapping, braces optional)
    if kind is dict or origin is dict or dataclasses.is_dataclass(kind):
        import yaml

        if not text:
            return {}
        try:
            value = yaml.safe_load(text if text.startswith("{") else "{" + text + "}")
        except yaml.YAMLError as exc:
            raise ValueError(f"write key: value pairs separated by commas, e.g. 'width: 64, depth: 3' ({exc})") from exc
        if not isinstance(value, dict):
            raise ValueError("write key: value pairs separated by commas, e.g. 'width: 64, depth: 3'")
        return value
    if origin is tuple:
        item = (typing.get_args(kind) or (str,))[0]
        parts = [p.strip() for p in text.split(",") if p.strip()]
        return tuple(item(p) if item in (int, float) else p for p in parts)
    if kind is int:
        return int(text)
    if kind is float:
        return float(text)
    return text


def field_widget(f: dataclasses.Field, annotation: Any, value: Any, key: str, disabled: bool = False) -> Any:
    """One widget for config field `f` holding `value`; returns the widget's (parsed) value."""
    help_text = f.metadata.get("help") or None
    choices = f.metadata.get("choices")
    kind, optional = _kind(annotation)
    label = field_label(f)
    if kind is bool:
        return st.checkbox(label, value=bool(value), help=help_text, key=key, disabled=disabled)
    if choices:
        options = list(choices)
        return st.selectbox(label, options, index=options.index(value) if value in options else 0, help=help_text,
                            key=key, disabled=disabled)
    if kind is int and not optional:
        return int(st.number_input(label, value=int(value), step=1, help=help_text, key=key, disabled=disabled))
    if kind is float and not optional:
        return float(st.number_input(label, value=float(value), format="%g", help=help_text, key=key,
                                     disabled=disabled))
    text = st.text_input(label, value=_text(value), help=help_text, key=key, disabled=disabled,
                         placeholder="empty: automatic (see ?)" if optional else None)
    try:
        return _parse(text, kind, optional)
    except (ValueError, json.JSONDecodeError) as exc:
        st.error(f"{label}: cannot read {text!r} ({exc})")
        return value


def _grid(fields: list, hints: dict, values: dict, fixed: dict, key: str, ncols: int) -> dict:
    out = {}
    cols = st.columns(ncols)
    for i, f in enumerate(fields):
        value = fixed.get(f.name, values.get(f.name, _default(f)))
        with cols[i % ncols]:
            wkey = f"{key}-{f.name}" + (f"-fixed-{value}" if f.name in fixed else "")  # fixed: follow the preset
            out[f.name] = field_widget(f, hints[f.name], value, wkey, disabled=f.name in fixed)
    return out


def config_form(cls: type, values: dict, key: str, skip: tuple[str, ...] = (), ncols: int = 3,
                fixed: dict | None = None, advanced_label: str = "Advanced settings") -> dict:
    """Widgets for every field of `cls` except `skip`: the basic knobs in `ncols` columns, then the
    knobs marked `advanced` in a collapsed expander.

    values: starting values (e.g. a preset) by field name; fixed: fields shown disabled at this value.
    Returns the field values the user set (not yet validated: build the config to validate).
    """
    hints = typing.get_type_hints(cls)
    fixed = fixed or {}
    fields = [f for f in dataclasses.fields(cls) if f.name not in skip]
    # a field a preset fixes is shown with the basic ones: the user sees what the preset sets
    basic = [f for f in fields if not f.metadata.get("advanced") or f.name in fixed]
    advanced = [f for f in fields if f not in basic]
    out = _grid(basic, hints, values, fixed, key, ncols)
    if advanced:  # a toggle, not an expander: forms are often drawn inside one, and expanders do not nest
        if st.toggle(f"{advanced_label} ({len(advanced)})", key=f"{key}-show-advanced",
                     help="settings most runs leave at their defaults; hover a field for its unit and typical value"):
            out.update(_grid(advanced, hints, values, fixed, key, ncols))
        else:
            out.update({f.name: fixed.get(f.name, values.get(f.name, _default(f))) for f in advanced})
    return out


def _default(f: dataclasses.Field) -> Any:
    return f.default if f.default is not dataclasses.MISSING else f.default_factory()


def auto_name(key: str, suggestion: str, label: str = "run name") -> str:
    """A run-name text box whose value follows `suggestion` (made from the form's settings) until the
    user types a name of their own; a typed name is kept when the settings change."""
    previous = st.session_state.get(f"{key}-suggested")
    if key not in st.session_state or st.session_state[key] == previous:
        st.session_state[key] = suggestion
    st.session_state[f"{key}-suggested"] = suggestion
    return st.text_input(label, key=key, help="made from the settings until you type your own; letters, digits, "
                                               "'-', '_' and '.'")


def build_config(cls: type, values: dict) -> tuple[Any | None, str | None]:
    """(config, None) or (None, the validation message) for widget values."""
    from distill_core.config import config_from_dict

    try:
        return config_from_dict(cls, values), None
    except (ValueError, TypeError) as exc:
        return None, str(exc)
