"""One grid cell: a pure function from coordinates to tidy rows.

:func:`run_cell` draws the cell's data, fits the models its kind needs with
:func:`~seqmodels.compare.run_on_samples` (everything in this process: no
nested pools), and returns rows ``kind, preset, n_train, hidden, cell,
em_states, seed, model, metric, value``. The rows depend on the coordinates
and the settings only, never on the process, the engine or the order cells
ran in; only the timing metrics (:data:`TIMING_METRICS`) vary.

Data, for one (preset, seed): the training sequences are drawn in blocks of
:data:`TRAIN_BLOCK`, each from its own named seed, and a cell takes the first
``n_train``; so every training set is a prefix of the same sample whatever
sizes the grid holds. One held-out set of ``n_test`` sequences per (preset,
seed) scores every cell of that replicate.
"""

from __future__ import annotations

import logging
import math
import os
import time
from contextlib import contextmanager

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from seqmodels._checks import named_seed
from seqmodels.compare import ComparisonConfig, ComparisonResult, InlineExecutor, run_on_samples
from seqmodels.hmm import limit_threads
from seqmodels.sweep.grid import KINDS, GridCell
from seqmodels.sweep.presets import draw, process

logger = logging.getLogger(__name__)

#: Training sequences per independently seeded block (the unit of nesting).
TRAIN_BLOCK = 25

#: Columns of a sweep's tidy rows, in order.
COLUMNS = ("kind", "preset", "n_train", "hidden", "cell", "em_states", "seed", "model", "metric",
           "value")

#: Metrics that measure time: they differ between runs; every other row is deterministic.
TIMING_METRICS = frozenset({"seconds", "fit_seconds"})

#: Environment of a sweep's worker processes: one thread each for BLAS, OpenMP
#: and numba, since the engine runs one cell per core.
WORKER_ENVIRONMENT = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
                      "MKL_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1"}


def training_sample(preset: str, seed: int, n_train: int,
                    length: int) -> tuple[np.ndarray, np.ndarray]:
    """The first ``n_train`` training sequences of replicate ``seed``: (states, symbols), (B, T).

    Block ``b`` (sequences ``25 b .. 25 b + 24``) is drawn from the seed named
    ``(preset, "train", b)`` under ``seed``, so a smaller set is a prefix of a larger one.
    """
    blocks = [draw(preset, TRAIN_BLOCK, length, named_seed(seed, preset, "train", b))
              for b in range(math.ceil(n_train / TRAIN_BLOCK))]
    states, symbols = (np.concatenate(parts)[:n_train] for parts in zip(*blocks, strict=True))
    return states, symbols


def held_out_sample(preset: str, seed: int, n_test: int,
                    length: int) -> tuple[np.ndarray, np.ndarray]:
    """The held-out sequences of replicate ``seed``, shared by every cell of it."""
    return draw(preset, n_test, length, named_seed(seed, preset, "test"))


@contextmanager
def one_thread():
    """BLAS, OpenMP (threadpoolctl) and numba (:func:`~seqmodels.hmm.limit_threads`) on one thread.

    A worker runs one cell per core; more threads per cell only contend. The
    environment of worker processes (:data:`WORKER_ENVIRONMENT`) does the same
    for libraries loaded later.
    """
    with threadpool_limits(limits=1), limit_threads(1):
        yield


def run_cell(point: GridCell, settings: ComparisonConfig) -> pd.DataFrame:
    """Fit and measure the models of one grid cell; its tidy rows.

    Parameters
    ----------
    point : GridCell
        The coordinates.
    settings : ComparisonConfig
        The grid's shared settings (length, n_test, epochs, restarts, ...).

    Returns
    -------
    pandas.DataFrame
        Columns :data:`COLUMNS`: one row per (model, metric). Every metric the
        comparison measures on the cell's models, plus, for the EM HMM,
        ``train_log_likelihood`` (nats, total), ``n_parameters`` and ``bic``;
        for an RNN, ``epochs`` (run before early stopping); ``fit_seconds``
        per model and, under model ``cell``, ``seconds`` for the whole call.

    Raises
    ------
    ValueError
        ``point`` not a GridCell of a known kind, ``settings`` not a
        ComparisonConfig, or coordinates the comparison refuses; before any data
        is drawn.
    """
    start = time.perf_counter()
    config = _cell_config(point, settings)  # validates the coordinates before any work
    logger.info("sweep: cell %s in process %d", point.key, os.getpid())
    with one_thread():
        true_process = process(point.preset)
        train = training_sample(point.preset, point.seed, point.n_train, settings.length)
        test = held_out_sample(point.preset, point.seed, settings.n_test, settings.length)
        result = run_on_samples(config, true_process, train, test, executor=InlineExecutor(),
                                models=point.models())
    extra = _extra_metrics(result, true_process.n_symbols, train[1].size)
    rows = pd.concat([result.metrics, extra,
                      _timing_rows(result, time.perf_counter() - start)], ignore_index=True)
    return _with_coordinates(point, rows)


def _cell_config(point: GridCell, settings: ComparisonConfig) -> ComparisonConfig:
    """The comparison settings of ``point``; ``ValueError`` naming what is wrong with either."""
    if not isinstance(point, GridCell):
        raise ValueError(f"point must be a GridCell, got {type(point).__name__}")
    if not isinstance(settings, ComparisonConfig):
        raise ValueError(f"settings must be a ComparisonConfig, got {type(settings).__name__}")
    if point.kind not in KINDS:
        raise ValueError(f"point.kind must be one of {KINDS}, got {point.kind!r}")
    try:
        return point.config(settings)
    except ValueError as err:
        raise ValueError(f"point {point} is not a cell the comparison can run: {err}") from None


def hmm_parameters(n_states: int, n_symbols: int) -> int:
    """Free parameters of a categorical HMM: ``(K - 1) + K (K - 1) + K (V - 1)``.

    The start distribution, the transition rows and the emission rows, each
    row a distribution with one entry fixed by the others.
    """
    return (n_states - 1) + n_states * (n_states - 1) + n_states * (n_symbols - 1)


def bic(log_likelihood: float, n_parameters: int, n_observations: int) -> float:
    """Bayesian information criterion ``-2 LL + p ln(N)``: lower is better.

    ``LL`` is the training log-likelihood (nats), ``p`` the free parameters and
    ``N`` the number of observed symbols.
    """
    return -2.0 * log_likelihood + n_parameters * math.log(n_observations)


def _extra_metrics(result: ComparisonResult, n_symbols: int,
                   n_observations: int) -> pd.DataFrame:
    """The EM HMM's training log-likelihood, parameter count and BIC; each RNN's epochs."""
    rows = []
    if "em_hmm" in result.models:
        restarts = result.em_restarts[result.em_restarts.fit == "em_hmm"]
        log_likelihood = float(restarts.log_likelihood.max())  # the restart fit_em keeps
        p = hmm_parameters(result.config.em_states, n_symbols)
        rows += [("em_hmm", "train_log_likelihood", log_likelihood),
                 ("em_hmm", "n_parameters", float(p)),
                 ("em_hmm", "bic", bic(log_likelihood, p, n_observations))]
    for model, history in result.learning_curve.groupby("model", sort=False):
        rows.append((model, "epochs", float(history.epoch.max())))
    return pd.DataFrame(rows, columns=["model", "metric", "value"])


def _timing_rows(result: ComparisonResult, seconds: float) -> pd.DataFrame:
    stages = result.timings.set_index("stage").seconds
    rows = [(model, "fit_seconds", float(stages[f"fit {model}"])) for model in result.models]
    return pd.DataFrame([*rows, ("cell", "seconds", seconds)],
                        columns=["model", "metric", "value"])


def _with_coordinates(point: GridCell, rows: pd.DataFrame) -> pd.DataFrame:
    frame = pd.DataFrame({name: [value] * len(rows)
                          for name, value in point.coordinates().items()})
    frame = pd.concat([frame, rows.reset_index(drop=True)], axis=1)
    return tidy_types(frame[list(COLUMNS)])


def tidy_types(frame: pd.DataFrame) -> pd.DataFrame:
    """The column types of sweep rows: nullable ints for axes a kind leaves empty."""
    return frame.astype({"kind": "string", "preset": "string", "n_train": "int64",
                         "hidden": "Int64", "cell": "string", "em_states": "Int64",
                         "seed": "int64", "model": "string", "metric": "string",
                         "value": "float64"})
