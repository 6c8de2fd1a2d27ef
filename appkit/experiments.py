"""Experiments: the groups of runs a view shows by default, and the sweep rows that belong to a run.

An experiment is a pipeline run (the quick start: its `NAME-*` children) or a sweep (its sources).
Views default to the image sets of one named experiment, never to "the newest N runs", so one extra
run on disk does not change what a page or a report shows. Sweep rows are matched to a run by the
run's folder (the sweep's `sources` map a source key to an image-set path), never by method name:
two SRe2L runs have the same method and different accuracies.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from distill_core import runs

from . import runs_view
from .paths import runs_root


@dataclass
class Experiment:
    name: str  # the pipeline or sweep run's name
    kind: str  # "pipeline" | "sweep"
    image_sets: list[str] = field(default_factory=list)  # run names under the runs root, in the experiment's order
    sweeps: list[Path] = field(default_factory=list)  # sweep run folders whose results belong to it
    teacher: Path | None = None

    @property
    def label(self) -> str:
        return f"{self.name} ({self.kind}, {len(self.image_sets)} image sets)"


def _same(a: Path | str, b: Path | str) -> bool:
    try:
        return Path(a).resolve() == Path(b).resolve()
    except OSError:
        return False


def sweep_sources(sweep_dir: Path) -> dict[str, Path]:
    """Source key -> image-set folder of a sweep run (from its resolved config.yaml)."""
    cfg = runs.load_run(sweep_dir).config if Path(sweep_dir).is_dir() else {}
    return {str(k): Path(str(v)) for k, v in (cfg.get("sources") or {}).items()}


def _pipeline(info: runs.RunInfo, finished: dict[Path, str]) -> Experiment:
    children = {k: Path(v) for k, v in (info.metrics.get("children") or {}).items()}
    if not children:  # still running: children are known by name
        children = {p.name[len(info.name) + 1:]: p for p in info.path.parent.glob(f"{info.name}-*") if p.is_dir()}
    sets = [finished[p.resolve()] for k, p in children.items() if k not in ("teacher", "sweep")
            and p.resolve() in finished]
    sweep = children.get("sweep")
    return Experiment(info.name, "pipeline", sets, [sweep] if sweep and sweep.is_dir() else [], children.get("teacher"))


def list_experiments(root: Path | None = None) -> list[Experiment]:
    """Pipelines first, then sweeps that no pipeline owns; newest first within each."""
    all_runs = runs.list_runs(root or runs_root())
    finished = {r.path.resolve(): r.name for r in all_runs if (r.path / "images.pt").is_file() and r.state == "done"}
    pipes = [_pipeline(r, finished) for r in all_runs if runs_view.kind(r) == "pipeline"]
    owned = {p.resolve() for e in pipes for p in e.sweeps}
    sweeps = []
    for r in all_runs:
        if runs_view.kind(r) != "sweep" or r.path.resolve() in owned:
            continue
        sets = [finished[p.resolve()] for p in sweep_sources(r.path).values() if p.resolve() in finished]
        teacher = r.config.get("teacher")
        sweeps.append(Experiment(r.name, "sweep", sets, [r.path], Path(teacher) if teacher else None))
    return [e for e in pipes + sweeps if e.image_sets]


def sweeps_covering(run_dir: Path, root: Path | None = None) -> list[tuple[Path, str]]:
    """(sweep folder, source key) of every sweep that used the image set in `run_dir` as a source."""
    out = []
    for r in runs.list_runs(root or runs_root()):
        if runs_view.kind(r) != "sweep":
            continue
        for key, path in sweep_sources(r.path).items():
            if _same(path, run_dir):
                out.append((r.path, key))
    return out


def rows_for_run(run_dir: Path, root: Path | None = None) -> tuple[list[dict], list[str]]:
    """The sweep result rows of the image set in `run_dir` (every covering sweep, its source key only),
    and the names of those sweeps. Rows keep their columns; `sweep` names the sweep they came from."""
    rows, names = [], []
    for sweep_dir, key in sweeps_covering(run_dir, root):
        path = runs_view.find_csv(sweep_dir, ("accuracy", "source"))
        if path is None:
            continue
        names.append(sweep_dir.name)
        rows += [{**r, "sweep": sweep_dir.name} for r in runs_view.read_csv_rows(path) if str(r.get("source")) == key]
    return rows, names


def teacher_accuracy(sweep_dir: Path) -> float | None:
    """Test top-1 of the teacher a sweep relabelled with (its metrics.json), None when unknown."""
    teacher = runs.load_run(sweep_dir).config.get("teacher")
    if not teacher or not Path(str(teacher)).is_dir():
        return None
    acc = runs.read_json(Path(str(teacher)) / "metrics.json", {}).get("test_acc")
    return float(acc) if isinstance(acc, (int, float)) else None
