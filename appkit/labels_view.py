"""Soft-label stores for the Soft labels page: find them, and rebuild one stored view for the inspector."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import streamlit as st
import torch

from distill_core import runs
from distill_core.labels import relabel

from .paths import runs_root


def store_dirs() -> dict[str, Path]:
    """Label stores on disk: name -> folder, for top-level relabel runs and a sweep's `labels-*` folders."""
    out: dict[str, Path] = {}
    for info in runs.list_runs(runs_root()):
        if (info.path / relabel.PARAMS_FILE).is_file() and info.state == "done":
            out[info.name] = info.path
        for sub in sorted(info.path.glob("labels-*")):
            if (sub / relabel.PARAMS_FILE).is_file():
                out[f"{info.name}/{sub.name}"] = sub
    return out


@st.cache_resource(show_spinner="loading label store...", max_entries=4)
def _store(path: str, mtime: float):
    return relabel.load_store(path)


def load_store(run_dir: Path):
    return _store(str(run_dir), (Path(run_dir) / relabel.PARAMS_FILE).stat().st_mtime)


def images_dir_of(run_dir: Path) -> Path | None:
    """The image run a label store was made from (its config's `images`), if it still exists."""
    from distill_core.config import load_yaml

    cfg = load_yaml(Path(run_dir) / "config.yaml") if (Path(run_dir) / "config.yaml").is_file() else {}
    for cand in (Path(str(cfg.get("images", ""))), runs_root() / Path(str(cfg.get("images", ""))).name):
        if str(cand) not in ("", ".") and (cand / "images.pt").is_file():
            return cand
    return None


@dataclass
class ViewInspection:
    view: torch.Tensor  # [C, S, S] the stored view as the student sees it (after crop, flip and mix)
    probs: list[float]  # softmax(logits / T) of the stored logits
    image_index: int
    image_label: int
    batch_epoch: int
    lam: float


def inspect_view(store, images, labels, batch: int, position: int, temperature: float = 1.0) -> ViewInspection:
    """Rebuild view `position` of stored batch `batch` and its soft label (through relabel.replay_batch)."""
    views, logits = relabel.replay_batch(store, images, batch)
    position = min(position, len(views) - 1)
    idx = int(store.image_index[store.view_slice(batch)][position])
    probs = torch.softmax(logits[position] / temperature, dim=0)
    return ViewInspection(views[position], probs.tolist(), idx, int(labels[idx]), int(store.batch_epoch[batch]),
                          float(store.lam[batch]))
