"""Run the comparison: generate dice data, fit every model, measure everything on held-out data.

One direction: generate, fit, infer, measure. The result holds tidy pandas
frames; :mod:`seqmodels.compare.report` turns them into files.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing import get_context

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from seqmodels._checks import check_count
from seqmodels.compare import metrics as m
from seqmodels.compare.baselines import IIDBaseline, MarkovBaseline
from seqmodels.compare.config import ComparisonConfig
from seqmodels.dice import PRESETS, DiceSample
from seqmodels.hmm import HMM, align_states, fit_counts, fit_em
from seqmodels.rnn import ElmanRNN

logger = logging.getLogger(__name__)

#: Models in report order, with what each one is.
MODELS: dict[str, str] = {
    "true": "the generating model; its filter is the Bayes-optimal floor",
    "counted_hmm": "HMM fitted by counting, sees the dice",
    "em_hmm": "HMM fitted by Baum-Welch (EM) on the faces only",
    "rnn_implied_hmm": "EM on sequences sampled from the faces-only RNN: its knowledge as matrices",
    "rnn_faces": "Elman RNN trained on the faces only (next-symbol prediction)",
    "rnn_dice": "Elman RNN trained on the dice as labels (supervised decoder)",
    "iid": "i.i.d. face frequencies, add-one smoothed",
    "markov1": "first-order Markov chain on faces, add-one smoothed",
}
PREDICTION_METRICS = ("log_loss", "excess", "excess_se", "perplexity", "kl")
HMM_MODELS = ("true", "counted_hmm", "em_hmm", "rnn_implied_hmm")
MATRIX_METRICS = ("transmat_max_abs", "transmat_tv", "emission_max_abs", "emission_tv")
PROBE_METRICS = ("belief_r2", "belief_r2_shuffled", "belief_r2_untrained")

# One named child seed per random stage, so changing one stage's draws never moves another's.
_STREAMS = ("train", "test", "em", "rnn_faces", "rnn_dice", "rnn_sample", "em_implied",
            "untrained", "shuffle")


@dataclass(frozen=True)
class ComparisonResult:
    """Everything one run measured, as tidy frames.

    Attributes
    ----------
    config : ComparisonConfig
    metrics : pandas.DataFrame
        Columns model, metric, value; one row per (model, metric) that applies.
    matrices : pandas.DataFrame
        Columns model, matrix ("transmat" or "emission"), row, col, value: the
        truth and every fitted model's matrices, states aligned to the truth.
    learning_curve : pandas.DataFrame
        Columns model, epoch, train_loss, val_loss, seconds: both RNNs' histories.
    belief_trace : pandas.DataFrame
        Columns t, die, state, true_belief, probed_belief: one held-out sequence
        (from the probe's scoring half), the true filtered belief and the
        faces-only RNN's state mapped through the belief probe.
    learning_references : pandas.DataFrame
        Columns label, log_loss: the true model's and the EM HMM's loss on the
        faces-only RNN's validation sequences, the horizontal lines of the
        learning-curve figure (on the test sequences, and labelled so, if those
        validation sequences cannot be rebuilt).
    em_restarts : pandas.DataFrame
        Per-restart table of each EM fit, with a column ``fit``.
    timings : pandas.DataFrame
        Columns stage, seconds (wall time; not part of the deterministic metrics).
    state_names : tuple of str
        The true model's state (die) names.
    """

    config: ComparisonConfig
    metrics: pd.DataFrame
    matrices: pd.DataFrame
    learning_curve: pd.DataFrame
    belief_trace: pd.DataFrame
    learning_references: pd.DataFrame
    em_restarts: pd.DataFrame
    timings: pd.DataFrame
    state_names: tuple[str, ...]

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


class _Stopwatch:
    """Wall time per named stage."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        logger.info("compare: %s", name)
        start = time.perf_counter()
        yield
        self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - start

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame({"stage": list(self.seconds), "seconds": list(self.seconds.values())})


def _streams(seed: int) -> dict[str, np.random.Generator]:
    children = np.random.SeedSequence(seed).spawn(len(_STREAMS))
    return {name: np.random.default_rng(child) for name, child in zip(_STREAMS, children,
                                                                      strict=True)}


def _rnn_fit_kwargs(config: ComparisonConfig, epochs: int, seed, progress: bool) -> dict:
    return dict(epochs=epochs, batch_size=config.rnn_batch_size, lr=config.rnn_lr,
                clip=config.rnn_clip, validation=config.rnn_validation,
                patience=config.rnn_patience, seed=seed, progress=progress)


def _matrices_frame(hmms: dict[str, HMM]) -> pd.DataFrame:
    """Every entry of each HMM's transition and emission matrices, one row each."""
    return pd.DataFrame([
        {"model": model, "matrix": matrix, "row": i, "col": j, "value": float(value)}
        for model, hmm in hmms.items()
        for matrix, values in (("transmat", hmm.transmat), ("emission", hmm.emissionprob))
        for (i, j), value in np.ndenumerate(values)
    ])


def _hmm_metrics(hmm: HMM, test: DiceSample, floor) -> dict[str, float]:
    """Prediction and decoding metrics of an HMM whose states are aligned to the truth."""
    filtered = hmm.filter(test.symbols)
    out = m.prediction_metrics(filtered.predictive, test.symbols, floor.predictive)
    out["accuracy_causal"] = m.accuracy(filtered.beliefs.argmax(-1), test.dice)
    out["accuracy_smoothed"] = m.accuracy(hmm.smooth(test.symbols).argmax(-1), test.dice)
    out["accuracy_viterbi"] = m.accuracy(hmm.viterbi(test.symbols)[0], test.dice)
    out["belief_kl"] = m.mean_kl(floor.beliefs, filtered.beliefs)
    return out


def _fit_em_aligned(symbols, truth: HMM, restarts: int, finalists: int, seed,
                    progress: bool) -> tuple[HMM, pd.DataFrame]:
    fit = fit_em(symbols, truth.n_states, truth.n_symbols, n_restarts=restarts, seed=seed,
                 progress=progress, n_finalists=finalists)
    aligned, _ = align_states(fit.model, truth)
    return aligned, fit.restarts


def _probe_metrics(hidden: np.ndarray, untrained: np.ndarray, test: DiceSample, floor,
                   shuffle_rng: np.random.Generator) -> tuple[dict[str, float], np.ndarray]:
    """Belief probe R^2 with its two controls and the probe's decoding accuracy.

    The probe is fitted on the first half of the held-out sequences and scored on
    the second half (whole sequences, so no step is both fitted and scored).
    Returns the metrics and the probed beliefs of the scoring half (B2, T, K).
    """
    half, n_states = test.n_sequences // 2, floor.beliefs.shape[-1]

    def split(array: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(B, T, D) -> the fitting half's rows (N1, D) and the scoring half's (N2, D)."""
        return (array[:half].reshape(-1, array.shape[-1]),
                array[half:].reshape(-1, array.shape[-1]))

    (h_fit, h_score), (u_fit, u_score) = split(hidden), split(untrained)
    (y_fit, y_score), (d_fit, d_score) = split(floor.beliefs), split(test.dice[..., None])
    probed = m.apply_affine_probe(m.fit_affine_probe(h_fit, y_fit), h_score)
    shuffled = y_fit[shuffle_rng.permutation(y_fit.shape[0])]
    out = {
        "belief_r2": m.r_squared(y_score, probed),
        "belief_r2_shuffled": m.probe_r2(h_fit, shuffled, h_score, y_score),
        "belief_r2_untrained": m.probe_r2(u_fit, y_fit, u_score, y_score),
        "accuracy_causal": m.probe_accuracy(h_fit, d_fit[:, 0], h_score, d_score[:, 0],
                                            n_states),
    }
    return out, probed.reshape(test.n_sequences - half, test.length, n_states)


def _rnn_metrics(rnn: ElmanRNN, decoder: ElmanRNN, test: DiceSample, floor,
                 streams) -> tuple[dict[str, dict[str, float]], np.ndarray]:
    """Both RNNs measured on the held-out sequences.

    ``rnn_faces``: prediction metrics and the belief probe (:func:`_probe_metrics`,
    with an untrained network of the same size as its control); ``rnn_dice``: the
    decoder's causal accuracy and belief KL. Also returns the probed beliefs.
    """
    faces = m.prediction_metrics(rnn.predictive(test.symbols), test.symbols,
                                 floor.predictive)
    decoded = decoder.label_proba(test.symbols)
    dice = {"accuracy_causal": m.accuracy(decoded.argmax(-1), test.dice),
            "belief_kl": m.mean_kl(floor.beliefs, decoded)}
    untrained = ElmanRNN(rnn.n_inputs, rnn.n_hidden, rnn.n_outputs, seed=streams["untrained"])
    probe, probed = _probe_metrics(rnn.hidden_states(test.symbols),
                                   untrained.hidden_states(test.symbols), test, floor,
                                   streams["shuffle"])
    return {"rnn_faces": {**faces, **probe}, "rnn_dice": dice}, probed


def _fit_implied_hmm(rnn: ElmanRNN, truth: HMM, config: ComparisonConfig, streams,
                     progress: bool) -> tuple[HMM, pd.DataFrame]:
    """EM (one finalist) on sequences sampled from the faces-only RNN, aligned to the truth."""
    sampled = rnn.sample(config.implied_sequences, config.implied_length,
                         seed=streams["rnn_sample"])
    return _fit_em_aligned(sampled, truth, config.implied_restarts, 1, streams["em_implied"],
                           progress)


def _belief_trace(test: DiceSample, floor, probed: np.ndarray, steps: int) -> pd.DataFrame:
    """One scoring-half sequence: true and probed belief per state, and the die thrown."""
    first = test.n_sequences // 2
    steps = min(steps, test.length)
    true, guess = floor.beliefs[first, :steps], probed[0, :steps]
    t, state = np.indices(true.shape)
    return pd.DataFrame({"t": t.ravel(), "die": test.dice[first, :steps][t.ravel()],
                         "state": state.ravel(), "true_belief": true.ravel(),
                         "probed_belief": guess.ravel()})


def _history(model: str, rnn: ElmanRNN) -> pd.DataFrame:
    history = rnn.history.copy()
    history.insert(0, "model", model)
    return history


def _tidy(metrics: dict[str, dict[str, float]]) -> pd.DataFrame:
    rows = [(model, metric, value) for model in MODELS
            for metric, value in metrics.get(model, {}).items()]
    return pd.DataFrame(rows, columns=["model", "metric", "value"])


class _Inline:
    """The ``n_jobs=1`` stand-in for a future: runs the job in this process when asked."""

    def __init__(self, function, *args) -> None:
        self._function, self._args = function, args

    def result(self):
        return self._function(*self._args)


@contextmanager
def _job_runner(n_jobs: int) -> Iterator:
    """``submit(function, *args)`` returning something with ``.result()``.

    With ``n_jobs >= 2`` jobs go to one worker process ("spawn": no fork of a
    process that already runs BLAS or tqdm threads), so the slowest stage, the
    EM fit, overlaps the RNN stages. Results do not depend on where a job ran:
    it gets its own seeded generator. Leaving the block terminates the worker,
    so an error or a Ctrl-C in this process does not wait for a fit nobody will
    read.
    """
    if n_jobs < 2:
        yield _Inline
        return
    pool = get_context("spawn").Pool(processes=1)
    try:
        yield lambda function, *args: _Submitted(pool.apply_async(function, args))
    except BaseException:
        pool.terminate()
        raise
    else:
        pool.close()  # a clean exit: the worker releases what it holds
    finally:
        pool.join()


class _Submitted:
    """A job running in the worker: ``.result()`` waits for it, ``.ready()`` does not."""

    def __init__(self, async_result) -> None:
        self._async = async_result

    def ready(self, timeout: float = 0.0) -> bool:
        self._async.wait(timeout)
        return self._async.ready()

    def result(self):
        return self._async.get()


def _wait(job, progress: bool):
    """``job.result()``, with a ticking bar while a worker process is still at it."""
    if isinstance(job, _Inline):
        return job.result()
    with tqdm(desc="EM HMM fit (worker process)", disable=not progress,
              bar_format="{desc}: {elapsed}") as bar:
        while not job.ready(timeout=0.5):
            bar.refresh()
    return job.result()


def _timed_em_fit(symbols, truth: HMM, restarts: int, finalists: int, seed,
                  progress: bool) -> tuple[HMM, pd.DataFrame, float]:
    start = time.perf_counter()
    aligned, table = _fit_em_aligned(symbols, truth, restarts, finalists, seed, progress)
    return aligned, table, time.perf_counter() - start


def _learning_references(rows: np.ndarray | None, train: DiceSample, test: DiceSample,
                         models: dict[str, HMM]) -> pd.DataFrame:
    """Each HMM's log-loss on the RNN's validation sequences (or, failing that, the test set)."""
    symbols, where = (train.symbols[rows], "validation") if rows is not None else (
        test.symbols, "test, not the validation")
    return pd.DataFrame({
        "label": [f"{name} ({where} sequences)" for name in models],
        "log_loss": [-hmm.log_likelihood(symbols).sum() / symbols.size for hmm in models.values()],
    })


def _fit_rnns(config: ComparisonConfig, train: DiceSample, n_states: int, streams,
              progress: bool, clock: _Stopwatch) -> tuple[ElmanRNN, ElmanRNN, np.ndarray | None]:
    """The faces-only next-symbol RNN, the supervised dice decoder, and the former's
    validation rows (None when it held none out)."""
    n_symbols = train.spec.n_symbols
    with clock.stage("RNN on faces"):
        rnn = ElmanRNN(n_symbols, config.hidden, n_symbols, seed=streams["rnn_faces"])
        fit_seed = int(streams["rnn_faces"].integers(2**63))
        rnn.fit(train.symbols, **_rnn_fit_kwargs(config, config.epochs, fit_seed, progress))
        rows = rnn.validation_rows if rnn.validation_rows.size else None
    with clock.stage("RNN on dice"):
        decoder = ElmanRNN(n_symbols, config.hidden, n_states, seed=streams["rnn_dice"])
        decoder.fit(train.symbols, train.dice,
                    **_rnn_fit_kwargs(config, config.dice_epochs, streams["rnn_dice"], progress))
    return rnn, decoder, rows


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


def run_comparison(config: ComparisonConfig | None = None, progress: bool = True,
                   n_jobs: int = 1) -> ComparisonResult:
    """Fit every model on one dice sample and measure them all on held-out sequences.

    Parameters
    ----------
    config : ComparisonConfig, optional
        The run's settings; the defaults when omitted.
    progress : bool
        Show the fitting stages' tqdm bars (the EM HMM fit's only when it runs
        in this process).
    n_jobs : int
        1: everything in this process. 2 or more: the EM HMM fit (the slowest
        stage) runs in a worker process alongside the rest. Same results.

    Returns
    -------
    ComparisonResult
        Deterministic given ``config`` (apart from ``timings``).

    Raises
    ------
    ValueError
        If ``config`` is not a :class:`ComparisonConfig` or ``n_jobs`` is not a
        positive integer.

    Notes
    -----
    Excess is each model's held-out log-loss minus the true model's on the same
    sequences, so the true model's is exactly 0 and others' are >= 0 up to
    sampling noise (``excess_se`` is its standard error over sequences).
    """
    config = _check_config(config)
    n_jobs = check_count("n_jobs", n_jobs)
    clock, streams = _Stopwatch(), _streams(config.seed)
    start = time.perf_counter()
    spec = PRESETS[config.preset]()
    truth, n_states, n_symbols = spec.to_hmm(), spec.n_states, spec.n_symbols
    with clock.stage("sample data"):
        train = spec.sample(config.n_train, config.length, streams["train"])
        test = spec.sample(config.n_test, config.length, streams["test"])
    results: dict[str, dict[str, float]] = {}
    with _job_runner(n_jobs) as submit:
        em_job = submit(_timed_em_fit, train.symbols, truth, config.restarts,
                        config.em_finalists, streams["em"], progress and n_jobs < 2)
        with clock.stage("true model"):
            floor = truth.filter(test.symbols)
            results["true"] = _hmm_metrics(truth, test, floor)
        with clock.stage("counted HMM"):
            counted = fit_counts(train.dice, train.symbols, n_states, n_symbols)
            results["counted_hmm"] = {**_hmm_metrics(counted, test, floor),
                                      **m.matrix_errors(counted, truth)}
        with clock.stage("baselines"):
            for name, baseline in (("iid", IIDBaseline), ("markov1", MarkovBaseline)):
                fitted = baseline.fit(train.symbols, n_symbols)
                results[name] = m.prediction_metrics(fitted.predictive(test.symbols),
                                                     test.symbols, floor.predictive)
        rnn, decoder, validation_rows = _fit_rnns(config, train, n_states, streams, progress,
                                                  clock)
        with clock.stage("RNN metrics and belief probe"):
            rnn_results, probed = _rnn_metrics(rnn, decoder, test, floor, streams)
            results.update(rnn_results)
        with clock.stage("RNN-implied HMM"):
            implied, implied_restarts = _fit_implied_hmm(rnn, truth, config, streams, progress)
            results["rnn_implied_hmm"] = {**_hmm_metrics(implied, test, floor),
                                          **m.matrix_errors(implied, truth)}
        with clock.stage("waiting for the EM HMM" if n_jobs > 1 else "EM HMM (inline)"):
            em, em_restarts, em_seconds = _wait(em_job, progress and n_jobs > 1)
    clock.seconds["EM HMM fit"] = em_seconds
    results["em_hmm"] = {**_hmm_metrics(em, test, floor), **m.matrix_errors(em, truth)}
    clock.seconds["total (wall)"] = time.perf_counter() - start
    matrices = _matrices_frame({"true": truth, "counted_hmm": counted, "em_hmm": em,
                                "rnn_implied_hmm": implied})
    restarts = pd.concat([em_restarts.assign(fit="em_hmm"),
                          implied_restarts.assign(fit="rnn_implied_hmm")], ignore_index=True)
    return ComparisonResult(
        config=config, metrics=_tidy(results), matrices=matrices,
        learning_curve=pd.concat([_history("rnn_faces", rnn), _history("rnn_dice", decoder)],
                                 ignore_index=True),
        belief_trace=_belief_trace(test, floor, probed, config.trace_steps),
        learning_references=_learning_references(validation_rows, train, test,
                                                 {"EM HMM": em, "true model": truth}),
        em_restarts=restarts, timings=clock.frame(), state_names=tuple(spec.state_names),
    )
