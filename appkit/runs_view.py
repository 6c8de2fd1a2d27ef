"""Runs on disk as the pages see them: a table, and runs of one kind (teachers, image sets, ...)."""
from __future__ import annotations

import csv
import math
from pathlib import Path

from distill_core import runs

from .paths import runs_root

ACC_KEYS = ("test_acc", "accuracy", "student_acc", "acc", "top1")


def _accuracy(metrics: dict) -> float | None:
    for key in ACC_KEYS:
        value = metrics.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            return float(value)
    return None


def kind(info: runs.RunInfo) -> str:
    """teacher | images | labels | sweep | pipeline | analyse | <stage> for a run."""
    path = info.path
    if (path / "images.pt").is_file():
        return "images"
    if info.stage in ("teacher", "pipeline", "sweep", "analyse", "relabel", "student", "synthesize"):
        return {"relabel": "labels", "synthesize": "images"}.get(info.stage, info.stage)
    if (path / "teacher.pt").is_file() or (path / "checkpoints").is_dir():
        return "teacher"
    return info.stage or "?"


def method_label(method: str) -> str:
    """The papers' name of a method key, for headings and captions."""
    from .palette import style_of

    return style_of(method).label


def method_of(info: runs.RunInfo) -> str:
    cfg = info.config
    return str(cfg.get("preset") or cfg.get("method") or info.metrics.get("method") or info.stage or "")


def percent(progress: float) -> int:
    """A job's progress in [0, 1] as the whole percent the runs table and the job panels show."""
    return round(100 * min(max(float(progress), 0.0), 1.0))


def table_rows(root: Path | None = None, listed: list[runs.RunInfo] | None = None) -> list[dict]:
    """One dict per run (newest first): name, kind, state, progress, dataset, method, IPC, accuracy;
    of `listed` when given (a snapshot shared with a job panel), else of the runs on disk now."""
    rows = []
    for info in runs.list_runs(root or runs_root()) if listed is None else listed:
        cfg, met = info.config, info.metrics
        acc = _accuracy(met)
        rows.append({
            "run": info.name, "kind": kind(info), "state": info.state, "progress": percent(info.progress),
            "dataset": str(cfg.get("dataset") or met.get("dataset") or ""),
            "method": method_of(info), "ipc": cfg.get("ipc") or met.get("ipc") or None,
            "accuracy": None if acc is None else round(100 * acc, 2), "message": info.message[:120],
        })
    return rows


def image_set_runs(root: Path | None = None) -> list[runs.RunInfo]:
    """Runs holding a finished `images.pt`."""
    return [r for r in runs.list_runs(root or runs_root()) if (r.path / "images.pt").is_file() and r.state == "done"]


def teacher_runs(root: Path | None = None) -> list[runs.RunInfo]:
    """Runs holding at least one teacher checkpoint (finished or still training)."""
    return [r for r in runs.list_runs(root or runs_root())
            if (r.path / "teacher.pt").is_file() or any((r.path / "checkpoints").glob("epoch_*.pt"))]


def read_csv_rows(path: Path) -> list[dict]:
    """A CSV as a list of dicts with numbers parsed (empty list when absent)."""
    path = Path(path)
    if not path.is_file():
        return []
    with path.open(newline="") as fh:
        return [{k: _number(v) for k, v in row.items()} for row in csv.DictReader(fh)]


def _number(text: str | None):
    if text is None or text == "":
        return None
    try:
        value = float(text)
    except ValueError:
        return {"True": True, "False": False}.get(text, text)
    return int(value) if value.is_integer() and "." not in text and "e" not in text.lower() else value


def find_csv(run_dir: Path, must_have: tuple[str, ...]) -> Path | None:
    """The first CSV in a run folder (or one level below) whose header holds all `must_have` columns."""
    for path in sorted(Path(run_dir).glob("*.csv")) + sorted(Path(run_dir).glob("*/*.csv")):
        with path.open(newline="") as fh:
            header = next(csv.reader(fh), [])
        if all(col in header for col in must_have):
            return path
    return None
