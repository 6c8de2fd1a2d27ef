"""The run store: one folder per run, every write atomic.

A run folder `runs/<name>/` holds:
  config.yaml      the resolved stage config
  provenance.json  git commit, torch/CUDA versions, device, seed, command line
  status.json      state (queued|running|done|failed|cancelled), progress in [0, 1], message, error, pid
  metrics.json     the stage's summary numbers
  *.pt             artifacts: plain tensors/dicts, loaded with torch.load(weights_only=True)

Every file is written to a temporary sibling and renamed over the target, so a crash mid-write
leaves the previous version intact. A run whose status says running but whose process is gone is
reported as `interrupted` (resumable with --resume).
"""
from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch

STATES = ("queued", "running", "done", "failed", "cancelled", "interrupted")
DEFAULT_ROOT = Path(os.environ.get("DISTILL_RUNS", "runs"))
LAUNCH_FILES = frozenset({"job.log", "status.json"})  # written by jobs.launch before the stage starts


# ---------------------------------------------------------------------------------------------
# atomic writes


def _write_atomic(path: Path, write: Callable[[Any], None], mode: str) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode) as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text_atomic(path: Path, text: str) -> None:
    _write_atomic(path, lambda fh: fh.write(text), "w")


def write_json_atomic(path: Path, obj: Any) -> None:
    write_text_atomic(path, json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n")


def write_bytes_atomic(path: Path, data: bytes) -> None:
    _write_atomic(path, lambda fh: fh.write(data), "wb")


def save_tensors(path: Path, obj: dict) -> None:
    """torch.save a dict of tensors / plain values atomically."""
    _write_atomic(path, lambda fh: torch.save(obj, fh), "wb")


def load_tensors(path: Path, map_location: str | torch.device = "cpu") -> dict:
    """torch.load with weights_only=True; a missing or corrupt file raises ValueError naming it."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"artifact not found: {path}")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # pickle/zip errors come in many types
        raise ValueError(
            f"{path} is corrupt or not a distill_core artifact ({type(exc).__name__}: {exc}); "
            "delete it and re-run the stage (with --resume where the stage supports it)"
        ) from exc


def read_json(path: Path, default: Any = None) -> Any:
    path = Path(path)
    if not path.is_file():
        return default
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is not valid JSON ({exc}); delete or repair it") from exc


def _json_default(obj: Any) -> Any:
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, torch.Tensor):
        return obj.tolist()
    if hasattr(obj, "item"):
        return obj.item()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


# ---------------------------------------------------------------------------------------------
# run folders


def resolve_run_dir(name: str | Path, root: Path | str | None = None) -> Path:
    """Path of run `name` inside `root`. A bare name is joined to root; a path is taken as given.

    A bare name must stay inside root: "../x", absolute names and separators are refused.
    """
    root = Path(root) if root is not None else DEFAULT_ROOT
    name_str = str(name)
    if not name_str or name_str.strip() in (".", ".."):
        raise ValueError(f"invalid run name {name_str!r}: use letters, digits, '-', '_' or '.'")
    candidate = Path(name_str)
    if len(candidate.parts) == 1 and not candidate.is_absolute():
        path = (root / candidate).resolve()
        if path.parent != root.resolve():
            raise ValueError(f"run name {name_str!r} escapes the runs directory {root}")
        return path
    return candidate.resolve()


def safe_run_name(name: str, root: Path | str | None = None) -> Path:
    """Like resolve_run_dir but only accepts a bare name (used for names typed in the app)."""
    allowed = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.+")
    if not name or set(name) - allowed or name.startswith("."):
        raise ValueError(f"invalid run name {name!r}: use letters, digits, '-', '_', '+' or '.' (not first)")
    return resolve_run_dir(name, root)


def prepare_run_dir(run_dir: Path, resume: bool = False, overwrite: bool = False) -> Path:
    """Create `run_dir`; refuse an existing non-empty one unless resume or overwrite is given."""
    run_dir = Path(run_dir)
    if resume and overwrite:
        raise ValueError("choose either --resume or --overwrite, not both")
    if run_dir.exists() and any(p.name not in LAUNCH_FILES for p in run_dir.iterdir()):
        if overwrite:
            shutil.rmtree(run_dir)
        elif not resume:
            raise ValueError(
                f"run directory {run_dir} already exists; pass --resume to continue it, "
                "--overwrite to replace it, or choose another --run-dir"
            )
    elif resume:
        raise ValueError(f"cannot --resume: {run_dir} does not exist or is empty")
    run_dir.mkdir(parents=True, exist_ok=True)
    return run_dir


def git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent, capture_output=True, text=True, timeout=5
        )
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def provenance(device: torch.device | str, seed: int | None, stage: str) -> dict:
    dev = torch.device(device)
    return {
        "stage": stage,
        "git_commit": git_commit(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "device": str(dev),
        "device_name": torch.cuda.get_device_name(dev) if dev.type == "cuda" else platform.processor() or "cpu",
        "python": platform.python_version(),
        "host": platform.node(),
        "seed": seed,
        "argv": sys.argv,
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


# ---------------------------------------------------------------------------------------------
# status


def _pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie child of ours counts as gone
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(") ")[-1][:1] != "Z"
    except OSError:
        return True


def write_status(run_dir: Path, state: str, progress: float = 0.0, message: str = "", **extra: Any) -> dict:
    if state not in STATES:
        raise ValueError(f"unknown state {state!r}; one of {STATES}")
    status = {
        "state": state,
        "progress": float(min(max(progress, 0.0), 1.0)),
        "message": message,
        "pid": os.getpid() if state == "running" else extra.pop("pid", None),
        "host": platform.node(),
        "updated": time.time(),
        **extra,
    }
    write_json_atomic(Path(run_dir) / "status.json", status)
    return status


def read_status(run_dir: Path) -> dict:
    """status.json with a dead `running` process reported as `interrupted`."""
    status = read_json(Path(run_dir) / "status.json", default=None)
    if status is None:
        return {"state": "unknown", "progress": 0.0, "message": "no status.json"}
    if status.get("state") in ("running", "queued") and status.get("host") == platform.node():
        if status.get("pid") and not _pid_alive(status["pid"]):
            status = {**status, "state": "interrupted", "message": "process ended without finishing; --resume continues it"}
    return status


# ---------------------------------------------------------------------------------------------
# listing


@dataclass(frozen=True)
class RunInfo:
    """One run as listed by `list_runs`."""

    name: str
    path: Path
    stage: str
    state: str
    progress: float
    message: str
    config: dict
    metrics: dict
    modified: float


def load_run(run_dir: Path) -> RunInfo:
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ValueError(f"run not found: {run_dir}")
    import yaml

    cfg_path = run_dir / "config.yaml"
    config = yaml.safe_load(cfg_path.read_text()) if cfg_path.is_file() else {}
    prov = read_json(run_dir / "provenance.json", default={}) or {}
    status = read_status(run_dir)
    return RunInfo(
        name=run_dir.name,
        path=run_dir,
        stage=prov.get("stage", status.get("stage", "?")),
        state=status.get("state", "unknown"),
        progress=float(status.get("progress", 0.0)),
        message=status.get("message", "") or status.get("error", "") or "",
        config=config or {},
        metrics=read_json(run_dir / "metrics.json", default={}) or {},
        modified=run_dir.stat().st_mtime,
    )


def list_runs(root: Path | str | None = None) -> list[RunInfo]:
    """All runs under `root`, newest first. Folders that are not runs are skipped."""
    root = Path(root) if root is not None else DEFAULT_ROOT
    if not root.is_dir():
        return []
    runs = []
    for child in root.iterdir():
        if child.is_dir() and ((child / "status.json").exists() or (child / "config.yaml").exists()):
            try:
                runs.append(load_run(child))
            except (ValueError, OSError):
                continue
    return sorted(runs, key=lambda r: r.modified, reverse=True)


def delete_run(run_dir: Path, root: Path | str | None = None) -> None:
    """Delete a run folder; refuses paths outside root and runs still running."""
    root = (Path(root) if root is not None else DEFAULT_ROOT).resolve()
    run_dir = Path(run_dir).resolve()
    if run_dir.parent != root:
        raise ValueError(f"{run_dir} is not a run inside {root}")
    if read_status(run_dir).get("state") == "running":
        raise ValueError(f"run {run_dir.name} is still running; cancel it first")
    shutil.rmtree(run_dir)
