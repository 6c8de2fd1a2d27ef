"""A grid of cells (one student each) into a tidy, resumable results CSV, run one by one or at once in
worker processes.

`run_grid` skips the cells whose row in the CSV is ok, turns a cell's exception into a `failed` row and goes
on, and rewrites the CSV after every cell, so an interrupted grid resumes from its finished cells.

One cell of a sweep is one small student, single-threaded on a CPU: torch's intra-op threads barely help
models this small, and Python threads share one interpreter, so a 2-core machine trains two cells at once
in two processes. Workers are forked from a fork server that has imported the library once (no copy of a
parent that may already run OpenMP threads), each builds its own cell runner from a picklable factory
(`factory(*args)`, e.g. one that loads the test set and each source once), and rows come back as cells
finish. Leaving `CellPool`'s `with` block (the grid done, an error, or `Cancelled` in the parent)
terminates the workers.
"""
from __future__ import annotations

import csv
import dataclasses
import io
import multiprocessing
import os
import time
import traceback
from pathlib import Path
from typing import Any, Callable, Iterator

from ..jobs import Cancelled

RESULTS_FILE = "results.csv"
_RUNNER: Callable[[Any], dict] | None = None  # the worker process's cell runner, built by _start


def attempt(run_one: Callable[[Any], dict], cell) -> tuple[Any, dict]:
    """(cell, its row): run_one's row, or a `failed` row with the error and a short traceback; the row's
    `seconds` is the cell's wall time. `Cancelled` propagates: it ends the grid, not the cell."""
    start = time.time()
    try:
        row = run_one(cell)
    except Cancelled:
        raise
    except Exception as exc:  # one bad cell must not end the grid; its error is the row
        row = dataclasses.asdict(cell) | {"status": "failed", "error": f"{type(exc).__name__}: {exc}",
                                          "traceback": traceback.format_exc(limit=4)}
    return cell, row | {"seconds": round(time.time() - start, 2)}


def threads_per_worker(workers: int, threads: int = 0) -> int:
    """torch CPU threads of each worker: `threads` when set, else the cores shared out (at least 1)."""
    return threads or max(1, (os.cpu_count() or 1) // workers)


def _start(factory: Callable[..., Callable[[Any], dict]], args: tuple, threads: int) -> None:
    import torch

    global _RUNNER
    torch.set_num_threads(threads)
    _RUNNER = factory(*args)


def _run(cell) -> tuple[Any, dict]:
    return attempt(_RUNNER, cell)


class CellPool:
    """`workers` processes, each with `factory(*args)` as its cell runner and `threads` torch threads.

        with CellPool(2, _SweepCells, (cfg, run_dir, "cpu"), threads=1) as pool:
            for cell, row in pool.run(cells):   # in the order cells finish
                ...
    """

    def __init__(self, workers: int, factory: Callable[..., Callable[[Any], dict]], args: tuple, threads: int):
        if workers < 2:
            raise ValueError(f"a cell pool needs 2 or more workers, got {workers}; run the cells in this process")
        self.workers, self.factory, self.args, self.threads = workers, factory, args, threads
        self._pool = None

    def __enter__(self) -> "CellPool":
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(["torch", self.factory.__module__])
        self._pool = ctx.Pool(self.workers, initializer=_start, initargs=(self.factory, self.args, self.threads))
        return self

    def run(self, cells: list) -> Iterator[tuple[Any, dict]]:
        return self._pool.imap_unordered(_run, cells)

    def __exit__(self, *exc) -> None:
        self._pool.terminate()
        self._pool.join()


def read_rows(path: Path, row_key: Callable[[dict], tuple]) -> list[dict]:
    """The rows of a results CSV; a row cut short (a missing field, or a key `row_key` cannot read) is left
    out, so its cell runs again."""
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


def write_rows(path: Path, rows: list[dict], columns: tuple[str, ...]) -> None:
    from ..runs import write_text_atomic

    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    write_text_atomic(path, buf.getvalue())


def run_grid(cells: list, path: Path, columns: tuple[str, ...], row_key: Callable[[dict], tuple],
             run_one: Callable[[Any], dict], describe: Callable[[Any], str],
             on_progress: Callable[[float, str], None], pool: CellPool | None = None) -> list[dict]:
    """Run every cell (a dataclass with a `.key` matching `row_key` of its row) whose row in the CSV
    at `path` is not ok, rewriting the CSV after each one; returns the rows in cell order.

    A cell that raises becomes a `failed` row (its fields, the error and a short traceback) and the
    grid goes on; `Cancelled` ends it. Finished cells found in the CSV are skipped (resume). With a
    `pool`, the cells run in its workers (each with its own runner) and rows are written as they finish.
    """
    rows = {row_key(r): r for r in read_rows(path, row_key)}
    todo = [c for c in cells if rows.get(c.key, {}).get("status") != "ok"]

    def one_by_one():
        for i, cell in enumerate(todo):
            on_progress(1.0 - (len(todo) - i) / len(cells), f"cell {i + 1}/{len(todo)}: {describe(cell)}")
            yield attempt(run_one, cell)

    if pool is not None and todo:
        on_progress(1.0 - len(todo) / len(cells), f"{len(todo)} cells, {pool.workers} at once")
    for i, (cell, row) in enumerate(pool.run(todo) if pool is not None else one_by_one()):
        rows[cell.key] = row
        write_rows(path, [rows[c.key] for c in cells if c.key in rows], columns)
        if pool is not None:
            on_progress(1.0 - (len(todo) - i - 1) / len(cells),
                        f"{i + 1}/{len(todo)} cells done ({pool.workers} at once), last: {describe(cell)}")
    on_progress(1.0, f"{len(cells)} cells")
    return [rows[c.key] for c in cells if c.key in rows]


def grid_metrics(rows: list[dict], run_dir: Path, summary: list[dict]) -> dict:
    """metrics.json of a grid: cell counts, where its CSV is, its summary and the first errors."""
    failed = [r for r in rows if r.get("status") != "ok"]
    return {"cells": len(rows), "failed": len(failed), "results_csv": str(Path(run_dir) / RESULTS_FILE),
            "summary": summary, "errors": [r.get("error") for r in failed][:10]}
