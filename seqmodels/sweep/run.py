"""Run a sweep: every cell of a grid on an executor, each stored as it finishes.

:func:`run_sweep` opens the results folder (:class:`~seqmodels.sweep.store.SweepStore`),
skips the cells already there when resuming, submits the rest largest first
(the slowest cells start first, so no worker idles at the end waiting for a
big one), writes each cell's rows the moment it finishes and shows a tqdm bar
over cells with an ETA.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Iterable
from concurrent.futures import FIRST_COMPLETED, Executor, Future, wait
from contextlib import ExitStack

import pandas as pd
from tqdm.auto import tqdm

from seqmodels._io import folder_lock
from seqmodels.compare.executors import InlineExecutor, check_executor
from seqmodels.sweep.cell import run_cell
from seqmodels.sweep.engines import default_workers, local_engine
from seqmodels.sweep.grid import GridCell, SweepGrid
from seqmodels.sweep.store import SweepStore, check_folder

logger = logging.getLogger(__name__)


class SweepError(RuntimeError):
    """Some cells failed; the others are stored, and a resumed run retries the failed ones."""


def run_sweep(grid: SweepGrid, out: str | os.PathLike, *, executor: Executor | None = None,
              resume: bool = False, progress: bool = True) -> pd.DataFrame:
    """Run every cell of ``grid`` and store the rows in ``out``.

    Parameters
    ----------
    grid : SweepGrid
    out : str or os.PathLike
        The results folder: new or empty, or with ``resume`` one holding the
        same grid. Locked while the sweep runs.
    executor : concurrent.futures.Executor, optional
        Where cells run (:func:`~seqmodels.sweep.engines.local_engine`,
        :func:`~seqmodels.sweep.engines.dask_engine`, or any other). Default:
        one local process per core, made and closed by this call.
    resume : bool
        Keep the cells already stored in ``out`` and run the others.
    progress : bool
        A tqdm bar over cells, with an ETA.

    Returns
    -------
    pandas.DataFrame
        Every cell's tidy rows (``seqmodels.sweep.cell.COLUMNS``), in grid
        order; also written to ``out/results.csv``.

    Raises
    ------
    ValueError
        ``grid`` not a SweepGrid; ``out`` unusable, or holding another grid
        (named differences); a cell too large for the memory available.
    SweepError
        After every other cell ran, if some cells raised (each named).
    """
    if not isinstance(grid, SweepGrid):
        raise ValueError(f"grid must be a SweepGrid, got {type(grid).__name__}")
    check_executor(executor)
    check_cell_memory(grid)
    check_folder(out, grid, resume)  # before the lock file is made beside it
    with folder_lock(out):
        store = SweepStore.open(out, grid, resume)
        done = store.finished()
        todo = largest_first(point for point in grid.cells() if point.key not in done)
        logger.info("sweep: %d cells stored, %d to run", len(done), len(todo))
        with ExitStack() as stack, tqdm(total=len(done) + len(todo), initial=len(done),
                                        desc="sweep", unit="cell", disable=not progress) as bar:
            if executor is None:
                executor = stack.enter_context(local_engine(default_workers()))
            failures = _run_cells(todo, grid, executor, store, bar)
        rows = store.write_results()  # what finished, even if some cells failed
    if failures:
        shown = "; ".join(failures[:5]) + (" ..." if len(failures) > 5 else "")
        raise SweepError(f"{len(failures)} of {len(todo)} cells failed (the others are stored "
                         f"in {str(out)!r}; resume to retry): {shown}")
    return rows


def largest_first(cells: Iterable[GridCell]) -> list[GridCell]:
    """Cells by decreasing training size, Baum-Welch (the slower kind) first at each size."""
    return sorted(cells, key=lambda point: (-point.n_train, point.kind != "hmm"))


def check_cell_memory(grid: SweepGrid) -> None:
    """Refuse a grid whose largest cell cannot fit in memory, before any cell starts.

    Builds the comparison settings of the grid's largest cells (most training
    sequences, widest RNN, each preset), whose validation refuses a run that
    cannot fit (:meth:`ComparisonConfig.bytes_needed`). Each worker process
    needs at least that much.
    """
    for preset in grid.preset:
        dataclasses.replace(grid.settings, preset=preset, n_train=max(grid.n_train),
                            hidden=max(grid.hidden))


def _run_cells(todo: list[GridCell], grid: SweepGrid, executor: Executor, store: SweepStore,
               bar: tqdm) -> list[str]:
    """Submit, collect and store every cell of ``todo``; the failures, one line each.

    An :class:`InlineExecutor` runs a cell inside ``submit``, so it gets one
    cell at a time (each stored before the next starts); other executors get
    them all and queue them.
    """
    window = 1 if isinstance(executor, InlineExecutor) else max(len(todo), 1)
    queue, running, failures = iter(todo), {}, []
    try:
        while True:
            for point in queue:
                running[executor.submit(run_cell, point, grid.settings)] = point
                if len(running) >= window:
                    break
            if not running:
                return failures
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                _collect(running.pop(future), future, store, failures)
                bar.update()
    finally:
        for future in running:
            future.cancel()


def _collect(point: GridCell, future: Future, store: SweepStore, failures: list[str]) -> None:
    try:
        rows = future.result()
    except Exception as err:  # one cell's failure must not cost the others
        logger.error("sweep: cell %s failed: %s: %s", point.key, type(err).__name__, err)
        failures.append(f"{point.key}: {type(err).__name__}: {err}")
        return
    store.write(point, rows)
