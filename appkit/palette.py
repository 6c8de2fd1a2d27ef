"""One colour, symbol and name per method, on every page and in the report.

A figure colours a trace by the method it shows (never by its position in a list), so SRe2L is the
same red on Compare, Soft labels, Diversity and in the exported report. Methods not listed here
(a user's own run names) get a stable colour from their name.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass


@dataclass(frozen=True)
class MethodStyle:
    label: str  # the papers' name, for legends
    colour: str  # hex
    symbol: str  # Plotly marker symbol
    dash: str = "solid"  # Plotly line dash, for reference lines and secondary curves


METHODS: dict[str, MethodStyle] = {
    "sre2l": MethodStyle("SRe2L (cross-class)", "#dc2626", "circle"),
    "+C": MethodStyle("+C (class-wise batches)", "#d97706", "square"),
    "lpld": MethodStyle("LPLD (class-wise statistics)", "#2563eb", "diamond"),
    "random_real": MethodStyle("random real images", "#16a34a", "triangle-up"),
    "hard": MethodStyle("hard labels", "#475569", "x", "dash"),
    "expert": MethodStyle("fixed expert soft labels", "#7c3aed", "star"),
    "learned": MethodStyle("learned labels (bilevel)", "#db2777", "pentagon"),
    "onehot": MethodStyle("one-hot labels (bilevel)", "#0891b2", "cross"),
    "real": MethodStyle("real images", "#94a3b8", "circle-open"),
    "real_data": MethodStyle("whole real training set (DD-Ranking's reference)", "#1e293b", "square-open", "dot"),
}
_SPARE = ("#65a30d", "#ea580c", "#0f766e", "#9333ea", "#be123c", "#1d4ed8", "#a16207", "#4d7c0f")
_SPARE_SYMBOLS = ("hexagon", "hourglass", "bowtie", "triangle-down", "star-square", "diamond-wide")


def style_of(method: str) -> MethodStyle:
    """The style of a method key (e.g. an image set's `method`); unknown keys get a colour stable in
    their name, so a run keeps its colour whatever else is on the page."""
    if method in METHODS:
        return METHODS[method]
    h = int(hashlib.sha1(method.encode()).hexdigest(), 16)
    return MethodStyle(method, _SPARE[h % len(_SPARE)], _SPARE_SYMBOLS[h % len(_SPARE_SYMBOLS)])
