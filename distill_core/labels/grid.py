"""A grid of cells (one student each) into a tidy, resumable results CSV, run one by one or at once in
worker processes.

`run_grid` skips the cells whose row in the CSV is ok, turns a cell's exception into a `failed` row and goes
on, and rewrites the CSV after every cell, so an interrupted grid resumes from its finished cells.

With a pool (`cell_pool`, worker processes of `distill_core.workers`), cells run at once and their rows
are written as they finish; each worker turns its cell's exception into the failed row itself.
"""
from __future__ import annotations

import csv
import dataclasses
import io
import time
import traceback
from pathlib import Path
from typing import Any, Callable

from ..workers import WorkerPool

RESULTS_FILE = "results.csv"


def attempt(run_one: Callable[[Any], dict], cell) -> tuple[Any, dict]:
    """(cell, its row): run_one's row, or a `failed` row with the error and a short traceback; the row's
    `seconds` is the cell's wall time. `Cancelled` propagates: it ends the grid, not the cell."""
    start = time.time()
    try:
        row = run_one(cell)
    except Exception as exc:  # one bad cell must not end the grid; its error is the row
        row = dataclasses.asdict(cell) | {"status": "failed", "error": f"{type(exc).__name__}: {exc}",
                                          "traceback": traceback.format_exc(limit=4)}
    return cell, row | {"seconds": round(time.time() - start, 2)}


class _Attempting:
    """A pool worker's cell runner: `factory(*args)`'s row for a cell, or its failed row (see `attempt`)."""

    def __init__(self, factory: Callable[..., Callable[[Any], dict]], *args):
        self.run_one = factory(*args)

    def __call__(self, cell) -> tuple[Any, dict]:
        return attempt(self.run_one, cell)


def cell_pool(workers: int, factory: Callable[..., Callable[[Any], dict]], args: tuple, threads: int) -> WorkerPool:
    """Worker processes for `run_grid`, each running cells with `factory(*args)` and yielding (cell, row).

        with cell_pool(2, _SweepCells, (cfg, run_dir, "cpu"), threads=1) as pool:
            rows = run_grid(cells, ..., pool=pool)
    """
    return WorkerPool(workers, _Attempting, (factory, *args), threads)


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
             on_progress: Callable[[float, str], None], pool: WorkerPool | None = None) -> list[dict]:
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
