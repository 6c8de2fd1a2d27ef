"""One call from a dataset to label-size vs accuracy: the app's quick start.

`python -m distill_core pipeline --dataset digits --run-dir runs/NAME` runs, each as its own child run
next to NAME: the teacher (`NAME-teacher`), cross-class SRe2L and class-wise LPLD synthesis at the
given IPC (`NAME-sre2l`, `NAME-lpld`), random real images (`NAME-random_real`, seed 0, for the galleries), and
a small sweep (`NAME-sweep`: relabel every source, prune at 1x and 40x, train students for 3 seeds, with
random real images drawn anew per seed, same-images hard-label students and a real-data hard-label
student: the paper's comparison with DD-Ranking beside it). With `workers` 2 (the default) the two
syntheses, and then the sweep's cells, run two at once in worker processes, with the same results as one
after another. NAME itself holds status.json over the whole
pipeline and metrics.json with the child run paths, the tidy results and DD-Ranking scores. With
--resume, finished children are kept.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from .config import check_int, knob
from .device import resolve_device

# share of the pipeline's progress bar per stage
WEIGHTS = {"teacher": 0.2, "sre2l": 0.2, "lpld": 0.2, "random_real": 0.02, "sweep": 0.38}


@dataclass(frozen=True)
class PipelineConfig:
    dataset: str = knob("digits", "dataset spec: digits | fashion-mnist[:dir] | ...")
    ipc: int = knob(10, "images per class of every image source")
    teacher_model: str = knob("convnet", "teacher registry model")
    teacher_args: dict = knob({"width": 32, "depth": 3}, "teacher model arguments")
    teacher_epochs: int = knob(12, "teacher training epochs; 12 for digits")
    presets: tuple[str, ...] = knob(("sre2l", "lpld"), "synthesis presets to run (sre2l | +C | lpld)")
    synth_iterations: int = knob(1000, "synthesis steps per image; 1,000 on digits shows class-wise synthesis lowering "
                                       "within-class similarity (the gap grows to the paper's 4,000; at 100 none is seen)")
    label_epochs: int = knob(100, "relabel epochs E: stored views per image at 1x; 100 keeps 2.5 views per image at 40x "
                                  "(the paper: E 300, 7.5)")
    label_batch_size: int = knob(50, "views per stored batch B (the pruning unit)")
    crop_scale: tuple[float, float] = knob((0.25, 1.0), "random-resized-crop area range of the views")
    ratios: tuple[float, ...] = knob((1, 40), "label compression factors of the sweep (the paper's headline: 40x)")
    strategies: tuple[str, ...] = knob(("random",), "pruning strategies of the sweep")
    hard_labels: bool = knob(True, "also train hard-label students (for DD-Ranking's HLR)")
    hard_epochs: int = knob(50, "epochs of the same-images hard-label students (soft-label students train E epochs)")
    real_hard_epochs: int = knob(10, "epochs of the real-data hard-label student (DD-Ranking's reference; 10 reach the "
                                      "teacher's accuracy on digits); 0 = none")
    student_model: str = knob("convnet", "student registry model")
    student_args: dict = knob({"width": 32, "depth": 3}, "student model arguments")
    temperature: float = knob(4.0, "KD temperature T; 4 for 10-class data")
    student_lr: float = knob(0.01, "student AdamW peak lr; 0.01 for these short (E-epoch) runs, 1e-3 as LPLD at 300 epochs")
    student_eval_every: int = knob(1000, "students are scored on the real test set every k epochs and after the last; "
                                         "more than label_epochs = only the final accuracy, all the quick start shows")
    seeds: tuple[int, ...] = knob((0, 1, 2), "student seeds (init, pruning draw, batch order, random real images): "
                                             "mean ± std over them")
    seed: int = knob(0, "seed of teacher, synthesis, selection and relabeling")
    device: str = knob("auto", "auto | cpu | cuda[:N]")
    threads: int = knob(1, "torch CPU threads; 1 is fastest for these small models on a shared CPU, 0 = torch's default")
    workers: int = knob(2, "syntheses and sweep cells run at once, each in its own process (the same results as one "
                           "after another); 2 fills a 2-core CPU, 1 = all in this process")

    def __post_init__(self):
        check_int("threads", self.threads, minimum=0)
        check_int("ipc", self.ipc)
        check_int("teacher_epochs", self.teacher_epochs)
        check_int("synth_iterations", self.synth_iterations)
        check_int("label_epochs", self.label_epochs)
        check_int("label_batch_size", self.label_batch_size)
        check_int("hard_epochs", self.hard_epochs)
        check_int("real_hard_epochs", self.real_hard_epochs, minimum=0)
        check_int("student_eval_every", self.student_eval_every)
        check_int("seed", self.seed, minimum=0)
        check_int("workers", self.workers)


def child_dir(run_dir: Path, name: str) -> Path:
    """Child run folder `NAME-<name>` beside `NAME`."""
    run_dir = Path(run_dir)
    return run_dir.parent / f"{run_dir.name}-{name}"


class _Follow:
    """While child stages run, map their mean status.json progress into [lo, hi] of the parent's bar."""

    def __init__(self, children: list[Path], lo: float, hi: float, label: str,
                 report: Callable[[float, str], None]):
        self.children, self.lo, self.hi, self.label, self.report = children, lo, hi, label, report
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        from .runs import read_status

        while not self.stop.wait(0.5):
            statuses = [read_status(c) for c in self.children]  # a damaged status.json reads as unreadable
            try:
                p = sum(float(st.get("progress", 0.0)) for st in statuses) / len(statuses)
            except (TypeError, ValueError):
                continue
            message = "; ".join(str(st.get("message", "")) for st in statuses)
            self.report(self.lo + (self.hi - self.lo) * p, f"{self.label}: {message}")

    def __enter__(self):
        self.report(self.lo, f"{self.label}: starting")
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()
        self.report(self.hi, f"{self.label}: done")


def _run_child(name: str, job: Callable[..., dict], cfg, run_dir: Path, resume: bool, overwrite: bool,
               lo: float, report, share: float | None = None) -> tuple[Path, float]:
    """Run one child job unless a finished one is there (resume); returns (folder, progress after).

    The child's progress fills [lo, lo + share] of the pipeline's bar (share defaults to WEIGHTS[name]).
    """
    from .runs import read_status

    child, hi = child_dir(run_dir, name), lo + (share if share is not None else WEIGHTS.get(name, 0.2))
    if resume and read_status(child).get("state") == "done":
        report(hi, f"{name}: kept finished run")
        return child, hi
    with _Follow([child], lo, hi, name, report):
        job(cfg, child, resume=False, overwrite=overwrite or resume)
    return child, hi


class _Synthesis:
    """A worker process's runner: one synthesis child job, (config, folder, overwrite) -> folder."""

    def __call__(self, unit: tuple) -> str:
        from .synthesis.run import run_synthesize

        scfg, child, overwrite = unit
        run_synthesize(scfg, Path(child), resume=False, overwrite=overwrite)
        return child


def _synthesize_children(cfg: PipelineConfig, configs: dict, run_dir: Path, resume: bool, overwrite: bool,
                         lo: float, report) -> tuple[dict[str, Path], float]:
    """The synthesis children ({preset: SynthesisConfig}), at once in `cfg.workers` processes when there
    are two or more to run (each is seeded by its own config: the same images as one after another);
    returns ({preset: folder}, progress after). A failed synthesis fails the pipeline; finished ones are
    kept on resume."""
    from .runs import read_status
    from .workers import WorkerPool, threads_per_worker

    folders = {preset: child_dir(run_dir, preset) for preset in configs}
    todo = [p for p in configs if not (resume and read_status(folders[p]).get("state") == "done")]
    workers = min(cfg.workers, len(todo))
    if workers < 2:
        from .synthesis.run import run_synthesize

        for preset, scfg in configs.items():
            folders[preset], lo = _run_child(preset, run_synthesize, scfg, run_dir, resume, overwrite, lo, report)
        return folders, lo
    hi = lo + sum(WEIGHTS.get(p, 0.2) for p in configs)
    units = [(configs[p], str(folders[p]), overwrite or resume) for p in todo]
    with _Follow([folders[p] for p in todo], lo, hi, f"synthesis ({', '.join(todo)}, {workers} at once)", report), \
            WorkerPool(workers, _Synthesis, (), threads_per_worker(workers, cfg.threads)) as pool:
        for _ in pool.run(units):
            pass
    return folders, hi


def run_pipeline(cfg: PipelineConfig, run_dir: Path, resume: bool = False, overwrite: bool = False) -> dict:
    """Job: the whole quick start into `run_dir` and its `NAME-*` children."""
    from . import jobs
    from .labels.realimages import RealImagesConfig, run_realimages
    from .labels.relabel import RelabelConfig
    from .labels.student import StudentConfig
    from .labels.sweep import SweepConfig, run_sweep
    from .synthesis.synthesize import SynthesisConfig
    from .teacher import TeacherConfig, run_teacher

    device = resolve_device(cfg.device)
    dev = str(device)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)

    def body(ctx: jobs.JobContext) -> dict:
        rep, children, p = ctx.report, {}, 0.0
        tcfg = TeacherConfig(dataset=cfg.dataset, model=cfg.teacher_model, model_args=dict(cfg.teacher_args),
                             epochs=cfg.teacher_epochs, seed=cfg.seed, device=dev)
        children["teacher"], p = _run_child("teacher", run_teacher, tcfg, run_dir, resume, overwrite, p, rep)
        teacher = str(children["teacher"])
        configs = {preset: SynthesisConfig(teacher=teacher, dataset=cfg.dataset, preset=preset, ipc=cfg.ipc,
                                           iterations=cfg.synth_iterations, seed=cfg.seed, device=dev)
                   for preset in cfg.presets}
        synthesized, p = _synthesize_children(cfg, configs, run_dir, resume, overwrite, p, rep)
        children.update(synthesized)
        rcfg = RealImagesConfig(dataset=cfg.dataset, ipc=cfg.ipc, seed=cfg.seed)
        children["random_real"], p = _run_child("random_real", run_realimages, rcfg, run_dir, resume, overwrite, p,
                                                rep)
        sources = {k: str(v) for k, v in children.items() if k not in ("teacher", "random_real")}
        swcfg = SweepConfig(
            teacher=teacher, dataset=cfg.dataset, sources=sources, strategies=tuple(cfg.strategies),
            ratios=tuple(cfg.ratios), hard_labels=cfg.hard_labels, seeds=tuple(cfg.seeds), device=dev,
            threads=cfg.threads, workers=cfg.workers, random_real_ipc=cfg.ipc, real_hard_epochs=cfg.real_hard_epochs,
            relabel=RelabelConfig(epochs=cfg.label_epochs, batch_size=cfg.label_batch_size, crop_scale=cfg.crop_scale,
                                  seed=cfg.seed),
            student=StudentConfig(model=cfg.student_model, model_args=dict(cfg.student_args),
                                  temperature=cfg.temperature, lr=cfg.student_lr, crop_scale=cfg.crop_scale,
                                  eval_every=cfg.student_eval_every, hard_epochs=cfg.hard_epochs))
        children["sweep"], p = _run_child("sweep", run_sweep, swcfg, run_dir, resume, overwrite, p, rep, 1.0 - p)
        return summary_metrics(children)

    return jobs.run_stage("pipeline", cfg, run_dir, body, device, cfg.seed, resume, overwrite)


def summary_metrics(children: dict[str, Path]) -> dict:
    """Child paths, the teacher's accuracy, the sweep's tidy summary and its DD-Ranking rows (per synthetic
    source and label setting, mean ± std over seeds)."""
    from .runs import read_json

    sweep = read_json(children["sweep"] / "metrics.json", {})
    return {"children": {k: str(v) for k, v in children.items()},
            "teacher_test_acc": read_json(children["teacher"] / "metrics.json", {}).get("test_acc"),
            "results_csv": sweep.get("results_csv"), "results": sweep.get("summary", []),
            "dd_ranking": sweep.get("dd_ranking", []), "failed_cells": sweep.get("failed", 0)}
