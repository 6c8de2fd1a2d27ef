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

A job holds `RunLock` (an flock on `.distill.lock` with its pid and host) for as long as it runs, so a
second job into the same folder is refused. `remove_run` is the only place that deletes a folder: it
deletes only a distill_core run (status.json or provenance.json written by a stage) that is not
running and is not the runs root, the working folder or one of its parents.
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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch

from .runlock import LOCK_FILE, lock_holder

STATES = ("queued", "running", "done", "failed", "cancelled", "interrupted")
DEFAULT_ROOT = Path(os.environ.get("DISTILL_RUNS", "runs"))
LAUNCH_FILES = frozenset({"job.log", "status.json", LOCK_FILE})  # written by jobs.launch / the lock before a stage
MAX_RUN_NAME = 120  # bytes; leaves room under the 255-byte file-name limit for children and temp files


# ---------------------------------------------------------------------------------------------
# atomic writes


class _WriteErrors:
    """A file wrapper that remembers the OSError of a failed write: torch.save reports a full disk as a
    RuntimeError ("unexpected pos ..."), which is turned back into that OSError."""

    def __init__(self, fh):
        self.fh, self.error = fh, None

    def write(self, data):
        try:
            return self.fh.write(data)
        except OSError as exc:
            self.error = exc
            raise

    def __getattr__(self, name):
        return getattr(self.fh, name)


def _write_atomic(path: Path, write: Callable[[Any], None], mode: str) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode) as fh:
            guarded = _WriteErrors(fh)
            try:
                write(guarded)
                fh.flush()
            except RuntimeError as exc:
                if guarded.error is not None:
                    raise guarded.error from exc
                raise
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
        lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
        detail = next((ln for ln in lines if "GLOBAL" in ln or ln.startswith("Unsupported")), lines[0] if lines else "")
        raise ValueError(
            f"{path} is corrupt or not a distill_core artifact ({type(exc).__name__}: {printable(detail[:200])}); "
            "delete it and re-run the stage (with --resume where the stage supports it)"
        ) from exc


def load_artifact(path: Path | str, schema: str, what: str) -> dict:
    """`load_tensors` of a versioned artifact: ValueError "PATH is not a distill_core WHAT (schema S)"
    when the file is not a dict carrying `schema`. The one schema check every artifact reader uses."""
    raw = load_tensors(path)
    if not isinstance(raw, dict) or raw.get("schema") != schema:
        raise ValueError(f"{path} is not a distill_core {what} (schema {schema})")
    return raw


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
    check_run_name(Path(name))
    return resolve_run_dir(name, root)


def check_run_name(run_dir: Path) -> None:
    """ValueError for a run folder name longer than MAX_RUN_NAME bytes or holding control characters."""
    name = Path(run_dir).name
    if len(name.encode()) > MAX_RUN_NAME:
        raise ValueError(f"run name {printable(name[:40])}... is {len(name.encode())} bytes long; "
                         f"use at most {MAX_RUN_NAME} (room is needed for child runs and temporary files)")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in name):
        raise ValueError(f"run name {printable(name)} holds control characters; use letters, digits, '-', '_' or '.'")


def _holds_only_launch_files(run_dir: Path) -> bool:
    return all(p.name in LAUNCH_FILES for p in run_dir.iterdir())


def check_run_target(run_dir: Path, resume: bool = False, overwrite: bool = False, locked: bool = False) -> None:
    """Refuse, before anything is written, a --run-dir a stage must not start in (see prepare_run_dir)."""
    run_dir = Path(run_dir)
    if resume and overwrite:
        raise ValueError("choose either --resume or --overwrite, not both")
    check_run_name(run_dir)
    exists = run_dir.is_dir() and not _holds_only_launch_files(run_dir)
    if run_dir.exists() and not run_dir.is_dir():
        raise ValueError(f"{run_dir} is a file, not a run folder; choose another --run-dir")
    if resume and not exists:
        raise ValueError(f"cannot --resume: {run_dir} does not exist or is empty")
    if exists and not (resume or overwrite):
        raise ValueError(f"run directory {run_dir} already exists; pass --resume to continue it, "
                         "--overwrite to replace it, or choose another --run-dir")
    if exists and resume and not is_run(run_dir):
        raise ValueError(f"cannot --resume: {run_dir} is not a distill_core run (no status.json or "
                         "provenance.json); choose another --run-dir")
    if exists and overwrite:
        check_removable(run_dir, locked=locked)


def prepare_run_dir(run_dir: Path, resume: bool = False, overwrite: bool = False, locked: bool = False) -> Path:
    """Create `run_dir`; refuse an existing non-empty one unless resume or overwrite is given.

    With overwrite, the old run's files go through `remove_run` (only a run that is not running);
    `locked` says the caller holds the folder's RunLock (its lock file and job.log are kept).
    """
    run_dir = Path(run_dir)
    check_run_target(run_dir, resume, overwrite, locked)
    if overwrite and run_dir.is_dir() and not _holds_only_launch_files(run_dir):
        remove_run(run_dir, keep=(LOCK_FILE, "job.log") if locked else (), locked=locked)
    run_dir.mkdir(parents=True, exist_ok=True)
    return run_dir


# ---------------------------------------------------------------------------------------------
# deletion: the one function that removes a folder


def is_run(run_dir: Path) -> bool:
    """True when `run_dir` holds the record a distill_core stage writes: a status.json whose state is
    a run state, or a provenance.json naming a stage. A folder with only config.yaml is not a run."""
    run_dir = Path(run_dir)
    try:
        status = json.loads((run_dir / "status.json").read_text()) if (run_dir / "status.json").is_file() else None
    except (OSError, ValueError):
        status = None
    if isinstance(status, dict) and status.get("state") in STATES:
        return True
    try:
        prov = json.loads((run_dir / "provenance.json").read_text()) if (run_dir / "provenance.json").is_file() else None
    except (OSError, ValueError):
        prov = None
    return isinstance(prov, dict) and isinstance(prov.get("stage"), str)


def _protected(real: Path) -> str | None:
    """Why `real` (a resolved path) may never be deleted, or None."""
    cwd = Path.cwd().resolve()
    if real == cwd or real in cwd.parents:
        return "the current working folder or one of its parents"
    if real == DEFAULT_ROOT.resolve() or real == Path(os.environ.get("DISTILL_RUNS", "runs")).resolve():
        return "the runs root"
    if real == Path.home().resolve() or real.parent == real:
        return "a home or root folder"
    return None


def check_removable(run_dir: Path, root: Path | str | None = None, locked: bool = False) -> Path:
    """The resolved folder `remove_run` would delete; ValueError naming the path when it must not."""
    run_dir = Path(run_dir)
    if run_dir.is_symlink():
        raise ValueError(f"{run_dir} is a symbolic link; nothing was deleted. Remove the link yourself "
                         "or point --run-dir at the run folder itself")
    real = run_dir.resolve()
    if not real.is_dir():
        raise ValueError(f"{run_dir} is not a folder; nothing was deleted")
    why = _protected(real)
    if why is None and root is not None and real == Path(root).resolve():
        why = "the runs root"
    if why:
        raise ValueError(f"refusing to delete {real}: it is {why}; name a run folder inside it instead")
    if root is not None and real.parent != Path(root).resolve():
        raise ValueError(f"{real} is not a run inside {Path(root).resolve()}; nothing was deleted")
    if not is_run(real):
        raise ValueError(f"refusing to delete {real}: it is not a distill_core run (no status.json or "
                         "provenance.json from a stage), so it may hold your own files. Nothing was deleted; "
                         "choose another --run-dir or remove the folder yourself")
    if not locked:
        holder = lock_holder(real)
        if holder is not None:
            raise ValueError(f"run {real.name} is in use by {holder}; cancel that job first (nothing was deleted)")
        status = read_status(real)
        if status.get("state") in ("running", "queued") and status.get("pid") not in (None, os.getpid()) \
                and status.get("host") == platform.node():
            raise ValueError(f"run {real.name} is still running (pid {status.get('pid')}); cancel it first "
                             "(nothing was deleted)")
    return real


def remove_run(run_dir: Path, root: Path | str | None = None, keep: tuple[str, ...] = (),
               locked: bool = False) -> None:
    """Delete a run folder (or, with `keep`, everything in it but those names), after `check_removable`.

    This is the only function in distill_core that deletes a folder. `locked`: the caller holds the
    folder's RunLock itself (so the lock is not held by anyone else).
    """
    real = check_removable(run_dir, root, locked)
    if not keep:
        shutil.rmtree(real)
        return
    for child in real.iterdir():
        if child.name in keep:
            continue
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()


def remove_partial(run_dir: Path, name: str) -> None:
    """Delete the stage's own working subfolder `name` (e.g. finished label epochs) of run `run_dir`."""
    if Path(name).name != name or name in ("", ".", ".."):
        raise ValueError(f"{name!r} is not a subfolder name")
    if not is_run(run_dir):
        raise ValueError(f"refusing to delete {Path(run_dir) / name}: {run_dir} is not a distill_core run")
    target = Path(run_dir) / name
    if target.is_dir() and not target.is_symlink():
        shutil.rmtree(target)


def delete_run(run_dir: Path, root: Path | str | None = None) -> None:
    """Delete a run folder inside `root` (`runs delete`); refuses what `check_removable` refuses."""
    remove_run(run_dir, (Path(root) if root is not None else DEFAULT_ROOT))


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
    """status.json with a dead `running` process reported as `interrupted`; an unreadable file reads as
    state `unreadable` with the reason in `message` (callers never crash on a damaged run)."""
    try:
        status = read_json(Path(run_dir) / "status.json", default=None)
    except (ValueError, OSError, UnicodeDecodeError) as exc:
        return {"state": "unreadable", "progress": 0.0, "message": f"status.json unreadable: {exc}"}
    if status is None:
        return {"state": "unknown", "progress": 0.0, "message": "no status.json"}
    if not isinstance(status, dict):
        return {"state": "unreadable", "progress": 0.0,
                "message": f"status.json holds a {type(status).__name__}, not an object; delete or repair it"}
    if status.get("state") in ("running", "queued") and status.get("host") == platform.node():
        pid = status.get("pid")
        if isinstance(pid, int) and pid > 0 and not _pid_alive(pid):
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
    status: dict = field(default_factory=dict)  # status.json as read for `state`/`progress` (read_status)


def _read_mapping(path: Path, problems: list[str]) -> dict:
    """A JSON or YAML file that should hold a mapping; {} (and a problem noted) when it does not."""
    if not path.is_file():
        return {}
    try:
        if path.suffix == ".yaml":
            import yaml

            value = yaml.safe_load(path.read_text())
        else:
            value = json.loads(path.read_text())
    except Exception as exc:  # yaml.YAMLError, JSON, decoding and OS errors: the run shows as unreadable
        problems.append(f"{path.name}: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
        return {}
    if value is None:
        return {}
    if not isinstance(value, dict):
        problems.append(f"{path.name} holds a {type(value).__name__}, not a mapping")
        return {}
    return value


def load_run(run_dir: Path) -> RunInfo:
    """One run as listed; a run whose files cannot be read has state `unreadable` and the reason in
    `message` (its config/metrics are then empty), so one damaged run never breaks a listing."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ValueError(f"run not found: {run_dir}")
    problems: list[str] = []
    config = _read_mapping(run_dir / "config.yaml", problems)
    prov = _read_mapping(run_dir / "provenance.json", problems)
    metrics = _read_mapping(run_dir / "metrics.json", problems)
    status = read_status(run_dir)
    if status.get("state") == "unreadable":
        problems.append(str(status.get("message")))
    try:
        progress = float(status.get("progress", 0.0))
    except (TypeError, ValueError):
        progress = 0.0
    stage = prov.get("stage", status.get("stage", "?"))
    message = status.get("message", "") or status.get("error", "") or ""
    try:
        modified = run_dir.stat().st_mtime
    except OSError:
        modified = 0.0
    return RunInfo(
        name=run_dir.name, path=run_dir, stage=str(stage), state="unreadable" if problems else str(status.get("state")),
        progress=progress, message="; ".join(problems) if problems else str(message),
        config=config, metrics=metrics, modified=modified, status=status,
    )


def list_runs(root: Path | str | None = None) -> list[RunInfo]:
    """All runs under `root`, newest first. Folders that are not runs are skipped; a damaged run is
    listed with state `unreadable` and the reason."""
    root = Path(root) if root is not None else DEFAULT_ROOT
    if not root.is_dir():
        return []
    runs = []
    for child in root.iterdir():
        try:
            if child.is_dir() and any((child / f).exists() for f in ("status.json", "config.yaml", "provenance.json")):
                runs.append(load_run(child))
        except (ValueError, OSError):
            continue
    return sorted(runs, key=lambda r: r.modified, reverse=True)


def printable(text: str) -> str:
    """`text` with control characters (terminal escapes, newlines) written as \\xNN escapes."""
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode() for ch in str(text))
