"""Independent units of work (sweep cells, the pipeline's syntheses) run at once in worker processes.

A unit here is small and single-threaded on a CPU (a student of a few thousand images, a synthesis of
IPC 10): torch's intra-op threads barely help models this small, and Python threads share one
interpreter, so a 2-core machine does two units at once in two processes. Workers are forked from a fork
server that has imported torch and the runner's module once (no copy of a parent that may already run
OpenMP threads); each builds its own runner from a picklable factory (`factory(*args)`, e.g. one that
loads a test set once) and calls it on the units it is handed. A runner's exception reaches the parent
where its result is read. Leaving the `with` block (all done, an error, or `Cancelled` in the parent)
terminates the workers: each gets SIGTERM, which a stage job running in one records as cancelled before
the worker exits.
"""
from __future__ import annotations

import multiprocessing
import os
from typing import Any, Callable, Iterable, Iterator

_RUNNER: Callable[[Any], Any] | None = None  # the worker process's runner, built by _start


def threads_per_worker(workers: int, threads: int = 0) -> int:
    """torch CPU threads of each worker: `threads` when set, else the cores shared out (at least 1)."""
    return threads or max(1, (os.cpu_count() or 1) // workers)


def _start(factory: Callable[..., Callable[[Any], Any]], args: tuple, threads: int) -> None:
    import torch

    global _RUNNER
    torch.set_num_threads(threads)
    _RUNNER = factory(*args)


def _call(unit) -> Any:
    from .jobs import Cancelled

    try:
        return _RUNNER(unit)
    except Cancelled as exc:  # a stage job turned the pool's SIGTERM into Cancelled (recording its run cancelled):
        raise SystemExit(f"worker {os.getpid()}: {exc}") from None  # end the process as terminate() asked


class WorkerPool:
    """`workers` processes, each with `factory(*args)` as its runner and `threads` torch threads.

        with WorkerPool(2, _SweepCells, (cfg, run_dir, "cpu"), threads=1) as pool:
            for result in pool.run(units):   # runner(unit), in the order units finish
                ...
    """

    def __init__(self, workers: int, factory: Callable[..., Callable[[Any], Any]], args: tuple, threads: int):
        if workers < 2:
            raise ValueError(f"a worker pool needs 2 or more workers, got {workers}; run the units in this process")
        self.workers, self.factory, self.args, self.threads = workers, factory, args, threads
        self._pool = None

    def __enter__(self) -> "WorkerPool":
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(["torch", self.factory.__module__])
        self._pool = ctx.Pool(self.workers, initializer=_start, initargs=(self.factory, self.args, self.threads))
        return self

    def run(self, units: Iterable) -> Iterator[Any]:
        return self._pool.imap_unordered(_call, units)

    def __exit__(self, *exc) -> None:
        self._pool.terminate()
        self._pool.join()
