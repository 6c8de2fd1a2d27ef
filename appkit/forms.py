"""Widgets generated from a stage's config dataclass: one input per field, its help text as tooltip.

The CLI's flags come from the same fields (distill_core.cli), so the app, YAML files and the
command line share one definition of every knob.
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


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (tuple, list)):
        return ", ".join(str(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value)
    if dataclasses.is_dataclass(value):  # a nested config: the fields set away from its defaults
        from distill_core.config import changed_fields

        return json.dumps(changed_fields(value))
    return str(value)


def _parse(text: str, kind: Any, optional: bool) -> Any:
    text = text.strip()
    if optional and text == "":
        return None
    origin = typing.get_origin(kind)
    if kind is dict or origin is dict or dataclasses.is_dataclass(kind):  # nested configs are mappings too
        return json.loads(text) if text else {}
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
    label = f.name
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
                         placeholder="empty = None" if optional else None)
    try:
        return _parse(text, kind, optional)
    except (ValueError, json.JSONDecodeError) as exc:
        st.error(f"{f.name}: cannot read {text!r} ({exc})")
        return value


def config_form(cls: type, values: dict, key: str, skip: tuple[str, ...] = (), ncols: int = 3,
                fixed: dict | None = None) -> dict:
    """Widgets for every field of `cls` except `skip`, laid out in `ncols` columns.

    values: starting values (e.g. a preset) by field name; fixed: fields shown disabled at this value.
    Returns the field values the user set (not yet validated: build the config to validate).
    """
    hints = typing.get_type_hints(cls)
    fixed = fixed or {}
    fields = [f for f in dataclasses.fields(cls) if f.name not in skip]
    cols = st.columns(ncols)
    out = {}
    for i, f in enumerate(fields):
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        value = fixed.get(f.name, values.get(f.name, default))
        with cols[i % ncols]:
            wkey = f"{key}-{f.name}" + (f"-fixed-{value}" if f.name in fixed else "")  # fixed: follow the preset
            out[f.name] = field_widget(f, hints[f.name], value, wkey, disabled=f.name in fixed)
    return out


def build_config(cls: type, values: dict) -> tuple[Any | None, str | None]:
    """(config, None) or (None, the validation message) for widget values."""
    from distill_core.config import config_from_dict

    try:
        return config_from_dict(cls, values), None
    except (ValueError, TypeError) as exc:
        return None, str(exc)
