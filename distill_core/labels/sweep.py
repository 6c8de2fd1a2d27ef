"""Label size vs accuracy: a grid of image sources x pruning strategies x ratios x seeds.

`python -m distill_core sweep --spec sweep.yaml --run-dir runs/NAME` relabels every image source
once (`labels-<source>/`, a relabel run), then trains one student per cell and appends a row to
`results.csv` (tidy: one row per cell). Finished cells are skipped with `--resume`; a failed cell is
recorded with its error and the sweep goes on. Ratios are compression factors (1, 2, 5, 10, 20,
40, 100): pruning ratio r = 1 - 1/factor. `rules` x `rule_ratios` adds rule-based cells beside the
main grid; `hard_labels` adds the same-images hard-label reference (strategy "hard_labels").

DD-Ranking's references (Li et al. 2025) are cells too: `real_hard_epochs` trains a hard-label student of
the evaluation architecture on the whole real training set per seed (source "real_data", strategy
"real_hard"); `random_real_ipc` adds the source "random_real" drawn anew for each seed (its image run
`images-random_real-seed<s>/` and label store `labels-random_real-seed<s>/` live in the sweep folder).
Hard-label students (same images and real data) try every learning rate of `hard_lrs` and keep the one
with the best accuracy on `val_images` real test images held out after the scored ones.
Every soft-label row records the actual compression (after rounding the kept batches), the labelled
views kept per image and the share of images with at least one kept view.
"""
from __future__ import annotations

import dataclasses
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from ..config import build_nested, changed_fields, check_int, check_positive, knob, nested
from ..device import make_generator, resolve_device
from ..teacher import teacher_dataset_spec
from ..workers import threads_per_worker
from .grid import RESULTS_FILE, cell_pool, grid_metrics, run_grid
from .grid import read_rows as _read_rows
from .prune import STRATEGIES, ratio_from_factor
from .relabel import RelabelConfig, run_relabel
from .student import StudentConfig, image_bytes, pruned_labels, train_student

COLUMNS = ("source", "method", "ipc", "strategy", "ratio", "compression", "kept_batches", "views_per_image",
           "images_covered", "label_bytes", "image_bytes", "seed", "lr", "val_accuracy", "accuracy", "status", "error",
           "seconds")
REAL_DATA, REAL_HARD, HARD = "real_data", "real_hard", "hard_labels"  # DD-Ranking's reference cells
RANDOM_REAL = "random_real"
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
    random_real_ipc: int = knob(0, "add the source random_real: this many random real training images per class, "
                                   "drawn anew for each seed and relabelled per seed; 0 = none",
                                 label="Random real images per class, drawn per seed (0 = none)")
    real_hard_epochs: int = knob(0, "epochs of a hard-label student of the evaluation architecture on the whole real "
                                    "training set, per seed: DD-Ranking's real-data reference; 0 = none",
                                  label="Real-data hard-label student epochs (DD-Ranking; 0 = none)")
    hard_lrs: tuple[float, ...] = knob((), "learning rates tried for every hard-label student; the best on the "
                                           "validation images is kept; () = student.lr",
                                  label="Hard-label learning rates to try (empty = the student's)", advanced=True)
    val_images: int = knob(0, "real test images after the scored ones that choose the hard-label learning rate "
                              "(never scored); needed by hard_lrs",
                            label="Validation images for the hard-label learning rate", advanced=True)
    dd_weight: float = knob(0.5, "DD-Ranking's w: LRS = (e^(w IOR - (1 - w) HLR) - e^-1) / (e - e^-1); 0.5 as "
                                 "DD-Ranking", label="DD-Ranking weight w", advanced=True)
    test_limit: int = knob(0, "score students on the first k real test images; 0 = the whole test set (less the "
                              "validation images)")
    device: str = knob("auto", "auto | cpu | cuda[:N]")
    threads: int = knob(0, "torch CPU threads (of each worker); 0 = torch's default (the cores shared out among the "
                           "workers), 1 avoids oversubscription on a busy machine")
    workers: int = knob(1, "cells trained at once, each in its own worker process; 1 = one after another in this "
                           "process. 2 halves a CPU sweep on 2 cores (each cell is a small single-threaded student)",
                        label="Cells trained at once (worker processes)", advanced=True)

    def __post_init__(self):
        build_nested(self)
        check_int("threads", self.threads, minimum=0)
        check_int("workers", self.workers)
        check_int("test_limit", self.test_limit, minimum=0)
        check_int("random_real_ipc", self.random_real_ipc, minimum=0)
        check_int("real_hard_epochs", self.real_hard_epochs, minimum=0)
        check_int("val_images", self.val_images, minimum=0)
        if not self.sources and not self.random_real_ipc:
            raise ValueError("sweep needs at least one source: sources: {name: image run folder}")
        if self.random_real_ipc and RANDOM_REAL in self.sources:
            raise ValueError("random_real_ipc draws the source random_real per seed; remove random_real from sources "
                             "or set random_real_ipc: 0")
        if REAL_DATA in self.sources:
            raise ValueError(f"the source name {REAL_DATA!r} is the real-data reference's; rename that source")
        for lr in self.hard_lrs:
            check_positive("hard_lrs", lr)
        if self.hard_lrs and not self.val_images:
            raise ValueError("hard_lrs needs validation images to choose from: set val_images (e.g. 1000)")
        if not 0.0 <= self.dd_weight <= 1.0:
            raise ValueError(f"dd_weight must lie in [0, 1] (DD-Ranking uses 0.5), got {self.dd_weight}")
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


def source_names(cfg: SweepConfig) -> list[str]:
    """The image sources of the grid: those given, then random_real when it is drawn per seed."""
    return list(cfg.sources) + ([RANDOM_REAL] if cfg.random_real_ipc else [])


def plan_cells(cfg: SweepConfig) -> list[Cell]:
    """All cells, seed-major so that a partial sweep already has every configuration once."""
    cells = []
    for seed in cfg.seeds:
        if cfg.real_hard_epochs:
            cells.append(Cell(REAL_DATA, REAL_HARD, 0, seed))
        for source in source_names(cfg):
            if cfg.hard_labels:
                cells.append(Cell(source, HARD, 0, seed))
            cells += [Cell(source, s, f, seed) for s in cfg.strategies for f in cfg.ratios]
            cells += [Cell(source, s, f, seed) for s in cfg.rules for f in cfg.rule_ratios
                      if s not in cfg.strategies or f not in cfg.ratios]
    return cells


def _row_key(row: dict) -> tuple[str, str, str, str]:
    return row["source"], row["strategy"], f"{float(row['ratio']):g}", str(row["seed"])


def read_rows(path: Path) -> list[dict]:
    """The complete rows of a sweep's results.csv (a row cut short is left out and runs again)."""
    return _read_rows(path, _row_key)


def run_cell(cfg: SweepConfig, cell: Cell, art, store, test, val, device) -> dict:
    """Train one student; returns the tidy row (status ok). `store` is None for hard-label cells."""
    row = {"source": cell.source, "method": art.method, "ipc": art.ipc, "strategy": cell.strategy,
           "ratio": cell.ratio, "image_bytes": image_bytes(art), "seed": cell.seed}
    if store is None:
        return row | {"compression": "", "kept_batches": 0, "label_bytes": 0} | _hard_student(cfg, cell, art, test, val,
                                                                                            device)
    scfg = dataclasses.replace(cfg.student, seed=cell.seed, strategy=cell.strategy, ratio=ratio_from_factor(cell.ratio))
    small, plan = pruned_labels(scfg, art, store)
    covered = torch.unique(small.image_index).numel()
    row |= {"compression": plan.compression, "kept_batches": len(plan.kept), "label_bytes": plan.bytes,
            "views_per_image": small.num_views / store.num_images, "images_covered": covered / store.num_images,
            "lr": scfg.lr}
    result = train_student(scfg, art, test, device, make_generator(cell.seed), small, plan)
    return row | {"accuracy": result.accuracy, "status": "ok", "error": ""}


def _hard_student(cfg: SweepConfig, cell: Cell, art, test, val, device) -> dict:
    """A hard-label student per learning rate of `hard_lrs` (or student.lr alone); the one best on `val` is
    scored on `test`. The real-data reference trains `real_hard_epochs` epochs."""
    from ..models import evaluate

    base = dataclasses.replace(cfg.student, seed=cell.seed, strategy="random", ratio=0.0)
    if cell.strategy == REAL_HARD:
        base = dataclasses.replace(base, epochs=cfg.real_hard_epochs)
    best = None
    for lr in cfg.hard_lrs or (base.lr,):
        scfg = dataclasses.replace(base, lr=lr)
        result = train_student(scfg, art, val if cfg.hard_lrs else test, device, make_generator(cell.seed))
        if best is None or result.accuracy > best[1]:
            best = (lr, result.accuracy, result.model)
    lr, val_acc, model = best
    accuracy = evaluate(model, test.images, test.labels) if cfg.hard_lrs else val_acc
    return {"lr": lr, "val_accuracy": val_acc if cfg.hard_lrs else "", "accuracy": accuracy, "status": "ok",
            "error": ""}


class _SweepCells:
    """Trains the cells of one sweep (called with a Cell, returns its row): loads the scoring and validation
    images once, and each source's images and label store once. A worker process builds its own."""

    def __init__(self, cfg: SweepConfig, run_dir: Path, device):
        self.cfg, self.run_dir, self.device = cfg, Path(run_dir), torch.device(device)
        self.dataset = cfg.dataset or teacher_dataset_spec(cfg.teacher)
        self._split, self._loaded = None, {}

    def source_key(self, cell: Cell) -> tuple:
        """Which image set and label store a cell trains on: random real images drawn per seed have one each."""
        return cell.source, cell.seed if cell.source == RANDOM_REAL and self.cfg.random_real_ipc else None

    def prepare(self, cell: Cell) -> tuple[Path, Path | None]:
        """(image run, label store folder) of a cell's source, relabelled (and random real drawn) unless done."""
        if cell.strategy == REAL_HARD:
            return Path(), None
        cfg, per_seed = self.cfg, self.source_key(cell)[1] is not None
        folder = _random_real_run(cfg, self.dataset, self.run_dir, cell.seed) if per_seed else Path(cfg.sources[cell.source])
        label_dir = self.run_dir / (f"labels-{cell.source}-seed{cell.seed}" if per_seed else f"labels-{cell.source}")
        _relabel_source(dataclasses.replace(cfg.relabel, images=str(folder), teacher=cfg.teacher,
                                            device=str(self.device)), label_dir)
        return folder, label_dir

    def _source(self, cell: Cell) -> tuple:
        """(image set, label store), loaded once per source (a failed load is retried by the next cell)."""
        from ..imageset import load_image_set
        from .relabel import load_store

        key = self.source_key(cell)
        if key not in self._loaded:
            folder, label_dir = self.prepare(cell)
            art = load_image_set(folder)
            self._loaded[key] = art, load_store(label_dir, art)
        return self._loaded[key]

    def __call__(self, cell: Cell) -> dict:
        if self._split is None:
            self._split = split_test_set(self.dataset, self.cfg.test_limit, self.cfg.val_images)
        test, val = self._split
        if cell.strategy == REAL_HARD:
            return run_cell(self.cfg, cell, _real_data(self.dataset), None, test, val, self.device)
        art, store = self._source(cell)
        return run_cell(self.cfg, cell, art, None if cell.strategy == HARD else store, test, val, self.device)


def sweep(cfg: SweepConfig, run_dir: Path, device, on_progress: Callable[[float, str], None]) -> list[dict]:
    """Relabel each source (resumable), then run every cell not yet finished; returns all rows.

    With `workers` > 1 every source is relabelled here first (workers only read label stores), then the
    cells run in worker processes (`grid.cell_pool`); each cell's row is the same as in one process (each
    is seeded by its cell).
    """
    cells, runner = plan_cells(cfg), _SweepCells(cfg, Path(run_dir), device)
    describe = (lambda c: f"{c.source} {c.strategy} {c.ratio:g}x seed {c.seed}")
    path = Path(run_dir) / RESULTS_FILE
    if cfg.workers == 1:
        return run_grid(cells, path, COLUMNS, _row_key, runner, describe, on_progress)
    sources = {runner.source_key(c): c for c in cells if c.strategy != REAL_HARD}
    threads = threads_per_worker(cfg.workers, cfg.threads)
    with cell_pool(cfg.workers, _SweepCells, (cfg, str(run_dir), str(device)), threads) as pool:  # starts meanwhile
        for i, cell in enumerate(sources.values()):
            on_progress(0.0, f"labels of {cell.source} ({i + 1}/{len(sources)})")
            runner.prepare(cell)
        return run_grid(cells, path, COLUMNS, _row_key, runner, describe, on_progress, pool)


def _random_real_run(cfg: SweepConfig, dataset: str, run_dir: Path, seed: int) -> Path:
    """The random-real image run of `seed` inside the sweep folder, drawn unless it is done."""
    from ..runs import read_status
    from .realimages import RealImagesConfig, run_realimages

    folder = run_dir / f"images-{RANDOM_REAL}-seed{seed}"
    if read_status(folder).get("state") != "done":
        run_realimages(RealImagesConfig(dataset=dataset, ipc=cfg.random_real_ipc, seed=seed), folder,
                       overwrite=(folder / "status.json").is_file())
    return folder


def _real_data(dataset: str):
    """The whole real training set as an image-set artifact (method "real_data"), for the real-hard student."""
    from ..data import load_dataset
    from ..imageset import ImageSetArtifact

    data = load_dataset(dataset)
    return ImageSetArtifact(data.train.float_images(), data.train.labels.clone(), data.info, REAL_DATA,
                            {"dataset": dataset})


def split_test_set(dataset: str, limit: int = 0, val: int = 0):
    """(scored test images, validation images): the first `limit` test images (0 = all but the validation
    ones) and the `val` images after them. ValueError when the test set holds fewer than limit + val."""
    from ..data import ImageSet, load_dataset

    full = load_dataset(dataset).test
    limit = limit or len(full) - val
    if limit < 1 or limit + val > len(full):
        raise ValueError(f"the test set of {dataset} has {len(full)} images: test_limit {limit} + val_images {val} "
                         "do not fit; lower one of them")
    return (ImageSet(full.images[:limit], full.labels[:limit]),
            ImageSet(full.images[limit:limit + val], full.labels[limit:limit + val]))


def scoring_test_set(dataset: str, limit: int = 0):
    """The real test set students are scored on: its first `limit` images (0 = all)."""
    return split_test_set(dataset, limit)[0]


def _relabel_source(rcfg: RelabelConfig, label_dir: Path) -> None:
    """Relabel into `label_dir` unless it is done: an interrupted relabel with the same config continues from
    its last finished label epoch; anything else (failed, cancelled, another config) starts again."""
    from ..runs import read_status

    state = read_status(label_dir).get("state")
    if state == "done":
        return
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
                    "label_bytes": float(rs[0]["label_bytes"] or 0), "image_bytes": int(rs[0]["image_bytes"]),
                    **{k: _mean_field(rs, k) for k in ("compression", "views_per_image", "images_covered")}})
    return out


def _mean_field(rows: list[dict], key: str) -> float | None:
    """Mean of a numeric column over rows (None when no row has it, e.g. hard-label cells or older sweeps)."""
    values = [float(r[key]) for r in rows if r.get(key) not in (None, "")]
    return statistics.fmean(values) if values else None


def dd_ranking_rows(rows: list[dict], weight: float = 0.5) -> list[dict]:
    """DD-Ranking per (source, strategy, ratio) of the soft-label cells of synthetic sources: HLR, IOR and LRS
    computed per seed from that seed's real-data hard student, the source's hard-label student and random
    real images at the same labels; mean and std (sample) over the seeds that have all four."""
    from .student import dd_ranking

    acc = {(r["source"], r["strategy"], float(r["ratio"] or 0), str(r["seed"])): float(r["accuracy"])
           for r in rows if r.get("status") == "ok"}
    groups: dict[tuple, list[dict]] = {}
    for (source, strategy, ratio, seed), value in acc.items():
        if source in (REAL_DATA, RANDOM_REAL) or strategy == HARD:
            continue
        refs = (acc.get((REAL_DATA, REAL_HARD, 0.0, seed)), acc.get((source, HARD, 0.0, seed)),
                acc.get((RANDOM_REAL, strategy, ratio, seed)))
        if None not in refs:
            groups.setdefault((source, strategy, ratio), []).append(dd_ranking(refs[0], refs[1], value, refs[2], weight))
    out = []
    for (source, strategy, ratio), scores in groups.items():
        row = {"source": source, "strategy": strategy, "ratio": ratio, "n": len(scores), "weight": weight}
        for name in ("HLR", "IOR", "LRS"):
            values = [sc[name] for sc in scores]
            row[f"{name}_mean"] = statistics.fmean(values)
            row[f"{name}_std"] = statistics.stdev(values) if len(values) > 1 else 0.0
        out.append(row)
    return out


def run_sweep(cfg: SweepConfig, run_dir: Path, resume: bool = False, overwrite: bool = False) -> dict:
    """Job: run the grid into `run_dir` (results.csv + metrics.json with the summary)."""
    from .. import jobs

    device = resolve_device(cfg.device)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)

    def body(ctx: jobs.JobContext) -> dict:
        rows = sweep(cfg, ctx.run_dir, device, ctx.report)
        return grid_metrics(rows, ctx.run_dir, summarise(rows)) | {"dd_ranking": dd_ranking_rows(rows, cfg.dd_weight)}

    return jobs.run_stage("sweep", cfg, run_dir, body, device, None, resume, overwrite)
