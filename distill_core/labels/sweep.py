"""Label size vs accuracy: a grid of image sources x pruning strategies x ratios x seeds.

`python -m distill_core sweep --spec sweep.yaml --run-dir runs/NAME` relabels every image source
once (`labels-<source>/`, a relabel run), then trains one student per cell and appends a row to
`results.csv` (tidy: one row per cell). Finished cells are skipped with `--resume`; a failed cell is
recorded with its error and the sweep goes on. Ratios are compression factors (1, 2, 5, 10, 20,
40, 100): pruning ratio r = 1 - 1/factor. `rules` x `rule_ratios` adds rule-based cells beside the
main grid; `hard_labels` adds the same-images hard-label reference (strategy "hard_labels").
"""
from __future__ import annotations

import csv
import dataclasses
import io
import statistics
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch

from ..config import build_nested, changed_fields, check_int, knob, nested
from ..device import make_generator, resolve_device
from ..jobs import Cancelled
from ..teacher import teacher_dataset_spec
from .prune import STRATEGIES, ratio_from_factor
from .relabel import RelabelConfig, run_relabel
from .student import StudentConfig, image_bytes, pruned_labels, train_student

COLUMNS = ("source", "method", "ipc", "strategy", "ratio", "compression", "kept_batches", "label_bytes",
           "image_bytes", "seed", "accuracy", "status", "error", "seconds")
RESULTS_FILE = "results.csv"
PER_SOURCE = {"images", "teacher"}  # RelabelConfig fields the sweep sets for each source
PER_CELL = {"images", "labels", "seed", "ratio", "strategy"}  # StudentConfig fields it sets for each cell


@dataclass(frozen=True)
class SweepConfig:
    teacher: str = knob("", "teacher run that relabels every source (and whose test set scores students)")
    dataset: str = knob("", "dataset spec of the real test set; empty = the teacher run's")
    sources: dict = knob({}, "name -> image run folder, e.g. {sre2l: runs/x-sre2l, random_real: runs/x-rr}")
    strategies: tuple[str, ...] = knob(("random",), "pruning strategies of the main grid")
    ratios: tuple[float, ...] = knob((1, 2, 5, 10, 20, 40, 100), "compression factors of the main grid")
    rules: tuple[str, ...] = knob((), "extra strategies (e.g. confidence_easy) run only at rule_ratios")
    rule_ratios: tuple[float, ...] = knob((10, 40), "compression factors of the `rules` cells")
    hard_labels: bool = knob(False, "add a hard-label student per source and seed (reference)")
    seeds: tuple[int, ...] = knob((0,), "student seeds (init, pruning draw, batch order)")
    relabel: RelabelConfig = nested(RelabelConfig, "RelabelConfig fields shared by all sources, e.g. {epochs: 100, "
                                    "batch_size: 20}; images, teacher and device are the sweep's")
    student: StudentConfig = nested(StudentConfig, "StudentConfig fields shared by all cells, e.g. {model_args: "
                                    "{width: 32}}; images, labels, seed, strategy and ratio are per cell")
    test_limit: int = knob(0, "score students on the first k real test images; 0 = the whole test set")
    device: str = knob("auto", "auto | cpu | cuda[:N]")
    threads: int = knob(0, "torch CPU threads; 0 = torch's default, 1 avoids oversubscription on a busy machine")

    def __post_init__(self):
        build_nested(self)
        check_int("threads", self.threads, minimum=0)
        check_int("test_limit", self.test_limit, minimum=0)
        if not self.sources:
            raise ValueError("sweep needs at least one source: sources: {name: image run folder}")
        for s in self.strategies + self.rules:
            STRATEGIES.check(s)
        for f in self.ratios + self.rule_ratios:
            ratio_from_factor(f)
        for s in self.seeds:
            check_int("seed", s, minimum=0)
        bad = sorted(f"relabel.{k}" for k in set(changed_fields(self.relabel)) & PER_SOURCE) + \
            sorted(f"student.{k}" for k in set(changed_fields(self.student)) & PER_CELL)
        if bad:
            raise ValueError(f"{', '.join(bad)}: the sweep sets these per cell (relabel's per source); "
                             "remove them from the spec")


@dataclass(frozen=True)
class Cell:
    source: str
    strategy: str
    ratio: float  # compression factor; 0 for hard labels
    seed: int

    @property
    def key(self) -> tuple[str, str, str, str]:
        return self.source, self.strategy, f"{float(self.ratio):g}", str(self.seed)


def plan_cells(cfg: SweepConfig) -> list[Cell]:
    """All cells, seed-major so that a partial sweep already has every configuration once."""
    cells = []
    for seed in cfg.seeds:
        for source in cfg.sources:
            if cfg.hard_labels:
                cells.append(Cell(source, "hard_labels", 0, seed))
            cells += [Cell(source, s, f, seed) for s in cfg.strategies for f in cfg.ratios]
            cells += [Cell(source, s, f, seed) for s in cfg.rules for f in cfg.rule_ratios
                      if s not in cfg.strategies or f not in cfg.ratios]
    return cells


def read_rows(path: Path, row_key: Callable[[dict], tuple] | None = None) -> list[dict]:
    """The rows of a results CSV; a row cut short (a missing field, or a key `row_key` cannot read; default:
    this sweep's) is left out, so its cell runs again."""
    row_key = row_key or _row_key
    if not path.is_file():
        return []
    try:
        with open(path, newline="") as fh:
            rows = list(csv.DictReader(fh))
    except (csv.Error, UnicodeDecodeError) as exc:
        raise ValueError(f"{path} is not a readable results table ({exc}); move it away and resume") from None
    out = []
    for row in rows:
        if None in row.values() or None in row:  # csv.DictReader's marks of a short or a long row
            continue
        try:
            row_key(row)
        except (KeyError, TypeError, ValueError):
            continue
        out.append(row)
    return out


def write_rows(path: Path, rows: list[dict], columns: tuple[str, ...] = COLUMNS) -> None:
    from ..runs import write_text_atomic

    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    write_text_atomic(path, buf.getvalue())


def _row_key(row: dict) -> tuple[str, str, str, str]:
    return row["source"], row["strategy"], f"{float(row['ratio']):g}", str(row["seed"])


def run_cell(cfg: SweepConfig, cell: Cell, art, store, test, device) -> dict:
    """Train one student; returns the tidy row (status ok)."""
    soft = cell.strategy != "hard_labels"
    scfg = dataclasses.replace(cfg.student, seed=cell.seed, strategy=cell.strategy if soft else "random",
                               ratio=ratio_from_factor(cell.ratio) if soft else 0.0)
    row = {"source": cell.source, "method": art.method, "ipc": art.ipc, "strategy": cell.strategy,
           "ratio": cell.ratio, "image_bytes": image_bytes(art), "seed": cell.seed}
    small = plan = None
    if soft:
        small, plan = pruned_labels(scfg, art, store)
        row |= {"compression": plan.compression, "kept_batches": len(plan.kept), "label_bytes": plan.bytes}
    else:
        row |= {"compression": "", "kept_batches": 0, "label_bytes": 0}
    result = train_student(scfg, art, test, device, make_generator(cell.seed), small, plan)
    return row | {"accuracy": result.accuracy, "status": "ok", "error": ""}


def sweep(cfg: SweepConfig, run_dir: Path, device, on_progress: Callable[[float, str], None]) -> list[dict]:
    """Relabel each source (resumable), then run every cell not yet finished; returns all rows."""
    from ..imageset import load_image_set
    from ..runs import read_status
    from .relabel import load_store

    test = scoring_test_set(cfg.dataset or teacher_dataset_spec(cfg.teacher), cfg.test_limit)
    images, stores = {}, {}

    def run_one(cell: Cell) -> dict:
        if cell.source not in stores:  # a source whose loading failed is retried by its next cell
            art = load_image_set(cfg.sources[cell.source])
            label_dir = Path(run_dir) / f"labels-{cell.source}"
            state = read_status(label_dir).get("state")
            if state != "done":
                rcfg = dataclasses.replace(cfg.relabel, images=str(cfg.sources[cell.source]), teacher=cfg.teacher,
                                           device=str(device))
                _relabel_source(rcfg, label_dir, state)
            stores[cell.source] = load_store(label_dir, art)
            images[cell.source] = art
        return run_cell(cfg, cell, images[cell.source], stores[cell.source], test, device)

    return run_grid(plan_cells(cfg), Path(run_dir) / RESULTS_FILE, COLUMNS, _row_key, run_one,
                    lambda c: f"{c.source} {c.strategy} {c.ratio:g}x seed {c.seed}", on_progress)


def scoring_test_set(dataset: str, limit: int = 0):
    """The real test set students are scored on: its first `limit` images (0 = all)."""
    from ..data import ImageSet, load_dataset

    test = load_dataset(dataset).test
    return ImageSet(test.images[:limit], test.labels[:limit]) if limit else test


def run_grid(cells: list, path: Path, columns: tuple[str, ...], row_key: Callable[[dict], tuple],
             run_one: Callable[[Any], dict], describe: Callable[[Any], str],
             on_progress: Callable[[float, str], None]) -> list[dict]:
    """Run every cell (a dataclass with a `.key` matching `row_key` of its row) whose row in the CSV
    at `path` is not ok, rewriting the CSV after each one; returns the rows in cell order.

    A cell that raises becomes a `failed` row (its fields, the error and a short traceback) and the
    grid goes on; `Cancelled` ends it. Finished cells found in the CSV are skipped (resume).
    """
    rows = {row_key(r): r for r in read_rows(path, row_key)}
    todo = [c for c in cells if rows.get(c.key, {}).get("status") != "ok"]
    for i, cell in enumerate(todo):
        on_progress(1.0 - (len(todo) - i) / len(cells), f"cell {i + 1}/{len(todo)}: {describe(cell)}")
        start = time.time()
        try:
            row = run_one(cell)
        except Cancelled:
            raise
        except Exception as exc:  # one bad cell must not end the sweep; its error is the row
            row = dataclasses.asdict(cell) | {"status": "failed", "error": f"{type(exc).__name__}: {exc}",
                                              "traceback": traceback.format_exc(limit=4)}
        rows[cell.key] = row | {"seconds": round(time.time() - start, 2)}
        write_rows(path, [rows[c.key] for c in cells if c.key in rows], columns)
    on_progress(1.0, f"{len(cells)} cells")
    return [rows[c.key] for c in cells if c.key in rows]


def _relabel_source(rcfg: RelabelConfig, label_dir: Path, state: str) -> None:
    """Relabel into `label_dir`: an interrupted relabel with the same config continues from its last
    finished label epoch; anything else (failed, cancelled, another config) starts again."""
    if state == "interrupted":
        try:
            run_relabel(rcfg, label_dir, resume=True)
            return
        except ValueError as exc:
            if "different config" not in str(exc):
                raise
    run_relabel(rcfg, label_dir, overwrite=True)


def summarise(rows: list[dict]) -> list[dict]:
    """Mean +- std (sample, over seeds) of accuracy per (source, ipc, strategy, ratio) of the ok rows."""
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        if r.get("status") == "ok":
            groups.setdefault((r["source"], int(r["ipc"]), r["strategy"], float(r["ratio"])), []).append(r)
    out = []
    for (source, ipc, strategy, ratio), rs in groups.items():
        accs = [float(r["accuracy"]) for r in rs]
        out.append({"source": source, "ipc": ipc, "strategy": strategy, "ratio": ratio, "n": len(accs),
                    "accuracy_mean": statistics.fmean(accs),
                    "accuracy_std": statistics.stdev(accs) if len(accs) > 1 else 0.0,
                    "label_bytes": float(rs[0]["label_bytes"] or 0), "image_bytes": int(rs[0]["image_bytes"])})
    return out


def grid_metrics(rows: list[dict], run_dir: Path, summary: list[dict]) -> dict:
    """metrics.json of a grid: cell counts, where its CSV is, its summary and the first errors."""
    failed = [r for r in rows if r.get("status") != "ok"]
    return {"cells": len(rows), "failed": len(failed), "results_csv": str(Path(run_dir) / RESULTS_FILE),
            "summary": summary, "errors": [r.get("error") for r in failed][:10]}


def run_sweep(cfg: SweepConfig, run_dir: Path, resume: bool = False, overwrite: bool = False) -> dict:
    """Job: run the grid into `run_dir` (results.csv + metrics.json with the summary)."""
    from .. import jobs

    device = resolve_device(cfg.device)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)

    def body(ctx: jobs.JobContext) -> dict:
        rows = sweep(cfg, ctx.run_dir, device, ctx.report)
        return grid_metrics(rows, ctx.run_dir, summarise(rows))

    return jobs.run_stage("sweep", cfg, run_dir, body, device, None, resume, overwrite)
