"""The comparison's model registry: how each model is fitted, and what is measured on it.

One :class:`ModelEntry` per model. :func:`registry` lists them for a config (one
next-symbol RNN and one implied HMM per cell); :mod:`~seqmodels.compare.run`
fits and measures what it lists, the report builds its tables from it, and the
tests read it. Adding a model is one entry: a fit function and the names of
the measurements that apply (:data:`MEASUREMENTS`).

Every fit function has the signature ``fit(data: TrainingData, fitted: dict)
-> Fitted``, where ``fitted`` holds the models fitted before it (in registry
order); a ``remote`` entry (the slow EM fits) runs on an executor, possibly in
another process, so it must be picklable and use nothing from ``fitted``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from seqmodels._checks import named_seed
from seqmodels.compare import metrics as m
from seqmodels.compare.baselines import IIDBaseline, MarkovBaseline
from seqmodels.compare.config import ComparisonConfig
from seqmodels.hmm import HMM, FilterResult, align_states, fit_counts, fit_em
from seqmodels.rnn import RNN

if TYPE_CHECKING:
    import pandas as pd

#: Pseudocount of the counted HMM: a state never left, or a symbol never seen
#: from a state, in a short training sample would otherwise give a row without
#: data or a held-out sequence of probability 0. Against the ~10^5 counts of the
#: default run its bias is ~10^-8.
COUNT_PSEUDOCOUNT = 1e-3

#: Window lengths of the Markov-k probe controls: the probe from the last k symbols.
MARKOV_ORDERS = (1, 2, 3, 4)

#: What each measurement reports, in report order. ``*_se`` is a standard error
#: over held-out sequences (they are independent; steps within one are not).
MEASUREMENTS: dict[str, tuple[str, ...]] = {
    "prediction": ("log_loss", "excess", "excess_se", "perplexity", "kl"),
    "state_decoding": ("accuracy_causal", "accuracy_causal_se", "accuracy_smoothed",
                       "accuracy_smoothed_se", "accuracy_viterbi", "accuracy_viterbi_se",
                       "belief_kl"),
    "label_decoding": ("accuracy_causal", "accuracy_causal_se", "belief_kl"),
    "belief_probe": ("belief_r2", "belief_mse", "belief_r2_shuffled", "belief_r2_untrained",
                     *(f"belief_r2_markov{k}" for k in MARKOV_ORDERS),
                     "accuracy_causal", "accuracy_causal_se"),
    "chance": ("accuracy_causal", "accuracy_causal_se"),
    "matrices": ("transmat_max_abs", "transmat_tv", "emission_max_abs", "emission_tv"),
}


@dataclass(frozen=True)
class TrainingData:
    """What every fit sees: the training sample, the truth (for alignment only), the config.

    Attributes
    ----------
    config : ComparisonConfig
    truth : HMM
        The generating model. Fits use it only to align their states to it
        and to know ``K`` and ``V``, never its parameters.
    states, symbols : numpy.ndarray of int64, shape (B, T)
        The hidden chain (only the counted HMM and the decoder read it) and the
        visible symbols.
    progress : bool
        Whether a fit may show its tqdm bar.
    """

    config: ComparisonConfig
    truth: HMM
    states: np.ndarray
    symbols: np.ndarray
    progress: bool = False

    def rng(self, *keys: str) -> np.random.Generator:
        """The generator named by ``keys`` under the run's root seed."""
        return np.random.default_rng(named_seed(self.config.seed, *keys))


@dataclass(frozen=True)
class HeldOut:
    """The held-out sequences every model is measured on.

    Attributes
    ----------
    truth : HMM
    states, symbols : numpy.ndarray of int64, shape (B, T)
    floor : FilterResult
        The truth's filter on ``symbols``: the Bayes-optimal forecasts and beliefs.
    target_beliefs : numpy.ndarray, shape (B, T, K)
        What the belief probes target: the floor's beliefs over the process's own
        states (``floor.beliefs`` itself for dice; summed over split states for a
        labelled process).
    target_states : numpy.ndarray of int64, shape (B, T)
        The process's own state behind each HMM state of ``states``.
    seed : int
        The run's root seed (the probe's controls draw from named children).
    """

    truth: HMM
    states: np.ndarray
    symbols: np.ndarray
    floor: FilterResult
    target_beliefs: np.ndarray
    target_states: np.ndarray
    seed: int

    def rng(self, *keys: str) -> np.random.Generator:
        """The generator named by ``keys`` under the run's root seed."""
        return np.random.default_rng(named_seed(self.seed, *keys))


@dataclass(frozen=True)
class Fitted:
    """A fitted model and, for EM fits, the per-restart table."""

    model: object
    restarts: pd.DataFrame | None = None


class Measured(NamedTuple):
    """What one measurement found: metric values, and the arrays figures are drawn from.

    ``beliefs`` (B, T, K) is a decoding measurement's estimate of
    P(z_t | x_0..x_t) on the held-out sequences (out of fold for a probe).
    ``step_loss`` (T,) is a prediction measurement's log-loss at each step
    ``t``, averaged over the held-out sequences. None where they do not apply.
    """

    metrics: dict[str, float]
    beliefs: np.ndarray | None = None
    step_loss: np.ndarray | None = None


@dataclass(frozen=True)
class ModelEntry:
    """One model of the comparison.

    Attributes
    ----------
    name : str
        Its key in metrics files (``em_hmm``).
    title : str
        A short display name for figures (``EM (symbols only)``).
    description : str
        One sentence for the report.
    fit : callable
        ``fit(data: TrainingData, fitted: dict[str, Fitted]) -> Fitted``.
    measurements : tuple of str
        Keys of :data:`MEASUREMENTS` that apply to it.
    remote : bool
        Fitted on the run's executor (must be picklable and use no ``fitted``).
    """

    name: str
    title: str
    description: str
    fit: Callable[[TrainingData, Mapping[str, Fitted]], Fitted]
    measurements: tuple[str, ...]
    remote: bool = False

    def metric_names(self) -> tuple[str, ...]:
        """Every metric this entry reports, without repeats, in measurement order."""
        return tuple(dict.fromkeys(name for measurement in self.measurements
                                   for name in MEASUREMENTS[measurement]))


# --------------------------------------------------------------------------- fits


def _fit_truth(data: TrainingData, fitted: Mapping[str, Fitted]) -> Fitted:
    return Fitted(data.truth)


def _fit_counted(data: TrainingData, fitted: Mapping[str, Fitted]) -> Fitted:
    truth = data.truth
    return Fitted(fit_counts(data.states, data.symbols, truth.n_states, truth.n_symbols,
                             pseudocount=COUNT_PSEUDOCOUNT))


def _em_aligned(symbols: np.ndarray, truth: HMM, n_states: int, restarts: int,
                finalists: int, rng: np.random.Generator, progress: bool) -> Fitted:
    """Baum-Welch on ``symbols``, states aligned to the truth's when their numbers agree."""
    fit = fit_em(symbols, n_states, truth.n_symbols, n_restarts=restarts,
                 n_finalists=finalists, seed=rng, progress=progress)
    model = align_states(fit.model, truth)[0] if n_states == truth.n_states else fit.model
    return Fitted(model, fit.restarts)


def _fit_em(data: TrainingData, fitted: Mapping[str, Fitted]) -> Fitted:
    config = data.config
    return _em_aligned(data.symbols, data.truth, _em_states(config, data.truth),
                       config.restarts, config.em_finalists, data.rng("em_hmm"), data.progress)


def _rnn_fit_settings(config: ComparisonConfig, epochs: int, data: TrainingData) -> dict:
    # One fit seed for every RNN: the same validation split and batch order, so
    # the cells' learning curves are measured on the same sequences.
    return dict(epochs=epochs, batch_size=config.rnn_batch_size, lr=config.rnn_lr,
                schedule=config.rnn_schedule, clip=config.rnn_clip, bptt=config.rnn_bptt,
                validation=config.rnn_validation, patience=config.rnn_patience,
                seed=data.rng("rnn_fit"), progress=data.progress)


def _fit_rnn(cell: str, data: TrainingData, fitted: Mapping[str, Fitted]) -> Fitted:
    config, n_symbols = data.config, data.truth.n_symbols
    rnn = RNN(n_symbols, config.hidden, n_symbols, cell=cell, seed=data.rng(f"rnn_{cell}"),
              dtype=config.rnn_dtype)
    return Fitted(rnn.fit(data.symbols, **_rnn_fit_settings(config, config.epochs, data)))


def _fit_implied(cell: str, data: TrainingData, fitted: Mapping[str, Fitted]) -> Fitted:
    """EM on sequences generated by the cell's trained RNN: what it learned, as matrices."""
    config, name = data.config, f"rnn_{cell}_hmm"
    sampled = fitted[f"rnn_{cell}"].model.sample(config.implied_sequences, config.implied_length,
                                                  seed=data.rng(name, "sample"))
    return _em_aligned(sampled, data.truth, data.truth.n_states, config.implied_restarts, 1,
                       data.rng(name), data.progress)


def _fit_decoder(data: TrainingData, fitted: Mapping[str, Fitted]) -> Fitted:
    config, truth = data.config, data.truth
    decoder = RNN(truth.n_symbols, config.hidden, truth.n_states, cell=config.cells[0],
                  seed=data.rng("rnn_decoder"), dtype=config.rnn_dtype)
    settings = _rnn_fit_settings(config, config.decoder_epochs, data)
    return Fitted(decoder.fit(data.symbols, data.states, **settings))


def _fit_majority(data: TrainingData, fitted: Mapping[str, Fitted]) -> Fitted:
    return Fitted(int(np.bincount(data.states.ravel()).argmax()))


def _fit_baseline(kind, data: TrainingData, fitted: Mapping[str, Fitted]) -> Fitted:
    return Fitted(kind.fit(data.symbols, data.truth.n_symbols))


def _em_states(config: ComparisonConfig, truth: HMM) -> int:
    return truth.n_states if config.em_states is None else config.em_states


# --------------------------------------------------------------------------- the registry


def registry(config: ComparisonConfig, truth: HMM) -> dict[str, ModelEntry]:
    """Every model of a run with ``config`` on data from ``truth``, in report order.

    Returns
    -------
    dict of str to ModelEntry
        ``true``, ``counted_hmm``, ``em_hmm``; per cell ``rnn_{cell}`` and
        ``rnn_{cell}_hmm``; ``rnn_decoder``, ``majority_state``, ``iid``, ``markov1``.
    """
    if not isinstance(config, ComparisonConfig):
        raise ValueError(f"config must be a ComparisonConfig, got {type(config).__name__}")
    if not isinstance(truth, HMM):
        raise ValueError(f"truth must be an HMM, got {type(truth).__name__}")
    hmm = ("prediction", "state_decoding")
    em_matches = _em_states(config, truth) == truth.n_states
    entries = [
        ModelEntry("true", "truth", "the generating model; its filter is the Bayes-optimal "
                   "forecast (the floor of the log-loss)", _fit_truth, hmm),
        ModelEntry("counted_hmm", "counted (sees states)", "HMM fitted by counting, with the "
                   "hidden states visible (pseudocount 1e-3)", _fit_counted, (*hmm, "matrices")),
        ModelEntry("em_hmm", "EM (symbols only)",
                   f"HMM with {_em_states(config, truth)} states fitted by Baum-Welch (EM) on "
                   "the symbols only", _fit_em,
                   (*hmm, "matrices") if em_matches else ("prediction",), remote=True),
    ]
    for cell in config.cells:
        entries += [
            ModelEntry(f"rnn_{cell}", f"{cell} RNN", f"{cell} RNN trained on the symbols only "
                       "(next-symbol prediction)", functools.partial(_fit_rnn, cell),
                       ("prediction", "belief_probe")),
            ModelEntry(f"rnn_{cell}_hmm", f"{cell} RNN-implied", f"EM on sequences generated "
                       f"by `rnn_{cell}`: what it learned, written as matrices",
                       functools.partial(_fit_implied, cell), (*hmm, "matrices")),
        ]
    entries += [
        ModelEntry("rnn_decoder", "decoder", f"{config.cells[0]} RNN trained with the hidden "
                   "states as labels (a supervised decoder)", _fit_decoder, ("label_decoding",)),
        ModelEntry("majority_state", "majority", "always the hidden state most frequent in "
                   "training: the chance level of decoding", _fit_majority, ("chance",)),
        ModelEntry("iid", "i.i.d.", "i.i.d. symbol frequencies, add-one smoothed",
                   functools.partial(_fit_baseline, IIDBaseline), ("prediction",)),
        ModelEntry("markov1", "Markov", "first-order Markov chain on the symbols, add-one "
                   "smoothed", functools.partial(_fit_baseline, MarkovBaseline),
                   ("prediction",)),
    ]
    return {entry.name: entry for entry in entries}


# --------------------------------------------------------------------------- measurements


def _prediction(model, heldout: HeldOut, name: str) -> Measured:
    predictive = model.predictive(heldout.symbols)
    step_loss = -m.symbol_log_probs(predictive, heldout.symbols).mean(axis=0)
    return Measured(m.prediction_metrics(predictive, heldout.symbols, heldout.floor.predictive),
                    step_loss=step_loss)


def _accuracies(kind: str, predicted: np.ndarray, states: np.ndarray) -> dict[str, float]:
    value, error = m.accuracy_with_error(predicted, states)
    return {f"accuracy_{kind}": value, f"accuracy_{kind}_se": error}


def _state_decoding(hmm: HMM, heldout: HeldOut, name: str) -> Measured:
    symbols, states = heldout.symbols, heldout.states
    beliefs = hmm.filter(symbols).beliefs
    return Measured({
        **_accuracies("causal", beliefs.argmax(-1), states),
        **_accuracies("smoothed", hmm.smooth(symbols).argmax(-1), states),
        **_accuracies("viterbi", hmm.viterbi(symbols)[0], states),
        "belief_kl": m.mean_kl(heldout.floor.beliefs, beliefs),
    }, beliefs)


def _label_decoding(decoder, heldout: HeldOut, name: str) -> Measured:
    beliefs = decoder.label_proba(heldout.symbols)
    return Measured({**_accuracies("causal", beliefs.argmax(-1), heldout.states),
                     "belief_kl": m.mean_kl(heldout.floor.beliefs, beliefs)}, beliefs)


def _chance(state: int, heldout: HeldOut, name: str) -> Measured:
    return Measured(_accuracies("causal", np.full_like(heldout.states, state), heldout.states))


def _belief_probe(rnn, heldout: HeldOut, name: str) -> Measured:
    """A cross-validated ridge probe from the RNN's state to the true belief, with controls.

    :func:`~seqmodels.compare.metrics.cross_validated_probe` (folds of whole
    held-out sequences, the penalty chosen inside each fold's training part)
    from the hidden state to ``heldout.target_beliefs``, reported as R^2 and
    MSE. Controls, through the same probe: shuffled targets (the probe alone
    finds nothing), an untrained network of the same cell and size (what a
    random recurrent state carries), and the last k one-hot symbols for each k
    in :data:`MARKOV_ORDERS` (what a finite window carries). Also the probe's
    decoding accuracy: the same probe to the one-hot hidden state, argmax.
    """
    symbols, states, target = heldout.symbols, heldout.states, heldout.target_beliefs
    probe = m.cross_validated_probe
    hidden = rnn.hidden_states(symbols)
    untrained = RNN(rnn.n_inputs, rnn.n_hidden, rnn.n_outputs, cell=rnn.cell,
                    seed=heldout.rng(name, "untrained"), dtype=rnn.dtype)
    shuffle = heldout.rng(name, "shuffle")
    flat = target.reshape(-1, target.shape[-1])
    shuffled = flat[shuffle.permutation(len(flat))].reshape(target.shape)
    main = probe(hidden, target)
    one_hot = np.eye(heldout.truth.n_states)[states]
    decoded = probe(hidden, one_hot).predictions.argmax(-1)
    return Measured({
        "belief_r2": main.r2,
        "belief_mse": main.mse,
        "belief_r2_shuffled": probe(hidden, shuffled).r2,
        "belief_r2_untrained": probe(untrained.hidden_states(symbols), target).r2,
        **{f"belief_r2_markov{k}": probe(
            m.markov_features(symbols, heldout.truth.n_symbols, k), target).r2
           for k in MARKOV_ORDERS},
        **_accuracies("causal", decoded, states),
    }, main.predictions)


def _matrices(hmm: HMM, heldout: HeldOut, name: str) -> Measured:
    return Measured(m.matrix_errors(hmm, heldout.truth))


#: How each measurement is taken: ``measure(model, heldout, name) -> Measured``.
MEASURE: dict[str, Callable[[object, HeldOut, str], Measured]] = {
    "prediction": _prediction,
    "state_decoding": _state_decoding,
    "label_decoding": _label_decoding,
    "belief_probe": _belief_probe,
    "chance": _chance,
    "matrices": _matrices,
}
