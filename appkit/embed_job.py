"""Slow embeddings (t-SNE, UMAP) as background jobs: `python -m distill_core analyse` into a folder of
its own, with progress and cancel in the page, and the result read back from its embedding.json.

The folder is keyed by the runs (their paths and images' modification times), the method, the point
budget and the feature model, under `<runs>/.embeddings/`, so a reload or another page re-attaches to
the same job, and a finished one is read from disk instead of fitted again.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

from distill_core import runs
from distill_core.config import dump_yaml

from .paths import runs_root

THREADS = 1  # one OpenMP thread: on a shared 2-core CPU it is the fastest (bench/embedding_speed.py)


def job_dir(paths: list[str], method: str, max_points: int, feature_model: str) -> Path:
    parts = [f"{p}:{(Path(p) / 'images.pt').stat().st_mtime}" for p in sorted(paths)]
    key = hashlib.sha1("|".join([*parts, method, str(max_points), feature_model]).encode()).hexdigest()[:12]
    return runs_root() / ".embeddings" / f"{method}-{key}"


def start(paths: list[str], method: str, max_points: int, feature_model: str) -> Path:
    """Launch the embedding job for these runs (unless it is running or finished); returns its folder."""
    from distill_core.analysis.run import AnalyseConfig

    from . import jobs_ui

    out = job_dir(paths, method, max_points, feature_model)
    state = runs.read_status(out).get("state")
    if state in ("running", "queued", "done"):
        return out
    cfg = AnalyseConfig(runs=tuple(paths), embedding=method, max_points=max_points, device="cpu",
                        feature_model=feature_model, embedding_threads=THREADS)
    out.mkdir(parents=True, exist_ok=True)
    request = out.parent / f"{out.name}.yaml"
    runs.write_text_atomic(request, dump_yaml(cfg))
    (out / "status.json").unlink(missing_ok=True)  # a cancelled or failed try: the new job's status replaces it
    jobs_ui.launch(["analyse", "--config", str(request), "--out", str(out)], out)
    return out


def result(out: Path) -> dict | None:
    """The finished job's embedding.json (rows with thumbnails, method, n_total, n_shown, notes), else None."""
    if runs.read_status(out).get("state") != "done":
        return None
    return runs.read_json(Path(out) / "embedding.json", None)
