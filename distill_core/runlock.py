"""The run lock: one job per run folder, for the whole job.

`RunLock` takes an exclusive flock on `<run_dir>/.distill.lock` and writes its pid, host and start
time into it. The kernel drops an flock when its process dies, so a job killed with kill -9 never
blocks the next one; the pid it left in the file is reported as a recovered stale lock.
"""
from __future__ import annotations

import errno
import fcntl
import json
import os
import platform
import time
from pathlib import Path

LOCK_FILE = ".distill.lock"


def _lock_text(fd: int) -> str:
    os.lseek(fd, 0, os.SEEK_SET)
    return os.read(fd, 4096).decode(errors="replace").strip()


def _describe_holder(text: str) -> str:
    try:
        info = json.loads(text)
        return f"pid {info.get('pid')} on host {info.get('host')} (since {info.get('started')})"
    except (ValueError, AttributeError):
        return "another process"


def lock_holder(run_dir: Path) -> str | None:
    """Who holds `run_dir`'s lock ("pid N on host H (since T)"), or None when nobody does."""
    path = Path(run_dir) / LOCK_FILE
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                return _describe_holder(_lock_text(fd))
            raise
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


class RunLock:
    """An exclusive lock on a run folder for the whole job: flock on `<run_dir>/.distill.lock`.

    The kernel drops an flock when its process dies, so a job killed with kill -9 never blocks the
    next one; the pid it left in the file is reported as a recovered stale lock. A second job while
    the first runs gets a ValueError naming the holder.
    """

    def __init__(self, run_dir: Path):
        self.path = Path(run_dir) / LOCK_FILE
        self.fd: int | None = None
        self.recovered: str | None = None  # "pid N on host H (since T)" of a dead holder, if one was found

    def acquire(self) -> "RunLock":
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                text = _lock_text(fd)
                os.close(fd)
                if exc.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                    raise ValueError(f"run folder {self.path.parent} is in use by {_describe_holder(text)}; "
                                     "wait for that job, cancel it, or choose another --run-dir") from None
                raise
            try:  # the holder before us may have removed the file after we opened it: lock the new one
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        old = _lock_text(fd)
        if old:
            self.recovered = _describe_holder(old)
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, json.dumps({"pid": os.getpid(), "host": platform.node(),
                                 "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}).encode())
        self.fd = fd
        return self

    def release(self) -> None:
        """Remove the lock file and drop the lock; safe to call twice."""
        if self.fd is None:
            return
        try:
            if os.path.exists(self.path) and os.stat(self.path).st_ino == os.fstat(self.fd).st_ino:
                os.unlink(self.path)
        except OSError:
            pass
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)
        self.fd = None

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
