"""Run the comparison: sample data, fit every registered model, measure them all on held-out data.

One direction: generate, fit, infer, measure. What is fitted and measured
comes from :func:`~seqmodels.compare.models.registry`; the result holds tidy
pandas frames, which :mod:`seqmodels.compare.report` turns into files.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Collection, Iterator
from concurrent.futures import Executor, Future
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass

import numpy as np
import pandas as pd

from seqmodels._checks import as_symbol_batch, named_seed
from seqmodels.compare.config import ComparisonConfig
from seqmodels.compare.executors import check_executor, process_pool, result_with_progress
from seqmodels.compare.models import (
    MEASURE,
    Fitted,
    HeldOut,
    Measured,
    ModelEntry,
    TrainingData,
    registry,
)
from seqmodels.hmm import HMM
from seqmodels.processes import (
    PRESETS,
    as_hmm,
    original_beliefs,
    original_state_names,
    state_map,
)

logger = logging.getLogger(__name__)

#: Most words the exact myopic entropy beside the step losses may enumerate.
MYOPIC_WORDS = 2**18
#: The ``model`` of the exact myopic-entropy rows in :attr:`ComparisonResult.step_losses`.
EXACT_MYOPIC = "h(t+1) exact"
#: Held-out steps drawn for the belief-geometry figure.
BELIEF_POINTS = 3000


@dataclass(frozen=True)
class ComparisonResult:
    """Everything one run measured, as tidy frames.

    Attributes
    ----------
    config : ComparisonConfig
    models : dict of str to ModelEntry
        The registry the run used, in report order.
    metrics : pandas.DataFrame
        Columns model, metric, value; one row per (model, metric) that applies.
    matrices : pandas.DataFrame
        Columns model, matrix ("transmat" or "emission"), row, col, value: the
        truth and every model measured on its matrices, states aligned to the truth.
    learning_curve : pandas.DataFrame
        Columns model, epoch, train_loss, val_loss, seconds, ...: every RNN's history.
    learning_references : pandas.DataFrame
        Columns model, rows, log_loss: the true model's log-loss on the next-symbol
        RNNs' validation and training sequences, and the EM HMM's on the validation
        ones, so learning curves can be drawn as excess over the truth on the same
        sequences.
    belief_trace : pandas.DataFrame
        Columns t, state_thrown, state, true_belief, probed_belief: the first
        held-out sequence, the true belief over the process's states and the
        first next-symbol RNN's state mapped through its belief probe (out of fold).
    belief_points : pandas.DataFrame
        Columns point, state, true_belief, probed_belief: the same for
        ``BELIEF_POINTS`` held-out steps drawn at random (the belief geometry).
    step_losses : pandas.DataFrame
        Columns model, t, log_loss: every predicting model's held-out log-loss at
        step t (mean over sequences), and (from :func:`run_comparison`) rows
        ``EXACT_MYOPIC`` with the exact myopic entropy h(t + 1) over the first
        steps: how fast each model synchronizes to the hidden state.
    em_restarts : pandas.DataFrame
        Per-restart table of each EM fit, with a column ``fit``.
    timings : pandas.DataFrame
        Columns stage, seconds (wall time; not part of the deterministic metrics).
    state_names : tuple of str
        Names of the true HMM's states (what the HMMs decode and the matrices index).
    belief_state_names : tuple of str
        Names of the process's own states, over which the belief probe and its
        figures work (the same as ``state_names`` for dice; fewer for a
        labelled process whose HMM splits states).
    """

    config: ComparisonConfig
    models: dict[str, ModelEntry]
    metrics: pd.DataFrame
    matrices: pd.DataFrame
    learning_curve: pd.DataFrame
    learning_references: pd.DataFrame
    belief_trace: pd.DataFrame
    belief_points: pd.DataFrame
    step_losses: pd.DataFrame
    em_restarts: pd.DataFrame
    timings: pd.DataFrame
    state_names: tuple[str, ...]
    belief_state_names: tuple[str, ...]

    def metric(self, model: str, metric: str) -> float:
        """One value of the metrics frame; ``KeyError`` if that pair was not measured."""
        rows = self.metrics[(self.metrics.model == model) & (self.metrics.metric == metric)]
        if rows.empty:
            raise KeyError(f"no metric {metric!r} for model {model!r}")
        return float(rows.value.iloc[0])

    def metrics_dict(self) -> dict[str, dict[str, float]]:
        """Metrics nested as ``{model: {metric: value}}`` in report order."""
        out: dict[str, dict[str, float]] = {}
        for row in self.metrics.itertuples(index=False):
            out.setdefault(row.model, {})[row.metric] = float(row.value)
        return out

    def with_measurement(self, measurement: str) -> list[str]:
        """The models on which ``measurement`` was taken, in report order."""
        return [name for name, entry in self.models.items() if measurement in entry.measurements]


class _Stopwatch:
    """Wall time per named stage, and in all since it was made."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self.began = time.perf_counter()

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        logger.info("compare: %s", name)
        start = time.perf_counter()
        yield
        self.add(name, time.perf_counter() - start)

    def add(self, name: str, seconds: float) -> None:
        self.seconds[name] = self.seconds.get(name, 0.0) + seconds

    def frame(self) -> pd.DataFrame:
        """Stages and seconds, then the wall time in all (``total (wall)``)."""
        stages = {**self.seconds, "total (wall)": time.perf_counter() - self.began}
        return pd.DataFrame({"stage": list(stages), "seconds": list(stages.values())})


def _timed_fit(entry: ModelEntry, data: TrainingData,
               fitted: dict[str, Fitted]) -> tuple[Fitted, float]:
    """``entry.fit`` and its wall time, measured where it ran (an executor's worker, maybe)."""
    start = time.perf_counter()
    out = entry.fit(data, fitted)
    return out, time.perf_counter() - start


def _fit_all(entries: dict[str, ModelEntry], data: TrainingData, executor: Executor,
             clock: _Stopwatch) -> dict[str, Fitted]:
    """Remote entries go to ``executor`` first; the others are fitted here meanwhile, in order."""
    quiet = dataclasses.replace(data, progress=False)  # no bars from other processes
    futures: dict[str, Future] = {name: executor.submit(_timed_fit, entry, quiet, {})
                                  for name, entry in entries.items() if entry.remote}
    fitted: dict[str, Fitted] = {}
    for name, entry in entries.items():
        if not entry.remote:
            fitted[name], seconds = _timed_fit(entry, data, fitted)
            clock.add(f"fit {name}", seconds)
    for name, future in futures.items():
        with clock.stage(f"waiting for {name}"):
            fitted[name], seconds = result_with_progress(future, f"fitting {name}",
                                                         data.progress)
        clock.add(f"fit {name}", seconds)
    return {name: fitted[name] for name in entries}


def _measure_all(entries: dict[str, ModelEntry], fitted: dict[str, Fitted], heldout: HeldOut,
                 clock: _Stopwatch) -> dict[str, list[Measured]]:
    measured: dict[str, list[Measured]] = {}
    for name, entry in entries.items():
        with clock.stage(f"measure {name}"):
            measured[name] = [MEASURE[kind](fitted[name].model, heldout, name)
                              for kind in entry.measurements]
    return measured


def _tidy(entries: dict[str, ModelEntry], measured: dict[str, list[Measured]]) -> pd.DataFrame:
    rows = []
    for name, entry in entries.items():
        values = {k: v for found in measured[name] for k, v in found.metrics.items()}
        rows += [(name, metric, values[metric]) for metric in entry.metric_names()]
    return pd.DataFrame(rows, columns=["model", "metric", "value"])


def _matrices_frame(hmms: dict[str, HMM]) -> pd.DataFrame:
    """Every entry of each HMM's transition and emission matrices, one row each."""
    return pd.DataFrame([
        {"model": model, "matrix": matrix, "row": i, "col": j, "value": float(value)}
        for model, hmm in hmms.items()
        for matrix, values in (("transmat", hmm.transmat), ("emission", hmm.emissionprob))
        for (i, j), value in np.ndenumerate(values)
    ])


def _histories(fitted: dict[str, Fitted]) -> pd.DataFrame:
    frames = [fit.model.history.assign(model=name) for name, fit in fitted.items()
              if hasattr(fit.model, "history")]
    if not frames:  # a run restricted to models without training histories
        return pd.DataFrame(columns=["model"])
    frame = pd.concat(frames, ignore_index=True)
    return frame[["model", *[c for c in frame.columns if c != "model"]]]


def _learning_references(fitted: dict[str, Fitted], rnn: str, train: TrainingData,
                         truth: HMM) -> pd.DataFrame:
    """Log-loss of the truth (and the EM HMM) on the RNNs' validation and training rows."""
    if rnn not in fitted:
        return pd.DataFrame(columns=["model", "rows", "log_loss"])
    validation = fitted[rnn].model.validation_rows
    rows = {"validation": validation,
            "training": np.setdiff1d(np.arange(train.symbols.shape[0]), validation)}
    records = []
    hmms = {"true": truth, **({"em_hmm": fitted["em_hmm"].model} if "em_hmm" in fitted else {})}
    for model, hmm in hmms.items():
        for label, index in rows.items():
            if index.size and (model == "true" or label == "validation"):
                symbols = train.symbols[index]
                records.append((model, label, -hmm.log_likelihood(symbols).sum() / symbols.size))
    return pd.DataFrame(records, columns=["model", "rows", "log_loss"])


def _belief_trace(heldout: HeldOut, probed: np.ndarray, steps: int) -> pd.DataFrame:
    """The first held-out sequence: true and probed belief per state, and the true state."""
    steps = min(steps, heldout.symbols.shape[1])
    true, guess = heldout.target_beliefs[0, :steps], probed[0, :steps]
    t, state = np.indices(true.shape)
    return pd.DataFrame({"t": t.ravel(), "state_thrown": heldout.target_states[0, t.ravel()],
                         "state": state.ravel(), "true_belief": true.ravel(),
                         "probed_belief": guess.ravel()})


def _belief_points(heldout: HeldOut, probed: np.ndarray, n_points: int) -> pd.DataFrame:
    """Up to ``n_points`` held-out steps drawn at random: true and probed belief per state."""
    true = heldout.target_beliefs.reshape(-1, heldout.target_beliefs.shape[-1])
    rng = heldout.rng("belief_points")
    rows = np.sort(rng.choice(len(true), size=min(n_points, len(true)), replace=False))
    point, state = np.indices((rows.size, true.shape[1]))
    return pd.DataFrame({"point": point.ravel(), "state": state.ravel(),
                         "true_belief": true[rows].ravel(),
                         "probed_belief": probed.reshape(true.shape)[rows].ravel()})


def _probe_frames(heldout: HeldOut, entries: dict[str, ModelEntry],
                  measured: dict[str, list[Measured]], rnn: str,
                  steps: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The belief trace and belief points of ``rnn``'s probe; empty when ``rnn`` was not run."""
    if rnn not in entries:
        return (pd.DataFrame(columns=["t", "state_thrown", "state", "true_belief",
                                      "probed_belief"]),
                pd.DataFrame(columns=["point", "state", "true_belief", "probed_belief"]))
    probed = measured[rnn][entries[rnn].measurements.index("belief_probe")].beliefs
    return (_belief_trace(heldout, probed, steps),
            _belief_points(heldout, probed, BELIEF_POINTS))


def _state_names(process, truth: HMM) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Names of the truth's HMM states and of the process's own states (numbers for an HMM)."""
    if not hasattr(process, "state_names"):
        numbers = tuple(str(k) for k in range(truth.n_states))
        return numbers, numbers
    return tuple(process.state_names), tuple(original_state_names(process))


def _step_losses(measured: dict[str, list[Measured]]) -> pd.DataFrame:
    """Each predicting model's held-out log-loss at step t, averaged over the sequences."""
    rows = [(name, t, float(loss)) for name, found in measured.items() for entry in found
            if entry.step_loss is not None for t, loss in enumerate(entry.step_loss)]
    return pd.DataFrame(rows, columns=["model", "t", "log_loss"])


def _with_exact_myopic(step_losses: pd.DataFrame, process, length: int) -> pd.DataFrame:
    """``step_losses`` and rows ``EXACT_MYOPIC``: the exact h(t + 1) over the first steps.

    The myopic entropy ``h(t + 1) = H(t + 1) - H(t)`` is the truth's expected
    loss at step ``t`` (what the true model's curve estimates), enumerated over
    the first ``L`` steps with ``V ** L <= MYOPIC_WORDS``
    (:func:`seqmodels.information.myopic_entropy`).
    """
    from seqmodels import information  # deferred: only a full comparison needs it

    n_symbols = max(as_hmm(process).n_symbols, 2)
    exact_steps = min(length, int(np.log(MYOPIC_WORDS) / np.log(n_symbols) + 1e-9))
    exact = information.myopic_entropy(process, exact_steps)
    rows = pd.DataFrame({"model": EXACT_MYOPIC, "t": np.arange(exact_steps), "log_loss": exact})
    return pd.concat([step_losses, rows], ignore_index=True)


def _restarts(fitted: dict[str, Fitted]) -> pd.DataFrame:
    frames = [fit.restarts.assign(fit=name) for name, fit in fitted.items()
              if fit.restarts is not None]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["fit"])


def _check_config(config) -> ComparisonConfig:
    if config is None:
        return ComparisonConfig()
    if not isinstance(config, ComparisonConfig):
        raise ValueError(
            f"config must be a ComparisonConfig (or None for the defaults), got "
            f"{type(config).__name__}; build one with ComparisonConfig(**settings) or "
            "ComparisonConfig.from_dict(settings)"
        )
    return config


def _checked_sample(name: str, sample, truth: HMM) -> tuple[np.ndarray, np.ndarray]:
    """``sample`` as ``(states, symbols)``: two int64 (B, T) arrays of one shape, ``T >= 2``,
    states in ``[0, K)`` and symbols in ``[0, V)`` of ``truth``; else ``ValueError``."""
    if not isinstance(sample, (tuple, list)) or len(sample) != 2:
        raise ValueError(f"{name} must be a pair (states, symbols) of (B, T) arrays, got "
                         f"{type(sample).__name__}")
    states, one = as_symbol_batch(sample[0], truth.n_states, f"{name} states")
    symbols, _ = as_symbol_batch(sample[1], truth.n_symbols, f"{name} symbols")
    if one or states.shape != symbols.shape or states.shape[1] < 2:
        raise ValueError(f"{name} states and symbols must be (B, T) arrays of one shape with "
                         f"T >= 2, got {np.shape(sample[0])} and {np.shape(sample[1])}")
    return states, symbols


def _selected(entries: dict[str, ModelEntry],
              models: Collection[str] | None) -> dict[str, ModelEntry]:
    """The registry entries named in ``models`` (all when None), in registry order."""
    if models is None:
        return entries
    if isinstance(models, str) or not all(isinstance(name, str) for name in models):
        raise ValueError(f"models must be a collection of model names, got {models!r}")
    unknown = sorted(set(models) - set(entries))
    if unknown or not models:
        raise ValueError(f"models must name one or more of {list(entries)}, got {sorted(models)}")
    return {name: entry for name, entry in entries.items() if name in models}


def run_comparison(config: ComparisonConfig | None = None, progress: bool = True,
                   executor: Executor | None = None) -> ComparisonResult:
    """Fit every registered model on one sample and measure them all on held-out sequences.

    Samples ``config.n_train`` training and ``config.n_test`` held-out sequences
    from the preset (seeds named "train" and "test" under ``config.seed``), then
    runs :func:`run_on_samples`.

    Parameters
    ----------
    config : ComparisonConfig, optional
        The run's settings; the defaults when omitted.
    progress : bool
        Show the fitting stages' tqdm bars.
    executor : concurrent.futures.Executor, optional
        Where the slow fits (the registry's ``remote`` entries: the EM HMM) run
        while this process fits the rest. Default: a one-worker process pool,
        made and closed by this call. Pass
        :class:`~seqmodels.compare.executors.InlineExecutor` to run everything
        here, or a pool of your own (a Dask ``Client`` works too). Same results
        whichever ran it.

    Returns
    -------
    ComparisonResult
        Deterministic given ``config`` (apart from ``timings``).

    Raises
    ------
    ValueError
        If ``config`` is not a :class:`ComparisonConfig` or ``executor`` not an Executor.

    Notes
    -----
    Excess is each model's held-out log-loss minus the true model's on the same
    sequences, so the true model's is exactly 0. Its expectation is the KL
    divergence from the truth, >= 0; on a finite sample a model can come out
    below 0 by chance (``excess_se`` is the standard error over sequences).
    """
    config, executor = _check_config(config), check_executor(executor)
    clock = _Stopwatch()
    process = PRESETS[config.preset]()
    with clock.stage("sample data"):
        train = process.sample(config.n_train, config.length, named_seed(config.seed, "train"))
        test = process.sample(config.n_test, config.length, named_seed(config.seed, "test"))
    result = run_on_samples(config, process, (train.states, train.symbols),
                            (test.states, test.symbols), progress=progress, executor=executor,
                            clock=clock)
    with clock.stage("exact myopic entropy"):
        step_losses = _with_exact_myopic(result.step_losses, process, config.length)
    return dataclasses.replace(result, step_losses=step_losses, timings=clock.frame())


def run_on_samples(config: ComparisonConfig, process, train: tuple[np.ndarray, np.ndarray],
                   test: tuple[np.ndarray, np.ndarray], *, progress: bool = False,
                   executor: Executor | None = None, clock: _Stopwatch | None = None,
                   models: Collection[str] | None = None) -> ComparisonResult:
    """Fit and measure every registered model (or those named) on samples already drawn.

    :func:`run_comparison` draws its samples and calls this; a sweep calls it
    directly, to train on nested prefixes of one sample and score on one
    held-out set. ``config.n_train``, ``n_test`` and ``length`` are not read:
    the samples decide the sizes.

    Parameters
    ----------
    config : ComparisonConfig
        Model settings and the root seed of every fit.
    process : a preset (``seqmodels.processes.PRESETS[name]()``) or an HMM
        The model that generated both samples: its HMM is the truth, and the
        belief probe targets beliefs over its own states
        (:func:`seqmodels.processes.original_beliefs`).
    train, test : tuple of numpy.ndarray
        ``(states, symbols)``, each of shape (B, T), ints: the HMM's hidden
        chain and the symbols.
    progress, executor :
        As in :func:`run_comparison`.
    clock : optional
        The stage timer to continue (internal).
    models : collection of str, optional
        Fit and measure only these registry entries (default all), so a sweep
        cell fits what it reports. A fit that reads another model (an implied
        HMM reads its RNN) needs that model named too. Frames fed by a model
        left out (the belief trace, learning references) come back empty.

    Returns
    -------
    ComparisonResult

    Raises
    ------
    ValueError
        Naming the argument: ``config``, ``executor`` or ``models`` of the wrong
        kind, a ``process`` without an HMM, or ``train`` / ``test`` not pairs of
        (B, T) int arrays of one shape (T >= 2) with states and symbols in range.
    """
    config, executor = _check_config(config), check_executor(executor)
    clock = clock or _Stopwatch()
    truth = as_hmm(process, "process")
    train, test = _checked_sample("train", train, truth), _checked_sample("test", test, truth)
    data = TrainingData(config, truth, *train, progress)
    entries = _selected(registry(config, truth), models)
    with ExitStack() as stack:
        pool = executor if executor is not None else stack.enter_context(process_pool(1))
        fitted = _fit_all(entries, data, pool, clock)
    with clock.stage("true filter"):
        floor = truth.filter(test[1])
        heldout = HeldOut(truth, *test, floor, original_beliefs(process, floor.beliefs),
                          state_map(process)[test[0]], config.seed)
    measured = _measure_all(entries, fitted, heldout, clock)
    first_rnn = f"rnn_{config.cells[0]}"
    trace, points = _probe_frames(heldout, entries, measured, first_rnn, config.trace_steps)
    names = _state_names(process, truth)
    return ComparisonResult(
        config=config, models=entries, metrics=_tidy(entries, measured),
        matrices=_matrices_frame({"true": truth, **{
            name: fitted[name].model for name, entry in entries.items()
            if "matrices" in entry.measurements}}),
        learning_curve=_histories(fitted),
        learning_references=_learning_references(fitted, first_rnn, data, truth),
        belief_trace=trace, belief_points=points,
        step_losses=_step_losses(measured),
        em_restarts=_restarts(fitted), timings=clock.frame(), state_names=names[0],
        belief_state_names=names[1],
    )
