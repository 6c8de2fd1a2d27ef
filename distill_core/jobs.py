"""Running a stage as a job in a run folder, and launching jobs as subprocesses.

`run_stage` is the one place that turns an entry function into a run: it writes the resolved
config and provenance, keeps status.json current through the progress callback, turns SIGTERM
into a `cancelled` run and any exception into a `failed` run with its message, and writes
metrics.json at the end. The app starts jobs with `launch` and cancels them with `cancel`.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import traceback
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch

from . import runs
from .config import config_from_dict, config_to_dict, dump_yaml
from .runlock import RunLock

ProgressFn = Callable[[float, str], None]
FAULT_ENV = "DISTILL_FAULT_KILL_AT"  # "stage:fraction": the job SIGKILLs itself there (fault-injection tests)


class Cancelled(BaseException):
    """Raised inside a job when it receives SIGTERM (the app's cancel button, or a worker pool ending).

    A BaseException, as KeyboardInterrupt: the signal can land inside any code, and an `except Exception`
    there (a reader that turns a damaged file into "unreadable", a library's fallback) must not swallow
    the cancel and let the job go on."""


@dataclass
class JobContext:
    """What a stage's job body gets: where to write, how to report."""

    run_dir: Path
    resume: bool
    device: torch.device
    report: ProgressFn  # report(progress in [0, 1], message)


class _StatusReporter:
    """Writes status.json at most every `interval` seconds (and always at 0 and 1); echoes a
    progress line to stderr (the job's log) at most every `echo_interval` seconds."""

    def __init__(self, run_dir: Path, stage: str, interval: float = 0.5, echo_interval: float = 5.0):
        self.run_dir, self.stage, self.interval, self.echo_interval = run_dir, stage, interval, echo_interval
        self.last = self.last_echo = 0.0
        where, _, at = os.environ.get(FAULT_ENV, "").partition(":")
        self.kill_at = float(at) if where == stage and at else None

    def __call__(self, progress: float, message: str = "", **extra: Any) -> None:
        if self.kill_at is not None and self.kill_at <= progress < 1.0:
            os.kill(os.getpid(), signal.SIGKILL)  # a crash at a chosen point, for the fault-injection suite
        now = time.monotonic()
        if progress in (0.0, 1.0) or now - self.last >= self.interval or extra:
            runs.write_status(self.run_dir, "running", progress, message, stage=self.stage, **extra)
            self.last = now
        if progress in (0.0, 1.0) or now - self.last_echo >= self.echo_interval:
            print(f"[{self.stage}] {100 * progress:5.1f}%  {message}", file=sys.stderr, flush=True)
            self.last_echo = now


def _check_resume_config(run_dir: Path, cfg: Any) -> None:
    """On resume, the stored config must equal the new one (except the device)."""
    stored_path = run_dir / "config.yaml"
    if not stored_path.is_file():
        return
    from .config import load_yaml

    stored = config_to_dict(config_from_dict(type(cfg), load_yaml(stored_path)))
    new = config_to_dict(cfg)
    diff = [k for k in new if k != "device" and stored.get(k) != new[k]]
    if diff:
        raise ValueError(
            f"--resume with a different config than {stored_path} (fields: {', '.join(diff)}); "
            "resume with the stored settings or start a new --run-dir"
        )


def run_stage(
    stage: str,
    cfg: Any,
    run_dir: Path,
    body: Callable[[JobContext], dict],
    device: torch.device,
    seed: int | None,
    resume: bool = False,
    overwrite: bool = False,
) -> dict:
    """Run `body` as stage `stage` in `run_dir`; returns its metrics. Re-raises after recording failure.

    The folder's RunLock is held from before anything is written (or deleted, with overwrite) until
    the run is recorded as done, failed or cancelled; a folder in use raises ValueError and is left
    untouched.
    """
    run_dir = Path(run_dir)
    runs.check_run_target(run_dir, resume=resume, overwrite=overwrite)
    created = not run_dir.exists()
    run_dir.mkdir(parents=True, exist_ok=True)
    try:
        lock = RunLock(run_dir).acquire()
    except BaseException:
        if created:
            run_dir.rmdir()
        raise
    try:
        return _run_locked(stage, cfg, run_dir, body, device, seed, resume, overwrite, lock)
    finally:
        lock.release()


def _run_locked(stage: str, cfg: Any, run_dir: Path, body: Callable[[JobContext], dict], device: torch.device,
                seed: int | None, resume: bool, overwrite: bool, lock: RunLock) -> dict:
    runs.prepare_run_dir(run_dir, resume=resume, overwrite=overwrite, locked=True)
    if resume:
        _check_resume_config(run_dir, cfg)
    runs.write_json_atomic(run_dir / "provenance.json", runs.provenance(device, seed, stage))
    runs.write_text_atomic(run_dir / "config.yaml", dump_yaml(cfg))
    reporter = _StatusReporter(run_dir, stage)
    note = f"; recovered the stale lock of {lock.recovered}, which ended without finishing" if lock.recovered else ""
    on_term = _CancelOnTerm()
    previous = signal.signal(signal.SIGTERM, on_term) if _main_thread() else None  # before status says running
    try:
        reporter(0.0, "starting" + note)
        metrics = body(JobContext(run_dir, resume, device, reporter))
    except Cancelled as exc:
        with on_term.held():
            runs.write_status(run_dir, "cancelled", _progress(run_dir), str(exc), stage=stage)
        raise
    except BaseException as exc:
        with on_term.held():
            runs.write_status(run_dir, "failed", _progress(run_dir), f"{type(exc).__name__}: {exc}", stage=stage,
                              error=str(exc), traceback=traceback.format_exc(limit=8))
        raise
    else:
        with on_term.held():
            runs.write_json_atomic(run_dir / "metrics.json", metrics)
            runs.write_status(run_dir, "done", 1.0, "finished", stage=stage)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    return metrics


class _CancelOnTerm:
    """A running stage's SIGTERM handler: raises `Cancelled` in the job's code, but while the job's outcome
    is being written (`held`) it only notes the signal and raises once the outcome is on disk. A worker
    pool ends its workers with SIGTERM the moment one fails; a worker whose own failure was half-written
    at that moment would otherwise leave a `running` status behind a dead process."""

    def __init__(self):
        self.holding, self.pending = False, None

    def __call__(self, signum, frame):
        if self.holding:
            self.pending = signum
            return
        raise Cancelled(f"cancelled by signal {signum}")

    @contextmanager
    def held(self):
        self.holding = True
        try:
            yield
        finally:
            self.holding = False
        if self.pending is not None:
            raise Cancelled(f"cancelled by signal {self.pending} (after the run's outcome was recorded)")


def _main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()


def _progress(run_dir: Path) -> float:
    try:
        return float(runs.read_status(run_dir).get("progress", 0.0))
    except (TypeError, ValueError):
        return 0.0


# ---------------------------------------------------------------------------------------------
# subprocess jobs (used by the app)


def launch(args: list[str], run_dir: Path, cwd: Path | None = None) -> int:
    """Start `python -m distill_core <args>` detached; log to run_dir/job.log; returns the pid.

    status.json is written as `queued` with the pid at once, so a page reload finds the job. A folder
    in use by another job, or one that holds files but is not a run, raises ValueError and nothing starts.
    """
    run_dir = Path(run_dir)
    runs.check_run_name(run_dir)
    holder = runs.lock_holder(run_dir) if run_dir.is_dir() else None
    if holder is not None:
        raise ValueError(f"run folder {run_dir} is in use by {holder}; wait for that job, cancel it, "
                         "or choose another name")
    if run_dir.is_dir() and any(run_dir.iterdir()) and not runs.is_run(run_dir):
        raise ValueError(f"{run_dir} holds files but is not a distill_core run; choose another name")
    run_dir.mkdir(parents=True, exist_ok=True)
    log = open(run_dir / "job.log", "ab")
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "distill_core", *args], stdout=log, stderr=subprocess.STDOUT,
        cwd=str(cwd or Path.cwd()), env=env, start_new_session=True,
    )
    log.close()
    if not (run_dir / "status.json").exists():
        runs.write_status(run_dir, "queued", 0.0, "starting", pid=proc.pid)
    return proc.pid


def cancel(run_dir: Path) -> bool:
    """Send SIGTERM to a run's process (it marks itself cancelled). False when nothing was running."""
    status = runs.read_status(Path(run_dir))
    pid = status.get("pid")
    if status.get("state") not in ("running", "queued") or not pid:
        return False
    try:
        os.kill(int(pid), signal.SIGTERM)
    except ProcessLookupError:
        return False
    return True


def log_tail(run_dir: Path, lines: int = 20) -> str:
    path = Path(run_dir) / "job.log"
    if not path.is_file():
        return ""
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
