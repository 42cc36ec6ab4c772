"""Sweeps: learning curves and capacity curves of the HMM and the RNNs over a grid.

A :class:`SweepGrid` spans presets, training sizes, hidden sizes, RNN cells,
the EM HMM's number of states and replicate seeds; :func:`run_sweep` runs its
cells (:func:`~seqmodels.sweep.cell.run_cell`, one pure call each) on local
processes or a Dask cluster (:mod:`~seqmodels.sweep.engines`), storing each
as it finishes (:mod:`~seqmodels.sweep.store`, resumable);
:func:`write_sweep_report` turns the rows into ``sweep.md`` and figures.
"""

from seqmodels.sweep.cell import COLUMNS, TIMING_METRICS, run_cell
from seqmodels.sweep.engines import dask_engine, local_engine
from seqmodels.sweep.grid import AXES, SWEEP_SETTINGS, GridCell, SweepGrid
from seqmodels.sweep.run import SweepError, run_sweep
from seqmodels.sweep.store import load_results

__all__ = [
    "AXES",
    "COLUMNS",
    "SWEEP_SETTINGS",
    "TIMING_METRICS",
    "GridCell",
    "SweepError",
    "SweepGrid",
    "dask_engine",
    "load_results",
    "local_engine",
    "run_cell",
    "run_sweep",
]
