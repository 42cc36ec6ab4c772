"""A sweep's results on disk: the grid in ``config.json``, one CSV per finished cell.

Layout of a sweep folder::

    config.json             the grid (SweepGrid.to_dict), written before any cell runs
    cells/<key>.csv         one finished cell's tidy rows, written atomically as it finishes
    results.csv             every cell's rows, sorted (written when the sweep ends)
    sweep.md, *.png         the report (seqmodels.sweep.report)

Why one CSV per cell: a cell's file appears whole or not at all (written to a
temporary file and renamed), so a Ctrl-C or a killed process loses only the
cells in flight and ``resume`` needs no log to replay; CSV because the rows
are few, any tool reads them, and no extra dependency is needed. Floats are
written with 17 significant digits and parsed back by Python's ``float``, so
a reloaded value is the same double.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pandas as pd

from seqmodels._io import (
    FileProblemError,
    atomic_write_bytes,
    check_parent_takes_files,
    check_path,
)
from seqmodels.sweep.cell import COLUMNS, tidy_types
from seqmodels.sweep.grid import GridCell, SweepGrid

logger = logging.getLogger(__name__)

CONFIG_FILE = "config.json"
CELLS_FOLDER = "cells"
RESULTS_FILE = "results.csv"


class SweepStore:
    """The results folder of one grid; open it with :meth:`open`."""

    def __init__(self, folder: Path, grid: SweepGrid) -> None:
        self.folder, self.grid = folder, grid

    @classmethod
    def open(cls, folder, grid: SweepGrid, resume: bool = False) -> SweepStore:
        """Prepare ``folder`` for ``grid`` (see :func:`check_folder`) and write ``config.json``."""
        folder = check_folder(folder, grid, resume)
        try:
            (folder / CELLS_FOLDER).mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise FileProblemError(f"cannot create the sweep folder {str(folder)!r}: "
                                   f"{err.strerror}") from None
        atomic_write_bytes(folder / CONFIG_FILE,
                           (json.dumps(grid.to_dict(), indent=2) + "\n").encode())
        return cls(folder, grid)

    def path(self, point: GridCell) -> Path:
        return self.folder / CELLS_FOLDER / f"{point.key}.csv"

    def finished(self) -> set[str]:
        """Keys of the grid's cells whose rows are on disk."""
        return {point.key for point in self.grid.cells() if self.path(point).exists()}

    def write(self, point: GridCell, rows: pd.DataFrame) -> None:
        """Store one cell's rows, atomically."""
        atomic_write_bytes(self.path(point), _csv_bytes(rows))

    def results(self) -> pd.DataFrame:
        """Every finished cell's rows, in grid order."""
        frames = [read_rows(self.path(point)) for point in self.grid.cells()
                  if self.path(point).exists()]
        if not frames:
            return tidy_types(pd.DataFrame(columns=list(COLUMNS)))
        return pd.concat(frames, ignore_index=True)

    def write_results(self) -> pd.DataFrame:
        """Write ``results.csv``, all rows of the finished cells, and return those rows."""
        rows = self.results()
        atomic_write_bytes(self.folder / RESULTS_FILE, _csv_bytes(rows))
        return rows


def check_folder(folder, grid: SweepGrid, resume: bool = False) -> Path:
    """``folder`` as a Path if it can take ``grid``'s sweep: new or empty, or resumable.

    Raises
    ------
    ValueError
        A :class:`~seqmodels._io.FileProblemError` when ``folder`` is a file,
        is not empty (without ``resume``), or holds a sweep of another grid
        (with ``resume``; naming each difference).
    """
    folder = check_path(folder, "out")
    if folder.exists() and not folder.is_dir():
        raise FileProblemError(f"{str(folder)!r} is a file, not a folder")
    config = folder / CONFIG_FILE
    if resume and config.exists():
        _check_same_grid(config, grid)
    elif folder.is_dir() and any(folder.iterdir()):
        what = ("holds a sweep: resume it (--resume) or choose a new folder" if config.exists()
                else "holds other files: choose a new or empty folder")
        raise FileProblemError(f"{str(folder)!r} {what}")
    if not folder.exists():
        check_parent_takes_files(folder)
    return folder


def read_rows(path: str | Path) -> pd.DataFrame:
    """Sweep rows from a CSV written by the store, with their column types and exact floats."""
    frame = pd.read_csv(path, dtype={"value": str}, keep_default_na=False,
                        na_values={"hidden": [""], "em_states": [""], "cell": [""]})
    missing = [name for name in COLUMNS if name not in frame.columns]
    if missing:
        raise ValueError(f"{str(path)!r} is not a sweep results file: missing columns {missing}")
    # Python's float() rounds correctly; pandas' own parser does not always (before 3.0).
    return tidy_types(frame[list(COLUMNS)].assign(value=frame.value.map(float)))


def load_results(folder: str | Path) -> tuple[SweepGrid, pd.DataFrame]:
    """The grid and every finished cell's rows of the sweep in ``folder``."""
    folder = check_path(folder, "folder")
    try:
        text = (folder / CONFIG_FILE).read_text()
    except OSError as err:
        raise FileProblemError(f"{str(folder)!r} holds no sweep (cannot read {CONFIG_FILE}: "
                               f"{err.strerror})") from None
    try:
        grid = SweepGrid.from_dict(json.loads(text))
    except ValueError as err:
        raise ValueError(f"{str(folder / CONFIG_FILE)!r} is not a sweep grid: {err}") from None
    return grid, SweepStore(folder, grid).results()


def _csv_bytes(rows: pd.DataFrame) -> bytes:
    return rows.to_csv(index=False, float_format="%.17g").encode()


def _check_same_grid(config: Path, grid: SweepGrid) -> None:
    try:
        stored = SweepGrid.from_file(config)
    except ValueError as err:  # unreadable or not a grid: from_file says which
        raise FileProblemError(f"cannot resume: {str(config)!r} is not a readable sweep grid "
                               f"({err})") from None
    differences = grid.differences(stored)
    if differences:
        raise FileProblemError(
            f"cannot resume the sweep in {str(config.parent)!r}: its grid differs from the one "
            "asked (asked vs stored): " + "; ".join(differences)
            + ". Resume with the same grid, or choose a new folder")
